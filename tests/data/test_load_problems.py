"""load_problems: synthetic default, local files with column mapping, templates, bad rows named by file and row."""
import json
import logging
import sqlite3

import pytest
from data_files import write_rows

from apmpo_ray.config import TaskConfig
from apmpo_ray.data import MATH_TEMPLATE, DatasetError, encode_prompt, load_problems, read_problems
from apmpo_ray.tasks import arithmetic

MATH_ROWS = [
    {"problem": "What is $1+1$?", "answer": "2", "level": "Level 1"},
    {"problem": "Simplify $\\frac{2}{4}$.", "answer": "\\frac{1}{2}", "level": "Level 2"},
    {"problem": "AIME-style: how many?", "answer": 204, "level": "Level 5"},  # AIME sets store integers
]


def test_tiny_default_is_the_synthetic_arithmetic_task(tiny_tokenizer):
    problems = load_problems(TaskConfig(), tiny_tokenizer)
    expected = arithmetic.make_problems(4096, seed=0, max_operand=9)
    assert [(p["prompt"], p["answer"]) for p in problems] == [(e["prompt"], e["answer"]) for e in expected]
    ids = encode_prompt(tiny_tokenizer, problems[0]["prompt"])
    assert ids == [tiny_tokenizer.bos_token_id] + tiny_tokenizer.encode(problems[0]["prompt"], add_special_tokens=False)
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == problems[0]["prompt"]


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_local_files_with_column_mapping(tmp_path, fmt):
    rows = [dict(r, answer=str(r["answer"])) for r in MATH_ROWS] if fmt == "parquet" else MATH_ROWS
    write_rows(tmp_path / f"train.{fmt}", rows, fmt)
    task = TaskConfig(dataset=f"train.{fmt}", data_root=str(tmp_path), prompt_column="problem",
                      answer_column="answer")
    problems = load_problems(task)
    assert [p["question"] for p in problems] == [r["problem"] for r in MATH_ROWS]
    assert [p["answer"] for p in problems] == ["2", "\\frac{1}{2}", "204"]
    assert [p["prompt"] for p in problems] == [r["problem"] for r in MATH_ROWS]  # no template: the raw question
    assert problems[2]["source"] == f"{tmp_path / f'train.{fmt}'}#3"


def test_math_template_is_the_papers_boxed_instruction(tmp_path):
    write_rows(tmp_path / "m.jsonl", MATH_ROWS, "jsonl")
    problems = load_problems(TaskConfig(dataset=str(tmp_path / "m.jsonl"), prompt_column="problem",
                                        prompt_template="math"))
    assert problems[1]["prompt"] == MATH_TEMPLATE.replace("{prompt}", MATH_ROWS[1]["problem"])
    assert problems[1]["prompt"].endswith("Please reason step by step, and put your final answer within \\boxed{}.")
    custom = load_problems(TaskConfig(dataset=str(tmp_path / "m.jsonl"), prompt_column="problem",
                                      prompt_template="Q: {prompt}\nA:", system_prompt="Be brief."))
    assert custom[0]["prompt"] == "Be brief.\n\nQ: What is $1+1$?\nA:"


def test_json_lines_in_a_json_file_and_max_problems(tmp_path):
    write_rows(tmp_path / "lines.json", MATH_ROWS, "jsonl")
    problems = load_problems(TaskConfig(dataset=str(tmp_path / "lines.json"), prompt_column="problem",
                                        max_problems=2))
    assert [p["answer"] for p in problems] == ["2", "\\frac{1}{2}"]


BAD_ROWS = {
    "missing prompt field": ({"question": "x", "answer": "1"}, "missing field 'problem'"),
    "empty prompt": ({"problem": "   ", "answer": "1"}, "field 'problem' (prompt) is empty"),
    "list answer": ({"problem": "x", "answer": ["1", "2"]}, "(answer) must be text or a number, got list"),
    "null answer": ({"problem": "x", "answer": None}, "(answer) must be text or a number, got NoneType"),
    "bool answer": ({"problem": "x", "answer": True}, "got bool"),
    "missing answer": ({"problem": "x"}, "missing field 'answer'"),
    "not an object": (["x", "1"], "expected an object of fields, found a list"),
}


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_raises_naming_file_and_row(tmp_path, fmt, case):
    bad, reason = BAD_ROWS[case]
    path = write_rows(tmp_path / f"data.{fmt}", [MATH_ROWS[0], MATH_ROWS[1], bad, MATH_ROWS[2]], fmt)
    with pytest.raises(DatasetError) as info:
        load_problems(TaskConfig(dataset=str(path), prompt_column="problem"))
    assert str(info.value).startswith(f"{path}, row 3: ")
    assert reason in str(info.value)
    assert (info.value.source, info.value.row) == (str(path), 3)


def test_jsonl_rows_are_line_numbers_and_invalid_json_is_a_bad_row(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(MATH_ROWS[0]) + "\n\n" + '{"problem": "x", "answer": \n' + json.dumps(MATH_ROWS[1]))
    with pytest.raises(DatasetError, match=r"d\.jsonl, row 3: invalid JSON"):
        load_problems(TaskConfig(dataset=str(path), prompt_column="problem"))


def test_parquet_bad_row_is_named_too(tmp_path):
    rows = [{"problem": "a", "answer": "1"}, {"problem": "", "answer": "2"}]
    path = write_rows(tmp_path / "d.parquet", rows, "parquet")
    with pytest.raises(DatasetError, match=r"d\.parquet, row 2: field 'problem' \(prompt\) is empty"):
        load_problems(TaskConfig(dataset=str(path), prompt_column="problem"))


def test_skip_bad_rows_skips_and_counts(tmp_path, caplog):
    rows = [MATH_ROWS[0], BAD_ROWS["empty prompt"][0], MATH_ROWS[1], BAD_ROWS["list answer"][0], MATH_ROWS[2]]
    path = write_rows(tmp_path / "d.jsonl", rows, "jsonl")
    task = TaskConfig(dataset=str(path), prompt_column="problem", skip_bad_rows=True)
    result = read_problems(task)
    assert [p["answer"] for p in result.problems] == ["2", "\\frac{1}{2}", "204"]
    assert [(e.source, e.row) for e in result.skipped] == [(str(path), 2), (str(path), 4)]
    with caplog.at_level(logging.WARNING, logger="apmpo_ray.data.problems"):
        assert len(load_problems(task)) == 3
    assert "skipped 2 bad rows" in caplog.text and "row 2" in caplog.text


def test_only_bad_rows_is_an_error_even_when_skipping(tmp_path):
    path = write_rows(tmp_path / "d.jsonl", [BAD_ROWS["empty prompt"][0]], "jsonl")
    with pytest.raises(DatasetError, match="no usable problems .1 bad rows skipped"):
        load_problems(TaskConfig(dataset=str(path), prompt_column="problem", skip_bad_rows=True))


def test_missing_or_unsupported_sources_are_named(tmp_path):
    with pytest.raises(DatasetError, match=r"math/train\.jsonl: data file not found .*docs/datasets\.md"):
        load_problems(TaskConfig(dataset="math/train.jsonl", data_root=str(tmp_path)))
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DatasetError, match="unsupported file type '.txt'"):
        load_problems(TaskConfig(dataset=str(tmp_path / "d.txt")))
    (tmp_path / "broken.json").write_text('[{"problem": "x"')
    with pytest.raises(DatasetError, match=r"broken\.json: invalid JSON at line 1"):
        load_problems(TaskConfig(dataset=str(tmp_path / "broken.json")))


@pytest.fixture
def spider_like(tmp_path):
    """A BIRD/Spider-style layout: <db_root>/<db_id>/<db_id>.sqlite and a JSON list of questions."""
    db_dir = tmp_path / "database" / "concert"
    db_dir.mkdir(parents=True)
    with sqlite3.connect(db_dir / "concert.sqlite") as conn:
        conn.executescript("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);"
                           "INSERT INTO singer (name, age) VALUES ('ann', 31), ('bob', 52);")
    conn.close()
    rows = [{"db_id": "concert", "question": "How many singers are there?", "query": "SELECT count(*) FROM singer",
             "evidence": ""},
            {"db_id": "concert", "question": "Who is old?", "query": "SELECT name FROM singer WHERE age > 50",
             "evidence": "old refers to age > 50"}]
    write_rows(tmp_path / "dev.json", rows, "json")
    return tmp_path


def sql_task(root, **kw):
    return TaskConfig(dataset="dev.json", data_root=str(root), prompt_column="question", answer_column="query",
                      db_id_column="db_id", db_root="database", hint_column="evidence", prompt_template="sql",
                      reward="sql", **kw)


def test_sql_rows_get_a_schema_prompt_and_an_executable_reference(spider_like):
    from apmpo_ray.rewards import get_reward_fn

    problems = load_problems(sql_task(spider_like))
    db_path = str(spider_like / "database" / "concert" / "concert.sqlite")
    assert problems[0]["answer"] == {"sql": "SELECT count(*) FROM singer", "db_path": db_path}
    assert "CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);" in problems[0]["prompt"]
    assert "Question: How many singers are there?" in problems[0]["prompt"]
    assert "Question: old refers to age > 50\nWho is old?" in problems[1]["prompt"]  # BIRD evidence first
    score = get_reward_fn("sql")
    assert score("```sql\nSELECT name FROM singer WHERE age > 50\n```", problems[1]["answer"]) == 1.0
    assert score("```sql\nSELECT name FROM singer\n```", problems[1]["answer"]) == 0.0


def test_sql_row_with_a_missing_database_is_named(spider_like):
    rows = json.loads((spider_like / "dev.json").read_text()) + [{"db_id": "nope", "question": "q", "query": "SELECT 1",
                                                                   "evidence": ""}]
    write_rows(spider_like / "dev.json", rows, "json")
    with pytest.raises(DatasetError, match=r"dev\.json, row 3: database 'nope' not found at .*nope/nope\.sqlite"):
        load_problems(sql_task(spider_like))
    assert len(load_problems(sql_task(spider_like, skip_bad_rows=True))) == 2


def test_schema_template_needs_a_db_id_column(spider_like):
    with pytest.raises(DatasetError, match="uses \\{schema\\}: set task.db_id_column"):
        load_problems(TaskConfig(dataset=str(spider_like / "dev.json"), prompt_column="question",
                                 answer_column="query", prompt_template="sql"))


def test_answer_formats_boxed_and_first(tmp_path):
    rows = [{"problem": "p1", "solution": "So $x = \\boxed{\\frac{1}{2}}$, not \\boxed{0} ... \\boxed{\\frac{3}{4}}."},
            {"problem": "p2", "solution": "No box here, the answer is 3."}]
    path = write_rows(tmp_path / "math.jsonl", rows, "jsonl")
    task = TaskConfig(dataset=str(path), prompt_column="problem", answer_column="solution", answer_format="boxed")
    with pytest.raises(DatasetError, match=r"row 2: field 'solution' \(answer, format 'boxed'\) has no non-empty"):
        load_problems(task)
    assert [p["answer"] for p in load_problems(TaskConfig(**{**task.__dict__, "skip_bad_rows": True}))] == [
        "\\frac{3}{4}"]
    rows = [{"question": "q1", "final_answer": ["$\\sqrt{2}$"]}, {"question": "q2", "final_answer": []}]
    path = write_rows(tmp_path / "olympiad.jsonl", rows, "jsonl")
    task = TaskConfig(dataset=str(path), prompt_column="question", answer_column="final_answer", answer_format="first")
    with pytest.raises(DatasetError, match=r"row 2: .*must be a non-empty list, got list \[\]"):
        load_problems(task)
    with pytest.raises(DatasetError, match=r"row 1: .*must be text or a number, got list"):
        load_problems(TaskConfig(dataset=str(path), prompt_column="question", answer_column="final_answer"))
