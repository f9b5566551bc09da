"""Sixteen tenants at once through their quotas (bench/bench_tenants.py, quick): no output
lost or duplicated, quotas hit and released by every tenant, no container left, the
service's memory flat. The benchmark checks its own floor; this runs it and reads it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]
BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_tenants.py"


def test_sixteen_tenants_through_their_quotas(sandbox_image: str) -> None:
    env = {**os.environ, "LCI_IMAGE": sandbox_image}
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], env=env, capture_output=True, text=True,
        timeout=500,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["tenants"] == 16 and result["executions"] > 16
    assert result["errors"] == [] and result["duplicated_ids"] == 0
    assert result["history_matches"] and result["containers_left"] == 0
    assert result["every_tenant_hit_and_released"] and result["refused_429"] >= 16
    assert result["rss_growth_mib"] <= result["floor"]["rss_growth_mib"]
    assert done.returncode == 0 and result["ok"]
