"""The tool_use workflow with real parts: a vLLM generator actor, the sandboxed python tool pool and the
verifier pool, on the embedded tool-use model. Budget, branch points, masks and behaviour log-probs."""
import asyncio
from dataclasses import replace

import pytest
import ray
import torch

from apmpo_ray.algorithms import AlgorithmConfig, LossInputs, prepare_step
from apmpo_ray.config import load_config
from apmpo_ray.data import load_problems, prompt_encoder
from apmpo_ray.launch import start_generators, start_verifiers
from apmpo_ray.models.tiny import RECIPES, tiny_model_path
from apmpo_ray.learner.batch import build_batch, token_logprobs
from apmpo_ray.rollout.types import Prompt
from apmpo_ray.rollout.workflows import GeneratorLease, make_workflow

M, N = 6, 2


@pytest.fixture(scope="module")
def parts():
    ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False)
    # a shorter warm-up than the preset's keeps CI fast; it already writes tool calls, if not always right ones
    path = str(tiny_model_path(replace(RECIPES["tiny_tools"], warmup_steps=400)))
    cfg = load_config("tiny_tools", ["algo.name=arpo", f"rollout.group_size={M}", f"arpo.initial_samples={N}",
                                     "trainer.mini_batch_size=6", "arpo.branch_threshold=0.9", f"model.path={path}"])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    (generator,) = start_generators(cfg, path, name_prefix="tool-test-")
    verifiers = start_verifiers(cfg)
    encode = prompt_encoder(tokenizer, cfg.task)
    problems = load_problems(cfg.task, tokenizer)[:4]
    prompts = [Prompt(i, encode(p["prompt"]), p["prompt"], p["answer"]) for i, p in enumerate(problems)]
    yield cfg, path, tokenizer, generator, verifiers, prompts
    verifiers.shutdown()
    ray.shutdown()


def run(cfg, tokenizer, generator, verifiers, prompts, path):
    workflow = make_workflow(cfg, verifiers.score_async, tokenizer, path)

    async def episode():
        try:
            return await workflow.arun(prompts, GeneratorLease(generator))
        finally:
            await workflow.close()

    return asyncio.run(episode())


@pytest.fixture(scope="module")
def arpo_groups(parts):
    cfg, path, tokenizer, generator, verifiers, prompts = parts
    return run(cfg, tokenizer, generator, verifiers, prompts, path)


def test_the_budget_is_exact_for_every_prompt(arpo_groups):
    assert len(arpo_groups) == 4
    assert all(len(g.samples) == M for g in arpo_groups)
    roots = [sum(s.parent is None for s in g.samples) for g in arpo_groups]
    branches = sum(g.stats["arpo/branches_per_prompt"] for g in arpo_groups)
    assert branches > 0, "no branch at all: the check below would be empty"
    assert all(r >= N for r in roots)  # unspent budget became fresh trajectories


def test_branches_start_right_after_a_tool_result_and_share_the_parents_prefix(arpo_groups, parts):
    tokenizer = parts[2]
    checked = 0
    for group in arpo_groups:
        for sample in group.samples:
            if sample.parent is None:
                continue
            parent = group.samples[sample.parent]
            b = sample.branch_point
            assert sample.response_ids[:b] == parent.response_ids[:b]
            assert tokenizer.decode(sample.response_ids[:b]).endswith("</result>")
            assert sample.loss_mask[b - 1] == 0  # the branch point is the end of inserted tool output
            checked += 1
    assert checked > 0


def test_tool_output_is_masked_and_never_reaches_a_ratio(arpo_groups, parts):
    tokenizer = parts[2]
    batch = build_batch(arpo_groups, tokenizer.pad_token_id)
    for group in arpo_groups:
        for sample in group.samples:
            # exactly the inserted <result>...</result> spans are masked out
            tool_tokens = [i for i, m in enumerate(sample.loss_mask) if m == 0]
            decoded = "".join(tokenizer.decode([sample.response_ids[i]]) for i in tool_tokens)
            assert decoded == "".join(f"<result>{r}</result>" for r in _results(sample.text))
            assert sample.text.count("<result>") <= parts[0].rollout.max_tool_calls
    # a loss computed with garbage at every masked position is the same loss, with no gradient there
    step = prepare_step(batch.rewards.view(4, M), batch.loss_mask, AlgorithmConfig(name="arpo",
                                                                                   off_policy_correction="decoupled"))
    g = torch.Generator().manual_seed(0)
    base = -torch.rand(batch.loss_mask.shape, generator=g)
    off_mask = (batch.loss_mask == 0)
    garbage = torch.where(off_mask, base + 30 * torch.randn(base.shape, generator=g), base)
    outs = []
    for logprobs in (base, garbage):
        leaf = logprobs.clone().requires_grad_(True)
        proximal = torch.where(off_mask, logprobs - 5.0, base)
        inputs = LossInputs(leaf, proximal, step.advantages, batch.loss_mask, global_tokens=float(batch.loss_mask.sum()),
                            global_sequences=float(len(batch)), behaviour_logprobs=batch.behaviour_logprobs)
        out = step.loss(inputs, step.controls)
        (grad,) = torch.autograd.grad(out.loss, leaf)
        assert torch.all(grad[off_mask] == 0)
        outs.append(out)
    assert torch.equal(outs[0].loss, outs[1].loss) and outs[0].metrics == outs[1].metrics


def _results(text):
    out, rest = [], text
    while "<result>" in rest:
        rest = rest[rest.index("<result>") + len("<result>"):]
        out.append(rest[: rest.index("</result>")])
        rest = rest[rest.index("</result>"):]
    return out


def test_generator_logprobs_of_policy_tokens_equal_the_learners_in_multi_turn(arpo_groups, parts):
    from transformers import AutoModelForCausalLM

    cfg, path, tokenizer = parts[0], parts[1], parts[2]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    multi = [g for g in arpo_groups if any(0 in s.loss_mask for s in g.samples)]
    assert multi, "no trajectory called a tool"
    batch = build_batch(multi, tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    learner, _ = token_logprobs(logits, batch.input_ids, cfg.rollout.temperature)
    mask = batch.loss_mask.bool()
    gap = (learner[mask] - batch.behaviour_logprobs[mask]).abs().max().item()
    assert gap < 1e-4


def test_grpo_with_tools_samples_every_trajectory_from_the_prompt(parts):
    cfg, path, tokenizer, generator, verifiers, prompts = parts
    grpo = load_config("tiny_tools", ["algo.name=grpo", f"rollout.group_size={M}", "trainer.mini_batch_size=6",
                                      f"model.path={path}"])
    groups = run(grpo, tokenizer, generator, verifiers, prompts[:2], path)
    assert all(len(g.samples) == M and all(s.parent is None for s in g.samples) for g in groups)
    assert all("arpo/branches_per_prompt" not in g.stats for g in groups)
    assert all(g.stats["tools/calls_per_trajectory"] <= grpo.rollout.max_tool_calls for g in groups)
