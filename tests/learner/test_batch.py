import torch

from apmpo_ray.learner.batch import build_batch, token_logprobs
from apmpo_ray.rollout.types import Prompt, RolloutGroup, Sample


def _group(index, prompt_ids, responses):
    samples = [Sample(response_ids=r, logprobs=[-0.5 - 0.1 * j for j in range(len(r))], text="", reward=float(i % 2))
               for i, r in enumerate(responses)]
    return RolloutGroup(Prompt(index, prompt_ids, ""), samples, version=0)


def test_response_tokens_are_scored_where_they_are_predicted():
    groups = [_group(0, [1, 5, 6], [[7, 2], [8, 9, 2]]), _group(1, [1, 5], [[2], [7, 7, 7, 2]])]
    batch = build_batch(groups, pad_id=0)
    assert batch.input_ids.shape == (4, 6)
    assert batch.input_ids[1].tolist() == [1, 5, 6, 8, 9, 2]
    assert batch.input_ids[2].tolist() == [1, 5, 2, 0, 0, 0]
    # row 1: prompt of 3 tokens, response of 3 -> predicted at shifted positions 2, 3, 4
    assert batch.loss_mask[1].tolist() == [0, 0, 1, 1, 1]
    assert batch.loss_mask[2].tolist() == [0, 1, 0, 0, 0]
    assert torch.allclose(batch.behaviour_logprobs[1, 2:5], torch.tensor([-0.5, -0.6, -0.7]))
    assert batch.rewards.tolist() == [0.0, 1.0, 0.0, 1.0]
    # the mask picks exactly the response tokens out of the shifted targets
    targets = batch.input_ids[:, 1:][batch.loss_mask.bool()]
    assert targets.tolist() == [7, 2, 8, 9, 2, 2, 7, 7, 7, 2]


def test_select_trims_padding_and_keeps_rows_aligned():
    groups = [_group(0, [1, 5], [[7, 2], [8, 9, 9, 9, 2]])]
    batch = build_batch(groups, pad_id=0)
    part = batch.select([0])
    assert part.input_ids.shape == (1, 4) and part.loss_mask.shape == (1, 3)
    assert part.loss_mask.sum() == 2


def test_token_logprobs_match_log_softmax_and_entropy():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11, dtype=torch.float64)
    ids = torch.randint(0, 11, (3, 7))
    picked, entropy = token_logprobs(logits, ids, temperature=0.7, with_entropy=True)
    ref = torch.log_softmax(logits[:, :-1].float() / 0.7, -1)
    assert torch.allclose(picked, ref.gather(-1, ids[:, 1:, None]).squeeze(-1), atol=1e-5)
    assert torch.allclose(entropy, -(ref.exp() * ref).sum(-1), atol=1e-5)
