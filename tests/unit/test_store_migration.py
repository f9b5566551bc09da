"""A database written before ``owner`` became ``tenant`` opens with its rows intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from interpreter.assistants.store import AssistantsStore
from interpreter.store import Store


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def test_an_owner_database_is_renamed_in_place(tmp_path: Path) -> None:
    path = tmp_path / "lci.db"
    store = Store(path)
    AssistantsStore(store).add("assistant", "alice", {"id": "asst_1", "object": "assistant"})
    store.close()
    old = sqlite3.connect(path)  # what an earlier lci left: owner columns, containers_owner
    tables = [r[0] for r in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    renamed = [t for t in tables if "tenant" in _columns(old, t)]
    for table in renamed:
        old.execute(f"ALTER TABLE {table} RENAME COLUMN tenant TO owner")
    old.execute("DROP INDEX containers_tenant")
    old.execute("CREATE INDEX containers_owner ON containers(owner)")
    old.commit()
    old.close()
    assert {"sessions", "files", "containers", "assistant_objects"} <= set(renamed)

    store = Store(path)
    assert AssistantsStore(store).get("assistant", "asst_1", "alice") is not None
    store.close()
    db = sqlite3.connect(path)
    assert all("tenant" in _columns(db, t) and "owner" not in _columns(db, t) for t in renamed)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "containers_tenant" in indexes and "containers_owner" not in indexes


def test_a_transaction_inside_another_commits_with_it_or_not_at_all(tmp_path):
    from interpreter.store import Store

    store = Store(tmp_path / "lci.db")
    store.ensure_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER);")
    with store.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
        with store.transaction() as inner:  # joins: no BEGIN of its own
            inner.execute("INSERT INTO t VALUES (2)")
    assert [r[0] for r in store.query("SELECT v FROM t ORDER BY v")] == [1, 2]
    try:
        with store.transaction() as db:
            db.execute("INSERT INTO t VALUES (3)")
            with store.transaction() as inner:
                inner.execute("INSERT INTO t VALUES (4)")
                raise RuntimeError("the inner owner failed")
    except RuntimeError:
        pass
    assert [r[0] for r in store.query("SELECT v FROM t ORDER BY v")] == [1, 2]  # neither
    with store.transaction() as db:  # and the store is usable after
        db.execute("INSERT INTO t VALUES (5)")
    assert [r[0] for r in store.query("SELECT v FROM t ORDER BY v")] == [1, 2, 5]
    store.close()


def test_an_inner_transaction_that_fails_undoes_only_its_own_writes(tmp_path):
    from interpreter.store import Store

    store = Store(tmp_path / "lci.db")
    store.ensure_schema("CREATE TABLE IF NOT EXISTS t (v INTEGER);")
    with store.transaction() as db:
        db.execute("INSERT INTO t VALUES (1)")
        try:
            with store.transaction() as inner:
                inner.execute("INSERT INTO t VALUES (2)")
                raise RuntimeError("the inner owner failed; the outer goes on")
        except RuntimeError:
            pass
        db.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in store.query("SELECT v FROM t ORDER BY v")] == [1, 3]
    store.close()
