"""Checkpoints a run can resume from: DeepSpeed state (model, optimizer, scheduler) per rank, RNG states per
rank, and one JSON file with everything else (step, policy version, data position, control history, run id).

Layout: ``<output_dir>/<run_id>/checkpoints/step_<k>/`` where k is the next step to run; the JSON file is
written last, so a directory without it is an interrupted save and is never resumed from.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import torch

STATE_FILE = "apmpo_state.json"
LATEST_FILE = "LATEST"  # in output_dir: the path of the newest complete checkpoint of any run
DEEPSPEED_TAG = "deepspeed"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:06d}"


def rng_state() -> dict:
    import numpy as np

    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def restore_rng(state: dict) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_rng(directory: Path, rank: int) -> None:
    torch.save(rng_state(), Path(directory) / f"rng_rank{rank}.pt")


def load_rng(directory: Path, rank: int) -> None:
    path = Path(directory) / f"rng_rank{rank}.pt"
    if path.exists():
        restore_rng(torch.load(path, weights_only=False))


def commit(directory: Path, state: dict, output_dir: Path, keep: int) -> None:
    """Rank 0, after every rank saved: mark the checkpoint complete, point LATEST at it, drop old ones."""
    directory = Path(directory)
    (directory / STATE_FILE).write_text(json.dumps(state, indent=1))
    latest = Path(output_dir) / LATEST_FILE
    latest.write_text(str(directory.resolve()))
    if keep > 0:
        complete = sorted(p for p in directory.parent.glob("step_*") if (p / STATE_FILE).exists())
        for old in complete[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


def read_state(directory: Path) -> dict:
    return json.loads((Path(directory) / STATE_FILE).read_text())


def resolve_resume(resume: str, output_dir: str) -> Path:
    """``latest`` (the newest checkpoint under ``output_dir``), a checkpoint directory, or a run directory
    (its newest checkpoint)."""
    if resume == "latest":
        pointer = Path(output_dir) / LATEST_FILE
        if not pointer.exists():
            raise FileNotFoundError(f"trainer.resume=latest: no checkpoint recorded in {pointer}")
        candidate = Path(pointer.read_text().strip())
    else:
        candidate = Path(resume)
    if (candidate / STATE_FILE).exists():
        return candidate
    complete = sorted(p for p in (candidate / "checkpoints").glob("step_*") if (p / STATE_FILE).exists())
    if complete:
        return complete[-1]
    raise FileNotFoundError(f"trainer.resume={resume}: {candidate} holds no complete checkpoint "
                            f"(a directory with {STATE_FILE}, or a run directory with checkpoints/step_*)")


def check_compatible(state: dict, prompts_per_step: int, data_seed: int, dataset: str, directory: Path) -> None:
    """Resuming with a different batch size, data seed or dataset would replay or skip prompts."""
    data = state["data"]
    changed = {key: (data[key], now) for key, now in
               (("prompts_per_step", prompts_per_step), ("seed", data_seed), ("dataset", dataset))
               if data[key] != now}
    if changed:
        fields = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in changed.items())
        raise ValueError(f"cannot resume from {directory}: the data stream would change ({fields}); "
                         "use the checkpoint's rollout.prompts_per_step, task.seed and task.dataset")
