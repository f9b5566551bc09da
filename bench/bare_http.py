"""The floor of HTTP on this machine: uvicorn as ``lci serve`` runs it (httptools, the
same event loop), with an app that does nothing but read a JSON body and answer a JSON
object the size of an execution's. ``bench_http.py`` drives it with the client it
drives ``lci serve`` with, so what HTTP itself costs here (client, loopback, uvicorn)
is told apart from what lci's stack adds.

    .venv/bin/python bench/bare_http.py --port N
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn

ANSWER = json.dumps(
    {"object": "container.execution", "status": "ok", "padding": "x" * 600}
).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        msg = await receive()
        more = msg.get("more_body", False)
    json.loads(msg.get("body") or b"{}")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": ANSWER})


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, http="httptools", log_level="warning",
        access_log=False, server_header=False,
    )  # fmt: skip
