"""A reward plugin for the guided-workflow test: prompts whose reference is EASY count every answer as right
(so their groups are never guided); the others use the chain task's exact answer."""
from apmpo_ray.tasks.chain import score as chain_score


def score(response: str, reference) -> float:
    return 1.0 if reference == "EASY" else chain_score(response, reference)
