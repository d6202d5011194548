"""Shared fixtures: the real Docker engine and the real training image.

Tests marked ``docker`` build and run real images. Outside CI they are skipped
when no engine can be reached or started; with CI=true a missing engine fails
them instead, because a skipped Docker test proves nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_2013 = ROOT / "data" / "mlops_forecast_data2013.csv"
SPEC = ROOT / "envs" / "arima-env.yml"


@pytest.fixture(scope="session")
def docker_client():
    from harness import engine
    from harness.errors import EngineError

    try:
        return engine.connect()
    except EngineError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a Docker engine: {exc}")
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def run_inputs(docker_client):
    """Lock, image and inputs for the shipped spec, data and script (built once)."""
    from harness.inputs import prepare

    os.chdir(ROOT)
    return prepare(docker_client, SPEC, DATA_2013, ROOT / "scripts", [], True, [])


@pytest.fixture
def script_copy(tmp_path):
    """A copy of scripts/ that a test may edit."""
    target = tmp_path / "scripts"
    shutil.copytree(ROOT / "scripts", target, ignore=shutil.ignore_patterns("__pycache__"))
    return target
