"""Where stored responses live: one table in the lci database, per tenant.

A row is one response (JSON, as the wire shows it, code outputs kept whatever the
request's ``include``), its input items, and private state never shown to clients:
the container its code ran in and what the model read back from each call.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import NoSuchObject
from ..store import Store

__all__ = ["ResponsesStore", "Stored"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL DEFAULT '',
    previous_id TEXT,
    body TEXT NOT NULL,
    input TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_tenant ON responses(tenant, id);
"""
MAX_CHAIN = 1000  # responses followed back along previous_response_id


@dataclass
class Stored:
    body: dict[str, Any]
    input: list[dict[str, Any]]
    state: dict[str, Any] = field(default_factory=dict)


class ResponsesStore:
    def __init__(self, store: Store) -> None:
        self.db = store
        store.ensure_schema(SCHEMA)

    def put(self, tenant: str, stored: Stored) -> None:
        body = stored.body
        with self.db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO responses (id, tenant, previous_id, body, input, state,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    body["id"],
                    tenant,
                    body.get("previous_response_id"),
                    json.dumps(body),
                    json.dumps(stored.input),
                    json.dumps(stored.state),
                    time.time(),
                ),
            )

    def get(self, tenant: str, response_id: str, param: str | None = None) -> Stored:
        rows = self.db.query(
            "SELECT body, input, state FROM responses WHERE id = ? AND tenant = ?",
            (response_id, tenant),
        )
        if not rows:
            raise NoSuchObject("response", response_id, param)
        body, inp, state = rows[0]
        return Stored(json.loads(body), json.loads(inp), json.loads(state))

    def delete(self, tenant: str, response_id: str) -> None:
        with self.db.transaction() as db:
            cur = db.execute(
                "DELETE FROM responses WHERE id = ? AND tenant = ?", (response_id, tenant)
            )
        if cur.rowcount == 0:
            raise NoSuchObject("response", response_id)

    def reads(self, tenant: str, item_ids: set[str], recent: int = 50) -> dict[str, str]:
        """What the model read back from these code calls, if one of the tenant's
        ``recent`` responses made them (an agent replaying our items as its input)."""
        if not item_ids:
            return {}
        rows = self.db.query(
            "SELECT state FROM responses WHERE tenant = ? ORDER BY seq DESC LIMIT ?",
            (tenant, recent),
        )
        out: dict[str, str] = {}
        for (state,) in rows:
            reads = json.loads(state).get("reads", {})
            out.update({k: v for k, v in reads.items() if k in item_ids and k not in out})
        return out

    def chain(self, tenant: str, response_id: str) -> list[Stored]:
        """The response and those before it along ``previous_response_id``, oldest first."""
        out = [self.get(tenant, response_id, "previous_response_id")]
        while (prev := out[-1].body.get("previous_response_id")) and len(out) < MAX_CHAIN:
            try:
                out.append(self.get(tenant, prev))
            except NoSuchObject:  # deleted since: the chain starts after it
                break
        return out[::-1]
