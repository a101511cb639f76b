"""Prompt templates: how a dataset's question becomes the text the model is asked.

Placeholders are substituted literally (no ``str.format``), so LaTeX braces such as ``\\boxed{}`` need no
escaping: ``{prompt}`` is the question and ``{schema}`` the SQL database's CREATE statements.
"""
from __future__ import annotations

import re

# The instruction of the paper's math setting (the Qwen2.5-Math evaluation format): reason, then \boxed{}.
MATH_TEMPLATE = "{prompt}\nPlease reason step by step, and put your final answer within \\boxed{}."

SQL_TEMPLATE = (
    "Database schema (SQLite):\n{schema}\n\n"
    "Question: {prompt}\n\n"
    "Think step by step, then give one SQLite query that answers the question in a ```sql code block."
)

NAMED = {"math": MATH_TEMPLATE, "sql": SQL_TEMPLATE}


def resolve_template(name_or_text: str) -> str:
    """The template text of a named template, a literal template, or "{prompt}" for none."""
    if not name_or_text:
        return "{prompt}"
    return NAMED.get(name_or_text, name_or_text)


def needs_schema(template: str) -> bool:
    return "{schema}" in resolve_template(template)


_PLACEHOLDER = re.compile(r"\{(prompt|schema)\}")


def render(template: str, *, prompt: str, schema: str = "") -> str:
    # One pass, so a question that itself contains "{schema}" is left as written.
    values = {"prompt": prompt, "schema": schema}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], resolve_template(template))
