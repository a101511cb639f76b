"""Chat templates (auto/on/off) and BOS handling of encode_prompt."""
import pytest
from data_files import write_rows

from apmpo_ray.config import TaskConfig
from apmpo_ray.data import DatasetError, encode_prompt, load_problems, prompt_encoder, read_problems
from apmpo_ray.models.tiny import build_tokenizer

# A ChatML-style template like Qwen2.5-Instruct's, rendered with the tokenizer's own Jinja engine.
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture
def chat_tokenizer():
    tok = build_tokenizer()  # char-level with <bos>; the chat markers become special tokens
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    return tok


@pytest.fixture
def data_file(tmp_path):
    return write_rows(tmp_path / "d.jsonl", [{"prompt": "3+4=", "answer": "7"}], "jsonl")


def test_auto_applies_a_chat_template_when_the_tokenizer_has_one(chat_tokenizer, data_file):
    task = TaskConfig(dataset=str(data_file), system_prompt="be exact")
    result = read_problems(task, chat_tokenizer)
    assert result.chat_template
    assert result.problems[0]["prompt"] == ("<|im_start|>system\nbe exact<|im_end|>\n"
                                            "<|im_start|>user\n3+4=<|im_end|>\n<|im_start|>assistant\n")
    ids = prompt_encoder(chat_tokenizer, task)(result.problems[0]["prompt"])
    im_start = chat_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == im_start and chat_tokenizer.bos_token_id not in ids  # the template decides about BOS
    assert ids.count(im_start) == 3


def test_off_keeps_the_raw_prompt_and_adds_bos(chat_tokenizer, data_file):
    task = TaskConfig(dataset=str(data_file), chat_template="off")
    (problem,) = load_problems(task, chat_tokenizer)
    assert problem["prompt"] == "3+4="
    assert prompt_encoder(chat_tokenizer, task)("3+4=")[0] == chat_tokenizer.bos_token_id


def test_on_without_a_chat_template_is_an_error(tiny_tokenizer, data_file):
    with pytest.raises(DatasetError, match="chat_template=on but the tokenizer has no chat template"):
        load_problems(TaskConfig(dataset=str(data_file), chat_template="on"), tiny_tokenizer)
    with pytest.raises(DatasetError, match="chat_template=on but no tokenizer was given"):
        load_problems(TaskConfig(dataset=str(data_file), chat_template="on"))
    assert load_problems(TaskConfig(dataset=str(data_file)), tiny_tokenizer)[0]["prompt"] == "3+4="  # auto -> off


def test_encode_prompt_bos_rules(tiny_tokenizer):
    bos = tiny_tokenizer.bos_token_id
    body = tiny_tokenizer.encode("12+3=", add_special_tokens=False)
    assert encode_prompt(tiny_tokenizer, "12+3=") == [bos] + body
    assert encode_prompt(tiny_tokenizer, "<bos>12+3=") == [bos] + body  # never a second BOS
    assert encode_prompt(tiny_tokenizer, "12+3=", chat_template_applied=True) == body
