"""The embedded default model: a tiny Qwen2-architecture causal LM with a character-level tokenizer.

Built once, deterministically, and cached by the hash of its recipe. A short supervised warm-up on the
arithmetic task makes part of its samples correct, so RL has a signal from the first step.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..tasks import arithmetic

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]


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

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    return Path(os.environ.get("APMPO_RAY_CACHE", Path.home() / ".cache" / "apmpo_ray"))


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + list(arithmetic.ALPHABET))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")


def build_untrained(recipe: TinyRecipe, tokenizer):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(recipe.seed)
    config = Qwen2Config(
        vocab_size=32,  # the alphabet plus specials fits; a round size keeps vLLM's kernels happy
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


def encode_example(tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of ``<bos>prompt answer<eos>`` and the labels (-100 on the prompt)."""
    prompt_ids = [tokenizer.bos_token_id] + tokenizer.encode(prompt, add_special_tokens=False)
    answer_ids = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def supervised_warmup(model, tokenizer, recipe: TinyRecipe) -> list[float]:
    """A few AdamW steps of next-token prediction on answers; returns the loss curve."""
    rng = random.Random(recipe.seed + 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.warmup_lr)
    losses = []
    model.train()
    for step in range(recipe.warmup_steps):
        problems = arithmetic.make_problems(recipe.warmup_batch, seed=rng.randrange(2**31),
                                            max_operand=recipe.max_operand)
        encoded = [encode_example(tokenizer, p["prompt"], p["answer"]) for p in problems]
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
    tokenizer = build_tokenizer()
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
