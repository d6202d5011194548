"""Measure the harness's speed and size targets; print a Markdown table.

Usage (from the repository root, after 'make .venv/.dev'):

    .venv/bin/python bench/run.py [--repeat 5] [--skip-cold]

Each figure is measured in this one run, so ratios compare like with like on a
noisy machine. Commands run as subprocesses, the way a user runs them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DATA = "data/mlops_forecast_data2013.csv"


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def harness(*args: str) -> list[str]:
    return [PY, "-m", "harness", *args]


def median_of(repeat: int, make_command) -> float:
    return statistics.median(timed(make_command(i)) for i in range(repeat))


def bench_local_ratio(scratch: Path, repeat: int) -> dict:
    """Warm local-train wall time over a bare-host run of the same script and data."""
    timed(harness("local-train", "--out", str(scratch / "warmup")))
    local, host = [], []
    for i in range(repeat):
        host.append(timed([PY, "scripts/train.py", "--input", DATA,
                           "--output", str(scratch / f"host{i}")]))
        local.append(timed(harness("local-train", "--out", str(scratch / f"local{i}"))))
    return {"host_s": statistics.median(host), "local_s": statistics.median(local),
            "ratio": statistics.median(local) / statistics.median(host)}


def bench_emulated_ratio(scratch: Path, repeat: int) -> dict:
    """Warm emulated cloud-train wall time over warm local-train."""
    timed(harness("cloud-train", "--target", "emulated", "--out", str(scratch / "em-warmup")))
    local, remote = [], []
    for i in range(repeat):
        local.append(timed(harness("local-train", "--out", str(scratch / f"l{i}"))))
        remote.append(timed(harness("cloud-train", "--target", "emulated",
                                    "--out", str(scratch / f"em{i}"))))
    return {"local_s": statistics.median(local), "emulated_s": statistics.median(remote),
            "ratio": statistics.median(remote) / statistics.median(local)}


def bench_parity(scratch: Path, repeat: int) -> dict:
    return {"parity_s": median_of(repeat, lambda i: harness(
        "parity", str(scratch / "local0"), str(scratch / "em0"),
        "--out", str(scratch / f"parity{i}")))}


def bench_builds(skip_cold: bool) -> dict:
    import docker

    result = {"noop_build_s": median_of(3, lambda i: harness("build"))}
    if skip_cold:
        return result
    client = docker.from_env()
    tag = _current_tag()
    client.images.remove(tag, force=True)
    client.images.prune(filters={"label": "io.harness.stage=install", "dangling": True})
    result["cold_build_s"] = timed(harness("build", "--no-cache"))
    return result


def bench_size() -> dict:
    import docker

    client = docker.from_env()
    tag = _current_tag()
    image = client.images.get(tag)
    base = client.images.get(image.labels["io.harness.base"])
    script = ("cd /opt/venv/lib/python3.*/site-packages && du -sk /opt/venv . && "
              "du -sk * | sort -rn | head -12")
    listing = client.containers.run(tag, entrypoint=["sh", "-c", script], remove=True)
    return {"image_mb": image.attrs["Size"] / 1e6, "base_mb": base.attrs["Size"] / 1e6,
            "du_kb": listing.decode().splitlines()}


def _current_tag() -> str:
    out = subprocess.run(harness("build"), cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1].split()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true", help="leave the image in place")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    try:
        steps = {
            "builds": lambda: bench_builds(options.skip_cold),
            "local": lambda: bench_local_ratio(scratch, options.repeat),
            "emulated": lambda: bench_emulated_ratio(scratch, options.repeat),
            "parity": lambda: bench_parity(scratch, options.repeat),
            "size": bench_size,
        }
        for name, step in steps.items():
            print(json.dumps({name: step()}, indent=2), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
