"""Locations of the harness's own files and of its caches.

The harness runs from a checkout (installed in editable mode by the Makefile),
so the Dockerfile, base recipes and default data are found relative to it.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = ROOT / "docker"
DEBIAN_RECIPES = DOCKER_DIR / "base" / "debian.json"
BASE_PINS = ROOT / "envs" / "base-images.json"
DEFAULT_SPEC = Path("envs/arima-env.yml")
DEFAULT_DATA = Path("data/mlops_forecast_data2013.csv")
DEFAULT_SCRIPT = Path("scripts")
RUNS = Path("runs")


def cache_dir() -> Path:
    """Return the cache folder (wheels, base build scratch), ``HARNESS_CACHE`` or ``.cache``."""
    return Path(os.environ.get("HARNESS_CACHE") or ROOT / ".cache")
