"""Offline teacher solutions for AMPO's embedded preset: each project-built teacher model writes one solution
per training problem, sampled once and cached as a JSON lines file (``teachers`` column, docs/datasets.md)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from .tiny import RECIPES, default_cache_dir, tiny_model_path

OFFLINE_TEACHERS = ("teacher_long", "teacher_parens")


@torch.no_grad()
def sample_solutions(model_path: Path, prompts: list[str], *, max_new_tokens: int = 48, temperature: float = 1.0,
                     seed: int = 0, batch_size: int = 128) -> list[str]:
    """One sampled completion per prompt (``<bos>prompt`` -> text), with transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = [[tokenizer.bos_token_id] + tokenizer.encode(p, add_special_tokens=False)
                 for p in prompts[start: start + batch_size]]
        width = max(map(len, batch))
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(x)) + x for x in batch])
        mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(x) for x in batch])[:, None]).long()
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=True,
                                   temperature=temperature, top_k=0, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True)
    return out


def with_teacher_solutions(problems: list[dict], *, teachers=OFFLINE_TEACHERS, cache_dir: Path | None = None,
                           seed: int = 0) -> list[dict]:
    """``problems`` with a ``teachers`` list ``[{"teacher", "solution"}]``: one sample per teacher, right or
    wrong (the guided workflow verifies them). Cached by problems and teacher recipes."""
    key = hashlib.sha256(json.dumps([[p["prompt"] for p in problems], [RECIPES[t].digest() for t in teachers], seed]
                                    ).encode()).hexdigest()[:12]
    path = Path(cache_dir or default_cache_dir()) / "ampo" / f"chain-teachers-{key}.jsonl"
    if not path.exists():
        solutions = {t: sample_solutions(tiny_model_path(RECIPES[t]), [p["prompt"] for p in problems], seed=seed)
                     for t in teachers}
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        with open(staging, "w") as f:
            for i, p in enumerate(problems):
                row = {"prompt": p["prompt"], "answer": p["answer"],
                       "teachers": [{"teacher": t, "solution": solutions[t][i]} for t in teachers]}
                f.write(json.dumps(row) + "\n")
        staging.rename(path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{**p, "teachers": row["teachers"]} for p, row in zip(problems, rows)]
