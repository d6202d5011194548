"""One function per CLI command, each calling the library in order."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from . import engine, paths
from .errors import UsageError
from .runfolder import new_run_id

log = logging.getLogger(__name__)

KEY_METRICS = ("RMSE", "R2", "MAE", "MAPE")


def lock(args) -> int:
    from .lock import write_lock
    from .spec import read_spec

    write_lock(read_spec(args.env))
    return 0


def build(args) -> int:
    from .image import ensure_image
    from .lock import ensure_lock
    from .spec import read_spec

    spec = read_spec(args.env)
    lock_file = ensure_lock(spec)
    image = ensure_image(engine.connect(), spec, lock_file, no_cache=args.no_cache)
    print(f"image {image.tag} ({image.id[:19]})")
    return 0


def local_train(args) -> int:
    from .inputs import prepare
    from .local import run_local

    run_id = new_run_id()
    out = args.out or paths.RUNS / "local" / run_id
    _check_out(out)
    client = engine.connect()
    inputs = prepare(client, args.env, args.data, args.script, args.args,
                     args.determinism == "on", args.pass_env, args.cpu)
    folder = run_local(client, inputs, out, run_id)
    report_run(folder)
    return 0


def cloud_train(args) -> int:
    from .remote import cloud_train as run_remote

    return run_remote(args)


def cancel(args) -> int:
    from .remote import load_backend
    from .remote.flow import forget_pending

    backend = load_backend(args.target)
    backend.check_config()
    backend.cancel(args.run)
    forget_pending(args.target, args.run)
    print(f"cancelled run {args.run} on {args.target}")
    return 0


def parity(args) -> int:
    from .parity import compare_runs, write_report

    result = compare_runs(args.run_a, args.run_b, rtol=args.rtol, atol=args.atol,
                          max_ulp=args.max_ulp, ignore=args.ignore)
    out = args.out or paths.RUNS / "parity" / new_run_id()
    written = write_report(result, out)
    print(result.summary())
    print(f"report: {written['md']}")
    return result.exit_code


def parity_check(args) -> int:
    from .parity_check import parity_check as run_check

    return run_check(args)


def clean(args) -> int:
    from .clean import clean as run_clean

    run_clean(engine.connect(), everything=args.all)
    return 0


def pin_base(args) -> int:
    from .base import pull_and_pin

    if pull_and_pin(engine.connect(), args.python) is None:
        raise UsageError(f"cannot pin python:{args.python}-slim: the pull failed or the "
                         "registry returned no digest (see the log line above)")
    return 0


def _check_out(out: Path) -> None:
    if Path(out).exists():
        raise UsageError(f"OUT={out} already exists; pick a new folder or leave OUT unset")


def report_run(folder: Path) -> None:
    """Print the run folder and the key metrics, if the script wrote metric.json."""
    print(f"run folder: {folder}")
    metric_file = Path(folder) / "outputs" / "metric.json"
    try:
        metrics = json.loads(metric_file.read_text())
    except (OSError, ValueError):
        return
    shown = [f"{key} {metrics[key]:.6g}" for key in KEY_METRICS
             if isinstance(metrics.get(key), (int, float))]
    if shown:
        print("metrics: " + ", ".join(shown))
