"""The ``sql`` reward: execution match on a real SQLite file that no response can change."""
import hashlib
import sqlite3
import time

import pytest

from apmpo_ray.rewards import get_reward_fn
from apmpo_ray.rewards.sql import _authorize, extract_sql, has_order_by, score_sql

score = get_reward_fn("sql")


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT, age INTEGER);
            INSERT INTO users (name, city, age) VALUES
                ('ann', 'oslo', 31), ('bob', 'rome', 25), ('cid', 'oslo', 47), ('dan', 'rome', 25);
        """)
    conn.close()
    return str(path)


def ref(db, sql):
    return {"sql": sql, "db_path": db}


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_same_result_scores_one_and_different_scores_zero(db):
    gold = ref(db, "SELECT name FROM users WHERE city = 'oslo'")
    assert score("SELECT name FROM users WHERE city = 'oslo'", gold) == 1.0
    assert score("SELECT name FROM users WHERE age > 30", gold) == 1.0  # other query, same rows
    assert score("SELECT name FROM users WHERE city = 'rome'", gold) == 0.0
    assert score("SELECT name, age FROM users WHERE city = 'oslo'", gold) == 0.0


def test_rows_compare_as_multisets(db):
    gold = ref(db, "SELECT age FROM users WHERE city = 'rome'")  # 25, 25
    assert score("SELECT age FROM users WHERE name IN ('dan', 'bob')", gold) == 1.0
    assert score("SELECT DISTINCT age FROM users WHERE city = 'rome'", gold) == 0.0  # lost a duplicate


def test_order_matters_only_when_the_gold_query_orders(db):
    ordered = ref(db, "SELECT name FROM users ORDER BY age DESC, name")
    assert score("SELECT name FROM users ORDER BY age DESC, name", ordered) == 1.0
    assert score("SELECT name FROM users ORDER BY name", ordered) == 0.0
    unordered = ref(db, "SELECT name FROM users")
    assert score("SELECT name FROM users ORDER BY name DESC", unordered) == 1.0


def test_order_by_inside_literals_or_comments_does_not_count():
    assert has_order_by("select a from t order by a")
    assert not has_order_by("select 'order by' from t -- order by a")
    assert not has_order_by("select a from t /* ORDER\nBY */")


def test_sql_is_taken_from_the_last_fence():
    assert extract_sql("try ```sql\nSELECT 1\n``` no, ```SQL\nSELECT 2;\n```") == "SELECT 2;"
    assert extract_sql("```\nSELECT 3\n```") == "SELECT 3"
    assert extract_sql("```sql\nSELECT 4") == "SELECT 4"  # cut off before the closing fence
    assert extract_sql("  SELECT 5  ") == "SELECT 5"


def test_fenced_response_scores(db):
    gold = ref(db, "SELECT count(*) FROM users")
    assert score("The query is:\n```sql\nSELECT count(id) FROM users;\n```\nDone.", gold) == 1.0


@pytest.mark.parametrize("harmful", [
    "DROP TABLE users",
    "UPDATE users SET name = 'x'",
    "DELETE FROM users",
    "INSERT INTO users (name) VALUES ('eve')",
    "CREATE TABLE t (a)",
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode = WAL",
    "VACUUM",
    "SELECT name FROM users; DROP TABLE users",
    "BEGIN EXCLUSIVE",
    "SELECT load_extension('/tmp/evil')",
])
def test_harmful_sql_scores_zero_and_leaves_the_db_unchanged(db, harmful):
    before = digest(db)
    assert score(harmful, ref(db, "SELECT name FROM users")) == 0.0
    assert digest(db) == before
    assert score("SELECT name FROM users", ref(db, "SELECT name FROM users")) == 1.0


def test_attach_cannot_create_a_file(db, tmp_path):
    target = tmp_path / "new.sqlite"
    before = digest(db)
    assert score(f"ATTACH DATABASE '{target}' AS evil", ref(db, "SELECT 1")) == 0.0
    assert not target.exists()
    assert digest(db) == before


def test_the_authorizer_alone_denies_writes(tmp_path):
    # Second line of defence: even on a writable connection the authorizer refuses.
    conn = sqlite3.connect(tmp_path / "w.sqlite", isolation_level=None)
    conn.execute("CREATE TABLE t (a)")
    conn.set_authorizer(_authorize)
    for statement in ("INSERT INTO t VALUES (1)", "DROP TABLE t", "PRAGMA user_version = 3",
                      f"ATTACH DATABASE '{tmp_path / 'x.sqlite'}' AS x"):
        with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
            conn.execute(statement)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    conn.close()


def test_endless_recursive_cte_stops_at_the_time_limit(db):
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.monotonic()
    assert score_sql(endless, ref(db, "SELECT 1"), time_limit_s=0.5) == 0.0
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 2.0


def test_endless_row_stream_stops_at_the_row_limit(db):
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
    started = time.monotonic()
    assert score_sql(endless, ref(db, "SELECT 1"), max_rows=1000) == 0.0
    assert time.monotonic() - started < 1.0


def test_huge_values_are_refused(db):
    assert score("SELECT randomblob(2000000000)", ref(db, "SELECT 1")) == 0.0


def test_broken_queries_score_zero(db):
    gold = ref(db, "SELECT name FROM users")
    for bad in ("SELEC name FROM users", "SELECT nope FROM users", "", "```sql\n```"):
        assert score(bad, gold) == 0.0


@pytest.mark.parametrize("reference", [
    None, "SELECT 1", {"sql": "SELECT 1"}, {"db_path": "x"}, {"sql": "SELECT 1", "db_path": "/no/such.db"},
])
def test_unusable_reference_is_a_clear_error(reference):
    with pytest.raises(ValueError, match="sql reward"):
        score("SELECT 1", reference)


def test_failing_gold_query_is_a_clear_error(db):
    with pytest.raises(ValueError, match="gold query fails"):
        score("SELECT 1", ref(db, "SELECT nope FROM users"))
