"""``tox -e parity``: make sure a local and a remote run of the same inputs exist, then compare.

An existing run folder is reused only when its manifest names the same image,
script snapshot, data and arguments as a run made now would. Otherwise the
missing leg is run. The remote target comes from ``TARGET`` (default
``emulated``).
"""

from __future__ import annotations

import json
import logging
import os
from argparse import Namespace
from pathlib import Path

from . import engine, paths
from .inputs import prepare
from .local import run_local
from .manifest import RunInputs
from .runfolder import FAILED_NAME, new_run_id

log = logging.getLogger(__name__)


def parity_check(args: Namespace) -> int:
    """Run the missing legs and the comparison; return parity's exit code."""
    from .parity import compare_runs, write_report
    from .remote import load_backend
    from .remote.flow import cloud_train

    target = os.environ.get("TARGET") or "emulated"
    backend = load_backend(target)
    backend.check_config()
    client = engine.connect()
    inputs = prepare(client, args.env, args.data, args.script, args.args,
                     args.determinism == "on", args.pass_env, args.cpu)

    local = find_matching_run(paths.RUNS / "local", inputs)
    if local is None:
        log.info("no matching local run; running one", extra={"phase": "parity"})
        run_id = new_run_id()
        local = run_local(client, inputs, paths.RUNS / "local" / run_id, run_id)
    remote = find_matching_run(paths.RUNS / target, inputs)
    if remote is None:
        log.info("no matching %s run; running one", target, extra={"phase": "parity"})
        remote = cloud_train(Namespace(**{**vars(args), "run": None, "out": None}), backend,
                             inputs)

    result = compare_runs(local, remote)
    written = write_report(result, paths.RUNS / "parity" / new_run_id())
    print(f"target: {target}")
    print(f"local run: {local}")
    print(f"{target} run: {remote}")
    print(result.summary())
    print(f"report: {written['md']}")
    return result.exit_code


def find_matching_run(folder: Path, inputs: RunInputs) -> Path | None:
    """Return the newest run under ``folder`` made from exactly these inputs, if any."""
    wanted = {
        "image": inputs.image.id,
        "script": inputs.snapshot.sha256,
        "data": inputs.data_sha256(),
        "arguments": list(inputs.arguments),
        "determinism": inputs.determinism,
        "environment": inputs.environment,
    }
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.iterdir(), reverse=True):
        if candidate.name.startswith(".") or FAILED_NAME.match(candidate.name):
            continue
        try:
            manifest = json.loads((candidate / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if _identity(manifest) == wanted:
            log.info("reusing %s (same image, script, data and arguments)", candidate,
                     extra={"phase": "parity"})
            return candidate
    return None


def _identity(manifest: dict) -> dict:
    inputs = manifest.get("inputs", {})
    determinism = manifest.get("determinism", {})
    return {
        "image": manifest.get("image", {}).get("id"),
        "script": inputs.get("script", {}).get("sha256"),
        "data": inputs.get("data", {}).get("sha256"),
        "arguments": inputs.get("arguments"),
        "determinism": determinism.get("enabled"),
        "environment": determinism.get("env"),
    }
