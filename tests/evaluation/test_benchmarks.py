"""The presets' benchmark entries against the file layout of docs/datasets.md, built in a temp dir."""
import json
import sqlite3

import pytest

from apmpo_ray.config import EvalConfig, TaskConfig, load_config
from apmpo_ray.data import DatasetError
from apmpo_ray.evaluation import load_benchmarks
from apmpo_ray.models.tiny import build_tokenizer


def jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def chat_tokenizer():
    tok = build_tokenizer()
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    return tok


def test_paper_math_benchmarks_load_from_the_documented_layout(tmp_path, chat_tokenizer):
    root = tmp_path / "data"
    jsonl(root / "math500/test.jsonl", [{"problem": "1+1?", "solution": "\\boxed{2}", "answer": "2"}])
    jsonl(root / "aime24/test.jsonl", [{"id": 60, "problem": "AIME 24 q", "answer": "204"}])
    jsonl(root / "aime25/test.jsonl", [{"problem": "AIME 25 q", "answer": 70}])
    jsonl(root / "amc23/test.jsonl", [{"question": "AMC q", "answer": 27.0}])
    jsonl(root / "minerva_math/test.jsonl", [{"problem": "OCW q", "solution": "thus $\\boxed{3 \\times 10^8}$."}])
    jsonl(root / "olympiadbench/test.jsonl", [{"question": "Olympiad q", "final_answer": ["$\\sqrt{2}$"]}])
    cfg = load_config("paper_math", [f"task.data_root={root}"])
    benches = load_benchmarks(cfg.eval, cfg.task, chat_tokenizer)
    assert list(benches) == ["math500", "aime24", "aime25", "amc23", "minerva", "olympiadbench"]
    answers = {name: problems[0]["answer"] for name, problems in benches.items()}
    assert answers == {"math500": "2", "aime24": "204", "aime25": "70", "amc23": "27.0",
                       "minerva": "3 \\times 10^8", "olympiadbench": "$\\sqrt{2}$"}
    prompt = benches["amc23"][0]["prompt"]
    assert prompt.startswith("<|user|>AMC q\nPlease reason step by step") and prompt.endswith("<|assistant|>")
    assert all(p["prompt_ids"] and p["prompt_ids"][0] != chat_tokenizer.bos_token_id
               for problems in benches.values() for p in problems)


def test_paper_sql_benchmarks_load_from_the_documented_layout(tmp_path, chat_tokenizer):
    root = tmp_path / "data"
    for db in (root / "spider/database/pets/pets.sqlite", root / "bird/dev/dev_databases/cards/cards.sqlite"):
        db.parent.mkdir(parents=True)
        with sqlite3.connect(db) as conn:
            conn.execute(f"CREATE TABLE {db.stem}_t (id INTEGER, name TEXT)")
        conn.close()
    (root / "spider/dev.json").write_text(json.dumps([{"db_id": "pets", "question": "How many pets?",
                                                        "query": "SELECT count(*) FROM pets_t"}]))
    (root / "bird/dev/dev.json").write_text(json.dumps([{"db_id": "cards", "question": "Which card?",
                                                          "evidence": "card means name", "SQL": "SELECT name FROM cards_t"}]))
    cfg = load_config("paper_sql", [f"task.data_root={root}"])
    benches = load_benchmarks(cfg.eval, cfg.task, chat_tokenizer)
    spider, bird = benches["spider_dev"][0], benches["bird_dev"][0]
    assert spider["answer"] == {"sql": "SELECT count(*) FROM pets_t",
                                "db_path": str(root / "spider/database/pets/pets.sqlite")}
    assert "CREATE TABLE pets_t" in spider["prompt"] and "Question: How many pets?" in spider["prompt"]
    assert bird["answer"]["db_path"] == str(root / "bird/dev/dev_databases/cards/cards.sqlite")
    assert "Question: card means name\nWhich card?" in bird["prompt"]


def test_bare_names_and_missing_files(tmp_path, chat_tokenizer):
    jsonl(tmp_path / "mini/test.jsonl", [{"prompt": "1+2=", "answer": "3"}])
    eval_cfg = EvalConfig(benchmarks=["mini", "arithmetic"], data_root=str(tmp_path), synthetic_problems=5)
    benches = load_benchmarks(eval_cfg, TaskConfig(chat_template="off"), chat_tokenizer)
    assert [p["answer"] for p in benches["mini"]] == ["3"]
    assert len(benches["arithmetic"]) == 5  # a synthetic draw under eval.seed
    with pytest.raises(DatasetError, match=r"no data file for benchmark 'gone'; tried .*gone\.jsonl"):
        load_benchmarks(EvalConfig(benchmarks=["gone"], data_root=str(tmp_path)), TaskConfig(), chat_tokenizer)
    with pytest.raises(DatasetError, match=r"/math500/test\.jsonl: data file not found"):
        cfg = load_config("paper_math", [f"task.data_root={tmp_path}"])
        load_benchmarks(cfg.eval, cfg.task, chat_tokenizer)


def test_no_benchmarks_means_a_held_out_draw_of_a_synthetic_task(chat_tokenizer):
    benches = load_benchmarks(EvalConfig(synthetic_problems=7), TaskConfig(chat_template="off"), chat_tokenizer)
    assert list(benches) == ["arithmetic"] and len(benches["arithmetic"]) == 7
    with pytest.raises(DatasetError, match="eval.benchmarks is empty and the training set is not synthetic"):
        load_benchmarks(EvalConfig(), TaskConfig(dataset="x.jsonl"), chat_tokenizer)
