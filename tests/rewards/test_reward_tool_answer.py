import pytest

from apmpo_ray.rewards import get_reward_fn

CALL = "<python>print(37*48)</python><result>1776</result>"


@pytest.mark.parametrize("response,expected", [
    (CALL + "<answer>1776</answer>", 1.0),
    ("<answer>1776</answer>", 1.0),  # right without the tool is right
    (CALL + "<answer>1777</answer>", 0.0),  # formatted, wrong
    (CALL + "<answer>1776</answer> trailing", -1.0),  # text after the answer
    ("<python>print(37*48)<result>1776</result><answer>1776</answer>", -1.0),  # unclosed tool tag
    (CALL, -1.0),  # no answer
    ("<answer>1776</answer><answer>1776</answer>", -1.0),
    (CALL + "<search>37 times 48</search><result>none</result><answer>1776</answer>", 1.1),  # two kinds of tool
])
def test_arpo_reward(response, expected):
    assert get_reward_fn("tool_answer")(response, "1776") == pytest.approx(expected)


def test_math_variant_uses_math_verify():
    assert get_reward_fn("tool_math")("<answer>\\frac{1}{2}</answer>", "0.5") == 1.0
    assert get_reward_fn("tool_math")("<answer>1/3</answer>", "0.5") == 0.0
