"""In the spirit of verl's gradient-accumulation test: for every loss, the mini-batch gradient DeepSpeed
accumulates is the same whether the mini-batch runs as micro-batches of 1, 2 or all of it, on 1 or 2
learner workers (gloo, CPU, ZeRO-2)."""
import socket

import pytest
import torch
import torch.multiprocessing as mp

import accumulation_worker
from apmpo_ray.models.tiny import tiny_model_path

REL = 1e-6
LOSS_REL = 1e-5  # the loss is a float32 sum of a few hundred terms; the gradient is the claim


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gradients(world: int, micro_sizes: list[int], tmp_path) -> dict:
    out = tmp_path / f"grads_world{world}.pt"
    mp.start_processes(accumulation_worker.run, args=(world, _free_port(), str(out), str(tiny_model_path()),
                                                      micro_sizes), nprocs=world, join=True, start_method="spawn")
    return torch.load(out)


@pytest.fixture(scope="module")
def gradients(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("accumulation")
    full = accumulation_worker.MINI_BATCH
    return {1: _gradients(1, [1, 2, full], tmp), 2: _gradients(2, [1, 2, full // 2], tmp)}


def test_every_loss_gets_the_same_gradient_for_any_split(gradients):
    reference_micro = accumulation_worker.MINI_BATCH
    failures = []
    for name, correction in accumulation_worker.cases():
        reference, reference_loss = gradients[1][(name, correction, reference_micro)]
        assert torch.linalg.norm(reference) > 0, (name, correction)
        for world, results in gradients.items():
            for (n, c, micro), (grad, loss) in results.items():
                if (n, c) != (name, correction):
                    continue
                rel = float(torch.linalg.norm(grad - reference) / torch.linalg.norm(reference))
                if rel > REL or abs(loss - reference_loss) > LOSS_REL * max(abs(reference_loss), 1e-3):
                    failures.append(f"{name}/{correction} world {world} micro {micro}: grad rel {rel:.2e}, "
                                    f"loss {loss:.8f} vs {reference_loss:.8f}")
    assert not failures, "\n".join(failures)

