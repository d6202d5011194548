"""Run the training image once in a locked-down container and collect what it did.

Local runs bind-mount the script folder and data read-only; the emulated
remote copies them in instead, as a remote node would receive them. Both go
through :func:`run_job`, which streams the container's output, keeps it in
``logs/``, removes the container afterwards (also on Ctrl-C), and turns the
exit code into a result or one of the harness's errors.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from docker.errors import APIError, ImageNotFound

from .errors import EngineError, ProfileError, TrainingFailed, TrainingRejected, UsageError
from .image import ENTRY_POINT
from .text import printable

log = logging.getLogger(__name__)

CONTAINER_USER = "1000:1000"
MEMORY_LIMIT = os.environ.get("HARNESS_MEMORY", "4g")
REJECTED = 2
MAX_ECHOED_LINES = 200
PROBE_MARKER = "harness-probe: "  # the line docker/entry.py prints before the script
PROFILE_FAILED = 3


@dataclass
class Job:
    """One container run: image, command line inside the container, environment."""

    image: str
    script: str
    arguments: list[str]
    environment: dict[str, str]
    working_dir: str
    record_path: str
    mounts: list = field(default_factory=list)
    tmpfs: dict[str, str] = field(default_factory=dict)
    read_only: bool = True
    user: str = CONTAINER_USER
    labels: dict[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        return [ENTRY_POINT, self.script, *self.arguments]


@dataclass
class JobResult:
    exit_code: int
    record: dict
    container_image: str


def run_job(client, job: Job, logs_dir: Path,
            before_start: Callable | None = None,
            after_exit: Callable | None = None,
            host_paths: dict[str, str] | None = None) -> JobResult:
    """Create, run and remove one container for ``job``; keep its output in ``logs_dir``.

    ``before_start(container)`` may copy files in; ``after_exit(container)``
    returns the record the entry point wrote. ``host_paths`` maps paths inside
    the container to the user's paths, for the messages the harness relays.

    Raises:
        TrainingRejected: the script exited with code 2 (its last stderr line).
        ProfileError: the determinism profile did not take effect.
        TrainingFailed: any other non-zero exit (with the tail of the output).
        EngineError: the engine refused to create or run the container.
    """
    container = _create(client, job)
    try:
        if before_start:
            before_start(container)
        container.start()
        stdout_tail, stderr_tail = _stream_output(container, logs_dir)
        status = container.wait()
        exit_code = status.get("StatusCode", -1)
        container.reload()
        state = container.attrs
        record = after_exit(container) if after_exit else {}
        _write_record(logs_dir, record)
        _raise_for_exit(exit_code, record, stdout_tail, stderr_tail, state, host_paths or {})
        return JobResult(exit_code, record, container.attrs.get("Image", ""))
    finally:
        _remove(container)


def cpu_limit() -> float:
    """Return the container's CPU limit from ``HARNESS_CPUS`` (default 2).

    Raises:
        UsageError: the value is not a positive number.
    """
    text = os.environ.get("HARNESS_CPUS", "2")
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1024:
        raise UsageError(f"HARNESS_CPUS={text!r} is not a number of CPUs; use e.g. 2 or 0.5")
    return value


def isolation_options() -> dict:
    """Return the limits every training container gets: no network, no privileges."""
    return {
        "network_mode": "none",
        "mem_limit": MEMORY_LIMIT,
        "memswap_limit": MEMORY_LIMIT,
        "nano_cpus": int(cpu_limit() * 1e9),
        "pids_limit": 512,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
    }


def _create(client, job: Job):
    try:
        return client.containers.create(
            job.image,
            command=job.command(),
            environment=job.environment,
            working_dir=job.working_dir,
            mounts=job.mounts,
            tmpfs=job.tmpfs,
            read_only=job.read_only,
            user=job.user,
            labels={"io.harness.role": "training", **job.labels},
            **isolation_options(),
        )
    except ImageNotFound:
        raise EngineError(f"image {job.image} is not in the engine; run 'make build'") from None
    except APIError as exc:
        raise EngineError(f"creating the container failed: {exc.explanation}") from None


def _stream_output(container, logs_dir: Path) -> tuple[list[str], list[str]]:
    """Write stdout and stderr to ``logs_dir`` as they come; log stdout lines."""
    tails: dict[str, list[str]] = {"stdout": [], "stderr": []}
    counts = {"stdout": 0, "stderr": 0}
    partial = {"stdout": b"", "stderr": b""}
    files = {name: (logs_dir / f"{name}.log").open("wb") for name in tails}
    try:
        for out, err in container.attach(stdout=True, stderr=True, stream=True, logs=True,
                                         demux=True):
            for name, chunk in (("stdout", out), ("stderr", err)):
                if not chunk:
                    continue
                files[name].write(chunk)
                *lines, partial[name] = (partial[name] + chunk).split(b"\n")
                for line in lines:
                    _keep_line(name, line, tails, counts)
        for name, rest in partial.items():
            if rest:
                _keep_line(name, rest, tails, counts)
    finally:
        for handle in files.values():
            handle.close()
    return tails["stdout"], tails["stderr"]


def _keep_line(name: str, raw: bytes, tails: dict[str, list[str]],
               counts: dict[str, int]) -> None:
    """Keep the last lines of each stream and echo stdout, up to a limit, as progress."""
    line = printable(raw.decode("utf-8", "replace").rstrip())
    tails[name] = (tails[name] + [line])[-40:]
    counts[name] += 1
    count = counts[name]
    if name != "stdout":
        log.debug("stderr: %s", line)
    elif line.startswith(PROBE_MARKER):
        log.debug("%s", line)
    elif count <= MAX_ECHOED_LINES:
        log.info("%s", line, extra={"phase": "train"})
    elif count == MAX_ECHOED_LINES + 1:
        log.info("(more output than %d lines: the rest is in logs/stdout.log only)",
                 MAX_ECHOED_LINES, extra={"phase": "train"})


def _write_record(logs_dir: Path, record: dict) -> None:
    if record:
        (logs_dir / "container.json").write_text(json.dumps(record, indent=2) + "\n")


def _raise_for_exit(exit_code: int, record: dict, stdout: list[str], stderr: list[str],
                    state: dict, host_paths: dict[str, str]) -> None:
    if exit_code == 0:
        return
    lines = [line for line in stderr if line.strip()]
    if exit_code == REJECTED:
        raise TrainingRejected(rejection_message(lines[-1] if lines else "", host_paths))
    if exit_code == PROFILE_FAILED and record.get("profile_problems"):
        raise ProfileError(
            "determinism profile did not take effect in the container: "
            + "; ".join(record["profile_problems"])
        )
    if state.get("State", {}).get("OOMKilled"):
        raise TrainingFailed(
            f"the training script ran out of memory (limit {MEMORY_LIMIT}); set "
            "HARNESS_MEMORY=8g to raise it"
        )
    tail = " | ".join((lines or [line for line in stdout if line.strip()])[-4:])
    raise TrainingFailed(f"the training script crashed (exit {exit_code}): {tail}")


def rejection_message(line: str, host_paths: dict[str, str]) -> str:
    """Return the harness's message for a script's one-line refusal (exit code 2)."""
    reason = line.strip().removeprefix("error:").strip() or "no message on stderr"
    for inside, outside in host_paths.items():
        reason = reason.replace(inside, outside)
    return f"the training script rejected its input: {reason}"


def _remove(container) -> None:
    try:
        container.remove(force=True)
    except APIError as exc:
        log.warning("could not remove container %s: %s", container.short_id, exc.explanation)
