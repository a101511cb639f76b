"""The evaluation runner on the tiny model (transformers sampler), its MLflow logging and the results table."""
import json
from math import comb

import pytest

from apmpo_ray.config import EvalConfig, TaskConfig, load_config
from apmpo_ray.evaluation import (BenchmarkResult, EvalResults, evaluate_benchmarks, format_table, load_benchmarks,
                                  run_periodic_eval, should_evaluate)
from apmpo_ray.tasks import arithmetic


@pytest.fixture
def arith_file(tmp_path):
    rows = arithmetic.make_problems(12, seed=99, max_operand=9)
    path = tmp_path / "arith.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def recording(generate):
    seen = []

    def generate_fn(prompts, **kwargs):
        out = generate(prompts, **kwargs)
        seen.extend(out)
        return out

    return generate_fn, seen


def test_tiny_model_scores_match_its_samples(hf_generator, arith_file):
    benches = load_benchmarks(EvalConfig(benchmarks=[f"arith={arith_file}"]), TaskConfig(), hf_generator.tokenizer)
    problems = benches["arith"]
    assert problems[0]["prompt_ids"][0] == hf_generator.tokenizer.bos_token_id
    generate_fn, seen = recording(hf_generator.generate)
    results = evaluate_benchmarks(generate_fn, benches, reward="arithmetic", k=4, num_samples=6, max_new_tokens=4,
                                  tokenizer=hf_generator.tokenizer, prompts_per_call=5, seed=7)
    r = results.benchmarks["arith"]
    assert (r.num_problems, r.samples_per_problem, r.k) == (12, 6, 4)
    assert [c["prompts"] for c in hf_generator.calls[-3:]] == [5, 5, 2]
    assert all(c["n"] == 6 and c["temperature"] == 0.6 for c in hf_generator.calls[-3:])
    # Re-score the recorded samples independently and apply the closed forms.
    correct = [int(sum(arithmetic.score(s.text, p["answer"]) for s in samples)) for p, samples in zip(problems, seen)]
    assert r.pass_at_1 == pytest.approx(sum(correct) / (12 * 6))
    assert r.pass_at_k == pytest.approx(sum(1 - comb(6 - c, 4) / comb(6, 4) for c in correct) / 12)
    assert 0 < r.pass_at_1 <= r.pass_at_k <= 1  # the warmed-up tiny model solves some, not all
    assert r.mean_reward == pytest.approx(r.pass_at_1)
    assert 0 <= r.self_bleu <= 1 and r.mean_response_tokens > 0


def test_a_plugin_reward_runs_in_the_scorer_processes(hf_generator, arith_file, tmp_path, monkeypatch):
    (tmp_path / "always_right.py").write_text("def score(response, reference):\n    return 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    benches = load_benchmarks(EvalConfig(benchmarks=[f"arith={arith_file}?max_problems=3"]), TaskConfig(),
                              hf_generator.tokenizer)
    results = evaluate_benchmarks(hf_generator.generate, benches, reward="always_right:score", k=2,
                                  max_new_tokens=3, tokenizer=hf_generator.tokenizer)
    r = results.benchmarks["arith"]
    assert (r.num_problems, r.pass_at_1, r.pass_at_k) == (3, 1.0, 1.0)
    never = evaluate_benchmarks(hf_generator.generate, benches, reward=lambda response, ref: 0.0, k=2,
                                max_new_tokens=3, tokenizer=hf_generator.tokenizer)
    assert (never.benchmarks["arith"].pass_at_1, never.benchmarks["arith"].pass_at_k) == (0.0, 0.0)


def test_a_generator_returning_the_wrong_shape_is_named(hf_generator, arith_file):
    benches = load_benchmarks(EvalConfig(benchmarks=[f"arith={arith_file}"]), TaskConfig(), hf_generator.tokenizer)

    def short(prompts, **kwargs):
        return hf_generator.generate(prompts, **kwargs)[:-1]

    with pytest.raises(RuntimeError, match="arith: generate_fn returned"):
        evaluate_benchmarks(short, benches, reward=arithmetic.score, k=2, max_new_tokens=3,
                            tokenizer=hf_generator.tokenizer)


def test_periodic_eval_logs_to_mlflow_at_each_step(hf_generator, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(None, ["eval.every_steps=5", "eval.k=2", "eval.synthetic_problems=6", "eval.max_new_tokens=4",
                             f"tracking.tracking_uri={uri}"])
    client = MlflowClient(uri)
    experiment = client.create_experiment("eval-test", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    assert [s for s in range(1, 16) if should_evaluate(cfg, s)] == [5, 10, 15]
    for step in (5, 10):
        metrics = run_periodic_eval(cfg, hf_generator.generate, hf_generator.tokenizer, step, run_id=run_id).metrics()
    assert set(metrics) >= {"eval/arithmetic/pass_at_1", "eval/arithmetic/pass_at_2", "eval/arithmetic/self_bleu"}
    assert not any(key.startswith("eval/avg/") for key in metrics)  # one benchmark: an average would repeat it
    history = client.get_metric_history(run_id, "eval/arithmetic/pass_at_1")
    assert [m.step for m in history] == [5, 10]
    assert history[-1].value == pytest.approx(metrics["eval/arithmetic/pass_at_1"])
    artifacts = {a.path for a in client.list_artifacts(run_id, "eval")}
    assert {"eval/table_step000005.md", "eval/table_step000010.md", "eval/results_step000010.json",
            "eval/benchmarks.json"} <= artifacts
    table = client.download_artifacts(run_id, "eval/table_step000010.md", str(tmp_path))
    text = open(table).read()
    assert "| Method" in text and "| apmpo " in text and "arithmetic" in text and "Avg." in text


def result(name, p1, pk, bleu):
    return BenchmarkResult(name=name, num_problems=10, samples_per_problem=16, k=16, pass_at_1=p1, pass_at_k=pk,
                           self_bleu=bleu, mean_reward=p1, mean_response_tokens=100.0, truncated=0.0, seconds=1.0)


def test_table_is_shaped_like_the_papers_table_1():
    base = EvalResults(k=16, benchmarks={"math500": result("math500", 0.742, 0.80, 0.7),
                                         "aime24": result("aime24", 0.10, 0.167, 0.5)})
    tuned = EvalResults(k=16, benchmarks={"math500": result("math500", 0.78, 0.85, 0.6)})
    text = format_table({"Base": base, "APMPO": tuned})
    lines = text.splitlines()
    assert lines[0] == "Pass@1 / Pass@16 (%)"
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header == ["Method", "math500", "aime24", "Avg."]
    base_row = [c.strip() for c in lines[4].strip("|").split("|")]
    assert base_row == ["Base", "74.2 / 80.0", "10.0 / 16.7", "42.1 / 48.4"]
    tuned_row = [c.strip() for c in lines[5].strip("|").split("|")]
    assert tuned_row == ["APMPO", "78.0 / 85.0", "-", "78.0 / 85.0"]
    assert "Self-BLEU (lower = more diverse)" in text and "| 0.600" in text
    assert "Self-BLEU" not in format_table({"Base": base}, self_bleu=False)


def test_average_skips_missing_self_bleu():
    r = EvalResults(k=1, benchmarks={"a": result("a", 0.5, 0.5, float("nan")), "b": result("b", 1.0, 1.0, 0.2)})
    assert r.average() == {"pass_at_1": 0.75, "pass_at_k": 0.75, "self_bleu": 0.2}
    assert "eval/a/self_bleu" in r.metrics()  # NaN stays in the dict; the MLflow logger drops it
