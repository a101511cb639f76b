"""TimeoutScorer without Ray: per-sample timeouts that hold, errors that count, workers that come back."""
import os
import signal
import subprocess
import sys
import time

import pytest

from apmpo_ray.verifiers import TimeoutScorer


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead for our purposes
    except FileNotFoundError:
        return False


def pids(scorer):
    return [w.process.pid for w in scorer._workers]


def test_hung_sample_times_out_and_the_rest_of_the_batch_scores(plugin_dir):
    with TimeoutScorer("verifier_test_rewards:hang_on_request", processes=2, timeout_s=1.0) as scorer:
        workers = pids(scorer)
        started = time.monotonic()
        rewards = scorer.score(["a", "hang", "b", "c", "x"], ["a", "hang", "b", "c", "y"])
        elapsed = time.monotonic() - started
        assert rewards == [1.0, 0.0, 1.0, 1.0, 0.0]
        assert 0.9 < elapsed < 3.0
        assert scorer.stats() == {"scored": 5, "timeouts": 1, "errors": 0, "restarts": 0}
        # The sleeping reward was interrupted, not killed: same workers serve the next batch.
        assert scorer.score(["d"] * 6, ["d"] * 6) == [1.0] * 6
        assert pids(scorer) == workers
        assert scorer.stats()["scored"] == 11


def test_runaway_computation_is_interrupted_even_if_it_catches_exceptions(plugin_dir):
    with TimeoutScorer("verifier_test_rewards:spin_on_request", processes=1, timeout_s=0.5) as scorer:
        workers = pids(scorer)
        assert scorer.score(["a", "spin", "b", "spin"], ["a", "x", "b", "x"]) == [1.0, 0.0, 1.0, 0.0]
        assert scorer.stats() == {"scored": 4, "timeouts": 2, "errors": 0, "restarts": 0}
        assert pids(scorer) == workers


def test_a_worker_deaf_to_the_interrupt_is_killed_and_the_spare_takes_over(plugin_dir):
    with TimeoutScorer("verifier_test_rewards:stubborn_on_request", processes=1, timeout_s=0.5,
                       grace_s=0.3) as scorer:
        stuck_pid, spare_pid = scorer._workers[0].process.pid, scorer._spares[0].process.pid
        started = time.monotonic()
        assert scorer.score(["stuck"], ["x"]) == [0.0]
        assert time.monotonic() - started < 0.5 + 0.3  # the batch does not wait for the kill
        # The next batch waits out the grace period, kills the stuck worker and uses the warm spare.
        assert scorer.score(["a", "b"], ["a", "b"]) == [1.0, 1.0]
        assert not alive(stuck_pid)
        assert pids(scorer) == [spare_pid]
        new_spare_pid = scorer._spares[0].process.pid
        assert alive(new_spare_pid) and new_spare_pid != spare_pid
        assert scorer.stats() == {"scored": 3, "timeouts": 1, "errors": 0, "restarts": 1}
        # Two stuck samples in one batch with one worker: the second waits for the replacement.
        assert scorer.score(["stuck", "c", "stuck", "d"], ["x", "c", "x", "d"]) == [0.0, 1.0, 0.0, 1.0]
    assert not alive(spare_pid) and not alive(new_spare_pid)  # close() stops every process


def test_reward_errors_score_zero_and_are_counted(plugin_dir):
    with TimeoutScorer("verifier_test_rewards:raise_on_request", processes=2, timeout_s=5.0) as scorer:
        rewards = scorer.score(["a", "raise", "nan", "exit", "b"], ["a", "x", "x", "x", "b"])
        assert rewards == [1.0, 0.0, 0.0, 0.0, 1.0]
        stats = scorer.stats()
        assert stats["errors"] == 3 and stats["timeouts"] == 0 and stats["restarts"] == 1  # "exit" killed one
        assert scorer.score(["c"], ["c"]) == [1.0]


def test_memory_limit_turns_a_runaway_allocation_into_an_error(plugin_dir):
    with TimeoutScorer("verifier_test_rewards:raise_on_request", timeout_s=5.0, memory_limit_mb=512,
                       spare=False) as scorer:
        assert scorer.score(["alloc", "a"], ["x", "a"]) == [0.0, 1.0]
        assert scorer.stats()["errors"] == 1


def test_pathological_math_returns_within_the_timeout():
    with TimeoutScorer("math", processes=1, timeout_s=1.0) as scorer:
        responses = ["\\boxed{9^{9^{9^{9}}}}", "\\boxed{\\frac{1}{2}}", "x " * 50_000 + "\\boxed{3}"]
        started = time.monotonic()
        rewards = scorer.score(responses, ["5", "0.5", "3"])
        elapsed = time.monotonic() - started
        assert rewards == [0.0, 1.0, 1.0]
        assert scorer.stats()["timeouts"] == 1
        assert elapsed < 1.0 + 1.0


def test_workers_exit_when_their_parent_is_killed(plugin_dir, tmp_path):
    # What ray.kill does to a VerifierActor: SIGKILL, no chance to stop the workers.
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {plugin_dir!r})\n"
        "from apmpo_ray.verifiers import TimeoutScorer\n"
        "s = TimeoutScorer('verifier_test_rewards:hang_on_request', processes=2, timeout_s=600)\n"
        "print(' '.join(str(w.process.pid) for w in s._workers + s._spares), flush=True)\n"
        "s.score(['hang', 'hang'], ['x', 'x'])\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker_pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(worker_pids) == 3 and all(alive(p) for p in worker_pids)
    time.sleep(0.5)  # both workers are now inside the hanging reward
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while any(alive(p) for p in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in worker_pids)


def test_bad_input_is_a_clear_error_and_the_scorer_stays_usable(plugin_dir):
    with pytest.raises(ValueError, match="cannot load reward"):
        TimeoutScorer("no_such_module_xyz:score")
    with pytest.raises(ValueError, match="processes"):
        TimeoutScorer("arithmetic", processes=0)
    with pytest.raises(ValueError, match="timeout_s"):
        TimeoutScorer("arithmetic", timeout_s=0)
    with TimeoutScorer("arithmetic") as scorer:
        with pytest.raises(ValueError, match="2 responses but 1 references"):
            scorer.score(["1", "2"], ["1"])
        with pytest.raises(TypeError, match="cannot be sent"):
            scorer.score(["1", "2"], ["1", lambda: 2])
        assert scorer.score(["1 ", "3"], ["1", "2"]) == [1.0, 0.0]
        assert scorer.score([], []) == []
        worker_pids = pids(scorer) + [w.process.pid for w in scorer._spares]
    assert not any(alive(p) for p in worker_pids)
    with pytest.raises(RuntimeError, match="closed"):
        scorer.score(["1"], ["1"])
    scorer.close()  # idempotent
