import json

import pytest

from apmpo_ray.tools import SearchTool, get_tool


def write_collection(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"title": "Paris", "text": "Paris is the capital and largest city of France."},
            {"title": "Berlin", "text": "Berlin is the capital of Germany."},
            {"title": "Cats", "text": "The cat is a small domesticated carnivorous mammal."},
            {"title": "Lyon", "text": "Lyon is a city in France, known for its cuisine."}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "notes.txt").write_text("Mount Everest is the highest mountain.\n\nThe Nile is a long river.")
    return [str(path), str(tmp_path / "notes.txt")]


def test_bm25_ranks_the_matching_passage_first(tmp_path):
    tool = SearchTool(write_collection(tmp_path), top_k=2)
    assert tool.size == 6
    hits = tool.search("capital of France")
    assert hits[0][0] == "Paris" and len(hits) == 2
    assert tool("highest mountain").startswith("[1] notes: Mount Everest")
    assert get_tool("search", paths=write_collection(tmp_path))("Nile river") == "[1] notes: The Nile is a long river."


def test_query_syntax_in_model_text_is_not_an_error(tmp_path):
    tool = SearchTool(write_collection(tmp_path))
    assert tool('"( * ^ :') == "No results." and tool("") == "No results."
    # FTS5 operators are plain words here: "AND" finds the passage with "and", it is no syntax error
    assert tool('capital AND NEAR(').startswith("[1] Paris")


def test_bad_collections_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        SearchTool([str(tmp_path / "missing.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        SearchTool([str(bad)])
