"""Other clients of the Responses API, tried as a new user would, against a real
``lci serve`` with a scripted chat-completions model: LangChain's ``ChatOpenAI`` with
``use_responses_api`` and the hosted code_interpreter tool, and the official openai-node
SDK (npm), streaming included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_openai import ChatOpenAI

from ..scripted_model import ScriptedModel, code, say
from .conftest import LiveServer, model_server

pytestmark = [pytest.mark.docker, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
NODE_SDK = "openai@6.30.1"  # the latest openai-node that supports this machine's Node.js 20
NODE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lci-tests"
SCRIPT = Path(__file__).with_name("openai_node_client.mjs")


@pytest.fixture(scope="module")
def server(sandbox_image: str, docker_client: object, model: ScriptedModel) -> Iterator[LiveServer]:
    with model_server(sandbox_image, model, "lci-rc-") as s:
        yield s


def test_langchain_chat_openai_with_the_hosted_code_interpreter(
    server: LiveServer, model: ScriptedModel
) -> None:
    model.script("lc", code("print(6 * 7)"), say("The answer is 42."))
    llm = ChatOpenAI(
        model="lc", base_url=f"{server.url}/v1", api_key=server.key, use_responses_api=True,
        max_retries=0,
    )  # fmt: skip
    bound = llm.bind_tools([{"type": "code_interpreter", "container": {"type": "auto"}}])
    reply = bound.invoke("What is 6 * 7? Use code.", include=["code_interpreter_call.outputs"])
    assert reply.text == "The answer is 42."
    blocks: list[Any] = reply.content if isinstance(reply.content, list) else []
    calls = [b for b in blocks if isinstance(b, dict) and "code_interpreter" in str(b.get("type"))]
    assert calls, blocks  # the hosted tool's call comes back among the content blocks
    assert "print(6 * 7)" in json.dumps(calls) and "42" in json.dumps(calls)
    assert str(reply.response_metadata.get("id", "")).startswith("resp_")


def _node_sdk() -> Path:
    where = NODE_CACHE / NODE_SDK.replace("@", "-")
    if not (where / "node_modules" / "openai").is_dir():
        where.mkdir(parents=True, exist_ok=True)
        (where / "package.json").write_text('{"private": true, "type": "module"}\n')
        npm = subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", NODE_SDK],
            cwd=where, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert npm.returncode == 0, npm.stderr[-3000:]
    return where


def test_openai_node_sdk_plain_and_streamed(server: LiveServer, model: ScriptedModel) -> None:
    model.script("node-plain", code("print(6 * 7)"), say("It is 42."))
    model.script("node-stream", code("print('again')"), say("Streamed, again."))
    where = _node_sdk()
    shutil.copy(SCRIPT, where / SCRIPT.name)
    env = {**os.environ, "LCI_URL": server.url, "LCI_KEY": server.key}
    p = subprocess.run(
        ["node", SCRIPT.name], cwd=where, env=env, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["status"] == "completed" and out["text"] == "It is 42."
    assert out["code"] == "print(6 * 7)" and out["container"].startswith("cntr_")
    assert out["logs"] == ["42\n"]
    assert out["streamStatus"] == "completed" and out["streamText"] == "Streamed, again."
    events = out["events"]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    for kind in (
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.completed",
        "response.output_text.delta",
        "response.output_text.done",
    ):
        assert kind in events, (kind, events)
