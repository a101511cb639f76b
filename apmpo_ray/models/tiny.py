"""The embedded default model: a tiny Qwen2-architecture causal LM with a character-level tokenizer.

Built once, deterministically, and cached by the hash of its recipe. A short supervised warm-up on the
arithmetic task makes part of its samples correct, so RL has a signal from the first step.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from ..tasks import arithmetic, chain, multiply

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
# The task a recipe warms up on decides the tokenizer's alphabet: the embedded default's arithmetic, or the
# tool-use format of the multiplication task.
ALPHABETS = {"arithmetic": arithmetic.ALPHABET, "multiply": multiply.ALPHABET, "chain": chain.ALPHABET}


@dataclass(frozen=True)
class TinyRecipe:
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_positions: int = 64
    max_operand: int = 9
    warmup_steps: int = 100
    warmup_batch: int = 64
    warmup_lr: float = 3e-3
    seed: int = 0
    task: str = "arithmetic"
    tool_fraction: float = 0.5  # multiply: the share of warm-up solutions that call the tool
    num_terms: int = 3  # chain: terms per warm-up problem
    solution_style: str = "steps"  # chain: how warm-up solutions are written (tasks.chain.STYLES)

    def digest(self) -> str:
        """The cache key: every field of the first recipe, plus the later fields where they differ from their
        default, so that adding a field never changes the key of a model already built."""
        defaults = TinyRecipe.__dataclass_fields__
        fields = {k: v for k, v in asdict(self).items() if k in _ORIGINAL_FIELDS or v != defaults[k].default}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


_ORIGINAL_FIELDS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "max_positions",
                    "max_operand", "warmup_steps", "warmup_batch", "warmup_lr", "seed")


TOOLS_RECIPE = TinyRecipe(task="multiply", max_positions=160, max_operand=99, warmup_steps=1000, tool_fraction=0.5)
# The reasoning task's models: "tiny" (0.8 M parameters) and "small" (about 5 M), warmed up briefly on worked
# solutions so that RL starts low (docs/reasoning_task.md).
REASONING_TINY = TinyRecipe(task="chain", max_positions=128, max_operand=50, num_terms=3, warmup_steps=900)
REASONING_SMALL = TinyRecipe(task="chain", max_positions=128, max_operand=50, num_terms=3, warmup_steps=400, warmup_lr=1e-3,
                             hidden_size=256, num_layers=6, num_heads=8, num_kv_heads=4, intermediate_size=768)
# AMPO's teachers for the reasoning task (preset tiny_ampo): the student's architecture warmed up longer, in
# the student's solution style and in another one.
TEACHER_LONG = replace(REASONING_TINY, warmup_steps=2000, seed=1)
TEACHER_PARENS = replace(REASONING_TINY, warmup_steps=1500, seed=2, solution_style="parens")
RECIPES = {"tiny": TinyRecipe(), "tiny_tools": TOOLS_RECIPE, "tiny_reasoning": REASONING_TINY,
           "small_reasoning": REASONING_SMALL, "teacher_long": TEACHER_LONG, "teacher_parens": TEACHER_PARENS}


def default_cache_dir() -> Path:
    return Path(os.environ.get("APMPO_RAY_CACHE", Path.home() / ".cache" / "apmpo_ray"))


def build_tokenizer(task: str = "arithmetic"):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + list(ALPHABETS[task]))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


def build_untrained(recipe: TinyRecipe, tokenizer):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(recipe.seed)
    config = Qwen2Config(
        vocab_size=32 * ((len(tokenizer) + 31) // 32),  # the alphabet plus specials; a round size suits vLLM
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        max_position_embeddings=recipe.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    return Qwen2ForCausalLM(config)


def encode_example(tokenizer, prompt: str, answer: str | list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """Token ids of ``<bos>prompt answer<eos>`` and the labels (-100 on the prompt). ``answer`` may be
    segments ``(text, trains)``: a segment that does not train (a tool's result) is -100 too."""
    segments = [(answer, True)] if isinstance(answer, str) else list(answer)
    ids = [tokenizer.bos_token_id] + tokenizer.encode(prompt, add_special_tokens=False)
    labels = [-100] * len(ids)
    for text, trains in segments:
        part = tokenizer.encode(text, add_special_tokens=False)
        ids += part
        labels += part if trains else [-100] * len(part)
    return ids + [tokenizer.eos_token_id], labels + [tokenizer.eos_token_id]


def warmup_batch(recipe: TinyRecipe, seed: int) -> list[tuple[str, object]]:
    if recipe.task == "chain":
        problems = chain.make_problems(recipe.warmup_batch, seed=seed, max_operand=recipe.max_operand,
                                       num_terms=recipe.num_terms, style=recipe.solution_style)
        return [(p["prompt"], p["solution"]) for p in problems]
    if recipe.task == "multiply":
        return list(multiply.warmup_examples(recipe.warmup_batch, seed=seed, max_operand=recipe.max_operand,
                                             tool_fraction=recipe.tool_fraction))
    problems = arithmetic.make_problems(recipe.warmup_batch, seed=seed, max_operand=recipe.max_operand)
    return [(p["prompt"], p["answer"]) for p in problems]


def supervised_warmup(model, tokenizer, recipe: TinyRecipe) -> list[float]:
    """A few AdamW steps of next-token prediction on answers; returns the loss curve."""
    rng = random.Random(recipe.seed + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.warmup_lr)
    losses = []
    model.train()
    for step in range(recipe.warmup_steps):
        encoded = [encode_example(tokenizer, prompt, answer)
                   for prompt, answer in warmup_batch(recipe, rng.randrange(2**31))]
        width = max(len(ids) for ids, _ in encoded)
        ids = torch.full((len(encoded), width), tokenizer.pad_token_id)
        labels = torch.full((len(encoded), width), -100)
        for row, (x, y) in enumerate(encoded):
            ids[row, : len(x)] = torch.tensor(x)
            labels[row, : len(y)] = torch.tensor(y)
        loss = model(input_ids=ids, attention_mask=(ids != tokenizer.pad_token_id).long(), labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def tiny_model_path(recipe: TinyRecipe | None = None, cache_dir: Path | None = None) -> Path:
    """The cached model directory for ``recipe``, building it first if needed (about 10-20 s on 2 cores)."""
    recipe = recipe or TinyRecipe()
    root = Path(cache_dir or default_cache_dir())
    target = root / f"tiny-qwen2-{recipe.digest()}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{recipe.digest()}-{os.getpid()}"
    tokenizer = build_tokenizer(recipe.task)
    model = build_untrained(recipe, tokenizer)
    threads = torch.get_num_threads()
    losses = supervised_warmup(model, tokenizer, recipe)
    torch.set_num_threads(threads)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "recipe.json").write_text(json.dumps({**asdict(recipe), "warmup_losses": losses[-5:]}, indent=1))
    try:
        staging.rename(target)  # atomic: concurrent builders race harmlessly
    except OSError:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target
