"""Command line: ``python -m harness lock|build|local-train|cloud-train|cancel|parity|clean``.

This module only parses arguments, sets up logging and calls the library. It
is the one place that turns a HarnessError into ``error: <message>`` on stderr
and an exit code; progress goes to stdout, warnings to stderr.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
from pathlib import Path

from docker.errors import DockerException

from . import __version__, paths
from .errors import HarnessError, UsageError
from .text import printable

log = logging.getLogger("harness")


class _ProgressFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        phase = getattr(record, "phase", None)
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return f"[{phase}] {message}" if phase else message


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see '{self.prog} --help'\n")


def setup_logging(verbose: bool) -> None:
    """Send INFO (or DEBUG with -v) to stdout and warnings to stderr."""
    root = logging.getLogger("harness")
    root.handlers.clear()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
    progress = logging.StreamHandler(sys.stdout)
    progress.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    for handler in (progress, warnings):
        handler.setFormatter(_ProgressFormatter())
        root.addHandler(handler)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", type=Path, default=paths.DEFAULT_SPEC,
                        help="conda spec (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=paths.DEFAULT_DATA,
                        help="CSV data file (default: %(default)s)")
    parser.add_argument("--script", type=Path, default=paths.DEFAULT_SCRIPT,
                        help="script folder with train.py (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="run folder to create; must not exist (default: runs/<target>/<run id>)")
    parser.add_argument("--args", default="",
                        help="extra training arguments as one string, e.g. '--order 1,1,1'")
    parser.add_argument("--determinism", choices=("on", "off"), default="on",
                        help="apply the determinism profile (default: on)")
    parser.add_argument("--pass-env", default="",
                        help="comma-separated names of variables to pass into the container")
    parser.add_argument("--cpu", default=None,
                        help="'avx2': compute as an AVX2-only CPU would (numpy and OpenBLAS)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show build and tool output")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)

    lock = commands.add_parser("lock", help="resolve the spec into envs/<name>.lock")
    lock.add_argument("--env", type=Path, default=paths.DEFAULT_SPEC, help="conda spec")

    build = commands.add_parser("build", help="build (or reuse) the image for the spec's lock")
    build.add_argument("--env", type=Path, default=paths.DEFAULT_SPEC, help="conda spec")
    build.add_argument("--no-cache", action="store_true",
                       help="rebuild every step, without the engine's layer cache")

    local = commands.add_parser("local-train", help="train in the image on this machine")
    _add_run_options(local)

    cloud = commands.add_parser("cloud-train", help="train on a remote target")
    _add_run_options(cloud)
    cloud.add_argument("--target", default="azureml",
                       help="azureml (SDK v1), azureml-v2 (SDK v2) or emulated")
    cloud.add_argument("--run", default=None, help="re-attach to this submitted run id")

    parity = commands.add_parser("parity", help="compare two run folders number by number")
    parity.add_argument("run_a", type=Path)
    parity.add_argument("run_b", type=Path)
    parity.add_argument("--out", type=Path, default=None,
                        help="report folder (default: runs/parity/<id>)")
    parity.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0)")
    parity.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    parity.add_argument("--max-ulp", type=int, default=0,
                        help="tolerance in units in the last place (default 0: exact)")
    parity.add_argument("--ignore", action="append", default=[],
                        help="glob of number names to leave out, e.g. 'metric.json:*duration*'")

    cancel = commands.add_parser("cancel", help="cancel a submitted remote run (it is billed)")
    cancel.add_argument("--target", default="azureml",
                        help="azureml (SDK v1), azureml-v2 (SDK v2) or emulated")
    cancel.add_argument("run", help="the run id that cloud-train printed")

    check = commands.add_parser(
        "parity-check", help="run the local and TARGET legs if missing, then compare them")
    _add_run_options(check)

    clean = commands.add_parser("clean", help="remove old images, caches and failed runs")
    clean.add_argument("--all", action="store_true", help="also remove current images and bases")

    pin = commands.add_parser("pin-base", help="pull python:X.Y-slim and pin its digest")
    pin.add_argument("python", help="Python version, e.g. 3.12")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _dispatch(args)
    except HarnessError as exc:
        print(f"error: {printable(one_line(str(exc)))}", file=sys.stderr)
        return exc.exit_code
    except DockerException as exc:
        explanation = getattr(exc, "explanation", None) or str(exc)
        print(f"error: the Docker engine failed: {printable(one_line(explanation))}; "
              "check that it is running ('docker info') and retry", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no run folder was written (logs of an interrupted run "
              "are kept in its .failed folder)", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    """Join a multi-line message (from a tool or library) into one line."""
    return " | ".join(line.strip() for line in message.splitlines() if line.strip())


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _dispatch(args) -> int:
    from . import commands

    if args.command in ("local-train", "cloud-train", "parity-check"):
        try:
            args.args = shlex.split(args.args)
        except ValueError as exc:
            raise UsageError(f"ARGS={args.args!r} cannot be split into arguments: {exc}") from None
        args.pass_env = [name for name in args.pass_env.split(",") if name.strip()]
    handler = getattr(commands, args.command.replace("-", "_"))
    return handler(args)
