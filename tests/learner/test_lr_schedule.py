"""The learning-rate schedule: DeepSpeed's warmup then constant or cosine, advanced by every optimizer step
(skipped ones too), and saved in checkpoints."""
import math

import pytest

from apmpo_ray.config import load_config
from apmpo_ray.learner.policy import Policy
from apmpo_ray.models.tiny import tiny_model_path


def make_policy(*overrides):
    cfg = load_config(None, ["trainer.mini_batch_size=128", "rollout.prompts_per_step=16", "trainer.lr=1e-3",
                             *overrides])
    return Policy(str(tiny_model_path()), cfg.trainer, cfg.algo, sequences_per_step=128)


def lrs(policy, steps, skip=()):
    """The learning rate after each of ``steps`` optimizer steps (on a zero gradient: only the schedule moves)."""
    out = []
    for i in range(steps):
        zero = sum((p * 0).sum() for p in policy.engine.module.parameters())
        policy.engine.backward(zero, scale_wrt_gas=False)
        policy._optimizer_step(skip=i in skip)
        out.append(policy.lr)
    return out


def test_warmup_then_constant(single_process_group):
    values = lrs(make_policy("trainer.warmup_steps=4", "trainer.max_steps=10"), 8)
    assert all(a < b for a, b in zip(values[:4], values[1:4]))  # rising during warmup
    assert values[4:] == pytest.approx([1e-3] * 4)
    assert values[0] < 1e-3


def test_warmup_then_cosine_down_to_the_floor(single_process_group):
    policy = make_policy("trainer.warmup_steps=2", "trainer.max_steps=12", "trainer.lr_schedule=cosine",
                         "trainer.lr_min_ratio=0.1")
    values = lrs(policy, 12)
    peak = values.index(max(values))
    assert peak <= 2 and max(values) == pytest.approx(1e-3, rel=0.05)
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1:]))  # decaying after it
    assert values[-1] == pytest.approx(1e-4, rel=0.05)


def test_skipped_updates_advance_the_schedule_and_the_state_is_checkpointed(single_process_group, tmp_path):
    plain = lrs(make_policy("trainer.warmup_steps=6", "trainer.max_steps=10"), 5)
    policy = make_policy("trainer.warmup_steps=6", "trainer.max_steps=10")
    assert lrs(policy, 5, skip={1, 3}) == pytest.approx(plain)
    policy.save_checkpoint(str(tmp_path))
    resumed = make_policy("trainer.warmup_steps=6", "trainer.max_steps=10")
    resumed.load_checkpoint(str(tmp_path))
    assert resumed.lr == pytest.approx(policy.lr)
    assert lrs(resumed, 2) == pytest.approx(lrs(policy, 2))


def test_constant_without_warmup_has_no_scheduler(single_process_group):
    policy = make_policy()
    assert policy.engine.lr_scheduler is None and lrs(policy, 2) == [1e-3, 1e-3]
    assert not math.isnan(policy.lr)
