"""Containers API parity with the current openai SDK (openai 3.x, ``types/container_*.py``):
the official client against a real ``lci serve``: memory tiers within the tenant's quota,
``last_active_at`` that moves with work, ``network_policy``, the ``name`` filter and
``order`` of a list."""

from __future__ import annotations

import time

import httpx
import pytest
from openai import BadRequestError, OpenAI

from interpreter.config import parse_bytes

from .conftest import LiveServer

pytestmark = pytest.mark.docker
GiB = 1024**3


@pytest.fixture
def client(live_server: LiveServer) -> OpenAI:
    return OpenAI(api_key=live_server.key, base_url=f"{live_server.url}/v1", max_retries=0)


def _session_memory(live_server: LiveServer, container_id: str) -> int:
    views = httpx.get(
        f"{live_server.url}/v1/lci/sessions", headers=live_server.headers(), timeout=30
    ).json()["data"]
    (view,) = [v for v in views if v["thread_id"] == container_id]
    return int(view["memory_limit"])


def test_memory_tiers_within_the_quota(client: OpenAI, live_server: LiveServer) -> None:
    for tier in ("1g", "4g"):
        cn = client.containers.create(name="tier", memory_limit=tier)
        try:
            assert cn.memory_limit == tier
            assert _session_memory(live_server, cn.id) == parse_bytes(tier)
        finally:
            client.containers.delete(cn.id)
    big = client.containers.create(name="tier", memory_limit="64g")  # over the quota: clamped
    try:
        granted = parse_bytes(str(big.memory_limit))
        assert GiB <= granted < 64 * GiB and granted <= 16 * GiB  # the default quota's cap
        assert _session_memory(live_server, big.id) == granted  # what the sandbox really has
        assert client.containers.retrieve(big.id).memory_limit == big.memory_limit
        again = client.containers.create(name="tier", memory_limit=big.memory_limit)
        client.containers.delete(again.id)  # what it reads back is a valid memory_limit
        assert again.memory_limit == big.memory_limit
    finally:
        client.containers.delete(big.id)


def test_last_active_at_moves_with_work(client: OpenAI) -> None:
    cn = client.containers.create(name="active")
    try:
        assert cn.last_active_at is not None and cn.last_active_at >= cn.created_at
        time.sleep(1.2)
        client.post(f"/containers/{cn.id}/executions", body={"code": "1"}, cast_to=object)
        later = client.containers.retrieve(cn.id)
        assert later.last_active_at is not None and later.last_active_at > cn.last_active_at
        assert later.expires_after is not None
        assert later.expires_after.anchor == "last_active_at"
    finally:
        client.containers.delete(cn.id)


def test_network_policy_disabled_and_allowlist_refused(client: OpenAI) -> None:
    cn = client.containers.create(name="net", network_policy={"type": "disabled"})
    try:
        assert cn.network_policy is not None and cn.network_policy.type == "disabled"
    finally:
        client.containers.delete(cn.id)
    with pytest.raises(BadRequestError) as refused:
        client.containers.create(
            name="net",
            network_policy={"type": "allowlist", "allowed_domains": ["pypi.org"]},
        )
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == "network_policy"
    assert "allowlist" in error["message"] and "no network" in error["message"]


def test_list_by_name_and_order(client: OpenAI) -> None:
    made = [client.containers.create(name="parity-list") for _ in range(3)]
    other = client.containers.create(name="parity-other")
    try:
        named = list(client.containers.list(name="parity-list", order="asc"))
        assert {c.id for c in named} == {c.id for c in made}
        assert all(c.name == "parity-list" for c in named)
        desc = [c.id for c in client.containers.list(name="parity-list", order="desc")]
        assert desc == [c.id for c in reversed(named)]
        assert [c.created_at for c in named] == sorted(c.created_at for c in named)
        paged = client.containers.list(name="parity-list", limit=1, order="asc")
        assert [c.id for c in paged] == [c.id for c in named]  # auto-pagination, one a page
    finally:
        for c in [*made, other]:
            client.containers.delete(c.id)
