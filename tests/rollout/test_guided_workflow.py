"""The guided (AMPO) workflow with real parts: the student's vLLM generator, the verifier pool scoring a
reward plugin, offline teacher solutions and an online teacher actor."""
import asyncio
import math
from dataclasses import replace

import pytest
import ray
import torch

from apmpo_ray.algorithms.ampo import comprehension
from apmpo_ray.config import load_config
from apmpo_ray.launch import start_generators, start_verifiers
from apmpo_ray.learner.batch import build_batch
from apmpo_ray.models.tiny import RECIPES, tiny_model_path
from apmpo_ray.rollout.types import Prompt, TeacherSolution
from apmpo_ray.rollout.workflows import GeneratorLease, GuidedWorkflow, OnlineTeacher, sampling_settings

G = 4
HARD = [("91+87+78-49=", "207", "91+87=178;178+78=256;256-49=207#207"),
        ("68+95+39+44=", "246", "68+95=163;163+39=202;202+44=246#246")]
EASY = ["12+3+4=", "7+8+9="]


class CountingTeacher(OnlineTeacher):
    """A real online teacher (a generator actor) that also counts the prompts it was asked about."""

    asked: list = []

    async def solve(self, prompts, seed):
        self.asked.extend(p.text for p in prompts)
        return await super().solve(prompts, seed)


@pytest.fixture(scope="module")
def parts():
    import os

    here = os.path.dirname(os.path.abspath(__file__))  # the verifier workers import the reward plugin from here
    pythonpath = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    cfg = load_config("tiny_cpu", ["model.tiny_recipe=tiny_reasoning", "task.reward=guided_reward:score",
                                   f"rollout.group_size={G}", "rollout.prompts_per_step=4",
                                   "trainer.mini_batch_size=16", "rollout.max_new_tokens=40",
                                   # guide any group with a wrong sample; easy groups are all right, so never
                                   "ampo.trigger=adaptive", "ampo.replace_threshold=1.0"])
    path = str(tiny_model_path(replace(RECIPES["tiny_reasoning"], warmup_steps=300)))  # weak and quick to build
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    (student,) = start_generators(cfg, path, name_prefix="guided-student-")
    (teacher_actor,) = start_generators(cfg, path, name_prefix="guided-teacher-")  # any model can teach
    verifiers = start_verifiers(cfg)
    yield cfg, path, tokenizer, student, teacher_actor, verifiers
    verifiers.shutdown()
    ray.shutdown()


def prompts_for(tokenizer):
    encode = lambda text: [tokenizer.bos_token_id] + tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    out = []
    for i, (text, answer, solution) in enumerate(HARD):
        wrong = solution.replace(f"#{answer}", "#999")
        detour = solution.replace(";", ";0+0=0;", 1)  # correct, with a pointless extra step
        guidance = (TeacherSolution("offline-a", solution), TeacherSolution("offline-b", wrong),
                    TeacherSolution("offline-c", detour))
        out.append(Prompt(2 * i, encode(text), text, answer, guidance))
        out.append(Prompt(2 * i + 1, encode(EASY[i]), EASY[i], "EASY"))
    return out


@pytest.fixture(scope="module")
def guided(parts):
    cfg, path, tokenizer, student, teacher_actor, verifiers = parts
    teacher = CountingTeacher("online", teacher_actor, samples=2, max_new_tokens=40)
    workflow = GuidedWorkflow(sampling_settings(cfg), verifiers.score_async, cfg.ampo,
                              lambda t: tokenizer.encode(t, add_special_tokens=False), tokenizer.eos_token_id,
                              teachers=[teacher])
    prompts = prompts_for(tokenizer)
    groups = asyncio.run(workflow.arun(prompts, GeneratorLease(student)))
    return groups, prompts, teacher


def test_online_teachers_are_asked_only_about_guided_groups(guided):
    groups, prompts, teacher = guided
    guided_texts = [g.prompt.text for g in groups if g.stats["ampo/guided_groups_frac"] == 1.0]
    assert set(guided_texts) <= {h[0] for h in HARD}  # easy groups are never guided
    assert teacher.asked == guided_texts
    for g in groups:
        expected = 2.0 if g.prompt.text in guided_texts else 0.0
        assert g.stats["ampo/teacher_calls"] == expected


def test_a_wrong_teacher_solution_never_enters_the_batch(guided):
    groups, prompts, _ = guided
    teacher_samples = [s for g in groups for s in g.samples if s.off_policy]
    assert teacher_samples, "no group was guided: the test says nothing"
    assert all("#999" not in s.text and s.reward == 1.0 for s in teacher_samples)
    for g in groups:
        assert len(g.samples) == G
        replaced = sum(s.off_policy for s in g.samples)
        assert replaced == g.stats["ampo/teacher_samples"]
        # adaptive k: min(correct candidates, G·1.0 - correct student samples); here at most the 2 offline
        # correct ones plus 2 online samples
        assert replaced <= 4 and all(s.reward < 1.0 for s in g.samples if not s.off_policy) or replaced == 0


def test_the_student_picks_the_path_it_rates_highest(guided, parts):
    from transformers import AutoModelForCausalLM

    groups, prompts, _ = guided
    cfg, path, tokenizer = parts[0], parts[1], parts[2]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def rating(prompt, solution):  # the student's geometric mean probability of the gold answer tokens
        reasoning = solution[: solution.rfind("#") + 1]
        context = prompt.prompt_ids + tokenizer.encode(reasoning, add_special_tokens=False)
        gold = tokenizer.encode(str(prompt.reference), add_special_tokens=False)
        with torch.no_grad():
            logp = model(torch.tensor([context + gold])).logits[0].double().log_softmax(-1)
        return comprehension([logp[len(context) - 1 + j, t].item() for j, t in enumerate(gold)])

    checked = 0
    for g in groups:
        picked = [s for s in g.samples if s.off_policy]
        if not picked:
            continue
        offline_correct = [t.text for t in g.prompt.guidance if "#999" not in t.text]
        ratings = {text: rating(g.prompt, text) for text in offline_correct}
        best_offline = max(ratings.values())
        picked_ratings = sorted((rating(g.prompt, s.text) for s in picked), reverse=True)
        # online candidates may rate higher; the best pick is never below the best offline candidate
        assert picked_ratings[0] >= best_offline - 1e-4
        assert math.isclose(g.stats["ampo/comprehension_mean"], sum(picked_ratings) / len(picked_ratings),
                            rel_tol=1e-3)
        checked += 1
    assert checked


def test_teacher_samples_are_off_policy_rows_of_the_batch(guided, parts):
    groups, _, _ = guided
    tokenizer = parts[2]
    batch = build_batch(groups, tokenizer.pad_token_id)
    flags = [s.off_policy for g in groups for s in g.samples]
    assert batch.off_policy.tolist() == flags and any(flags)
    assert torch.all(batch.behaviour_logprobs[batch.off_policy] == 0)
