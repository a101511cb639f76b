"""Training and evaluation problems from synthetic tasks, local files or the hub, formatted as prompts.

``load_problems(task, tokenizer)`` -> ``[{"prompt": final prompt text, "answer": reference, ...}]``;
``encode_prompt(tokenizer, text)`` -> token ids. File layouts of the paper's datasets: docs/datasets.md.
"""
from .errors import DatasetError
from .problems import LoadResult, load_problems, read_problems
from .prompting import encode_prompt, format_prompt, prompt_encoder, uses_chat_template
from .templates import MATH_TEMPLATE, SQL_TEMPLATE

__all__ = ["DatasetError", "LoadResult", "MATH_TEMPLATE", "SQL_TEMPLATE", "encode_prompt", "format_prompt",
           "load_problems", "prompt_encoder", "read_problems", "uses_chat_template"]
