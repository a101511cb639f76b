"""From a question to the prompt text the model sees, and from that text to the token ids it is fed."""
from __future__ import annotations

from typing import Callable

from ..config.task import TaskConfig
from .errors import DatasetError
from .templates import render


def has_chat_template(tokenizer) -> bool:
    return tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))


def uses_chat_template(task: TaskConfig, tokenizer) -> bool:
    """Whether prompts of ``task`` go through the tokenizer's chat template (task.chat_template auto/on/off)."""
    if task.chat_template == "off":
        return False
    if task.chat_template == "on" and not has_chat_template(tokenizer):
        what = "no tokenizer was given" if tokenizer is None else "the tokenizer has no chat template"
        raise DatasetError(f"task.chat_template=on but {what}; use auto or off for base models")
    return has_chat_template(tokenizer)


def format_prompt(question: str, task: TaskConfig, tokenizer, *, chat: bool, schema: str = "") -> str:
    """The final prompt text: the template filled in, then wrapped in the chat template when ``chat``."""
    content = render(task.prompt_template, prompt=question, schema=schema)
    if chat:
        messages = [{"role": "system", "content": task.system_prompt}] if task.system_prompt else []
        messages.append({"role": "user", "content": content})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{task.system_prompt}\n\n{content}" if task.system_prompt else content


def encode_prompt(tokenizer, text: str, *, chat_template_applied: bool = False) -> list[int]:
    """Token ids of a prompt: BOS first when the tokenizer has one and no chat template was applied.

    Chat templates write their own BOS (as text) where the model wants one; adding another would feed the
    model a sequence it never saw. A text that already starts with the BOS string gets no second one.
    """
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    bos_id, bos_text = getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "bos_token", None)
    if chat_template_applied or bos_id is None or (bos_text and text.startswith(bos_text)):
        return ids
    return [bos_id] + ids


def prompt_encoder(tokenizer, task: TaskConfig) -> Callable[[str], list[int]]:
    """``encode(text)`` for prompts of ``load_problems(task, tokenizer)``, e.g. for a PromptStream."""
    chat = uses_chat_template(task, tokenizer)
    return lambda text: encode_prompt(tokenizer, text, chat_template_applied=chat)
