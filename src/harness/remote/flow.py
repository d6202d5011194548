"""The remote run, the same for every target: check, build, push, submit, wait, download.

After submission the harness keeps a small pending record under
``runs/<target>/.pending/`` so that ``RUN=<id>`` can re-attach to a job after
Ctrl-C (which detaches and leaves the remote job running) and finish it into
the same run folder.
"""

from __future__ import annotations

import json
import logging
import time
from argparse import Namespace
from pathlib import Path

from .. import engine, paths
from docker.errors import DockerException

from ..container import REJECTED, rejection_message
from ..errors import Detached, HarnessError, RemoteError, TrainingRejected, UsageError
from ..inputs import container_environment, prepare
from ..manifest import RunInputs, build_manifest, now
from ..runfolder import RunFolder, new_run_id, write_json
from ..text import printable
from ..snapshot import check_limits
from .base import TERMINAL_STATES, Backend, RemoteRun, Submission

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60


def cloud_train(args: Namespace, backend: Backend, inputs: RunInputs | None = None) -> Path:
    """Run the training remotely on ``backend``; return the finished run folder.

    ``inputs``, when given, were prepared by the caller after it checked the
    backend's configuration, so neither step is repeated.

    Raises:
        HarnessError: a check, the build, the push, the job or the download failed.
        Detached: the user pressed Ctrl-C while waiting; the job goes on.
    """
    if inputs is None:
        backend.check_config()
    client = engine.connect()
    if args.run:
        return reattach(backend, client, args.run)

    run_id = new_run_id()
    out = Path(args.out or paths.RUNS / backend.name / run_id)
    if out.exists():
        raise UsageError(f"OUT={out} already exists; pick a new folder or leave OUT unset")
    if inputs is None:
        inputs = prepare(client, args.env, args.data, args.script, args.args,
                         args.determinism == "on", args.pass_env, args.cpu)
    check_limits(inputs.snapshot)
    reference = backend.push(client, inputs)
    submission = Submission(
        run_id=run_id, image_reference=reference, data_path=inputs.data,
        data_sha256=inputs.data_sha256(), arguments=inputs.arguments,
        environment=container_environment(inputs, run_id),
    )
    remote = backend.submit(inputs, submission)
    pending = {
        "target": backend.name, "run_id": run_id, "remote_id": remote.run_id,
        "out": str(out), "started": now(), "image_reference": reference,
        "env": str(args.env), "data": str(args.data), "script": str(args.script),
        "arguments": inputs.arguments, "determinism": args.determinism,
        "pass_env": inputs.passed_env, "cpu": args.cpu,
        "identity": _identity(inputs),
    }
    _save_pending(backend.name, pending)
    log.info("submitted run %s%s", remote.run_id,
             f" ({remote.portal_url})" if remote.portal_url else "", extra={"phase": "submit"})
    return finish(backend, remote, pending, inputs)


def reattach(backend: Backend, client, remote_id: str) -> Path:
    """Wait for and finish a run submitted earlier, using its pending record."""
    pending = _load_pending(backend.name, remote_id)
    inputs = prepare(client, Path(pending["env"]), Path(pending["data"]),
                     Path(pending["script"]), pending["arguments"],
                     pending["determinism"] == "on", [], pending.get("cpu"))
    inputs.passed_env = list(pending.get("pass_env", []))
    changed = [name for name, value in _identity(inputs).items()
               if pending.get("identity", {}).get(name) != value]
    if changed:
        raise UsageError(
            f"RUN={remote_id} was submitted with other inputs ({', '.join(changed)} changed "
            "since); restore them to re-attach, or submit a new run"
        )
    remote = backend.attach(remote_id)
    log.info("re-attached to run %s", remote_id, extra={"phase": "wait"})
    return finish(backend, remote, pending, inputs)


def finish(backend: Backend, remote: RemoteRun, pending: dict, inputs: RunInputs) -> Path:
    """Wait for ``remote``, then download it into its run folder and write the manifest."""
    status = wait(backend, remote)
    with RunFolder(Path(pending["out"]), pending["run_id"]) as folder:
        if status != "Completed":
            _raise_failure(remote, status, folder)
        log.info("downloading outputs and logs of run %s", remote.run_id,
                 extra={"phase": "download"})
        record = remote.download(folder.outputs, folder.logs)
        extra = remote.manifest_extra()
        try:
            manifest = build_manifest(pending["run_id"], backend.name, pending["started"],
                                      inputs, record, folder.outputs, {"remote": extra},
                                      require_record=extra.get("pinned", True),
                                      logs_dir=folder.logs)
        except HarnessError as exc:
            raise type(exc)(f"{exc}; files kept in {folder.failed_target}") from None
        manifest["image"]["digest"] = pending["image_reference"]
        result = folder.commit(manifest)
    remote.close()
    _pending_path(backend.name, remote.run_id).unlink(missing_ok=True)
    return result


def _identity(inputs: RunInputs) -> dict[str, str]:
    """Return the hashes that tie a pending run to the inputs it was submitted with."""
    return {
        "spec": inputs.spec.sha256, "lock": inputs.lock.sha256,
        "script": inputs.snapshot.sha256, "data": inputs.data_sha256(),
        "image": inputs.image.id,
    }


def wait(backend: Backend, remote: RemoteRun) -> str:
    """Poll ``remote`` until it ends, logging its output, status changes and a heartbeat.

    Raises:
        Detached: on Ctrl-C, after printing how to re-attach.
    """
    started = time.monotonic()
    last_status, last_beat = None, started
    interval = getattr(backend, "poll_seconds", 10)
    try:
        while True:
            for line in remote.new_log_lines():
                log.info("%s", printable(line), extra={"phase": "remote"})
            status = remote.status()
            if status != last_status:
                log.info("run %s %s", remote.run_id, status, extra={"phase": "wait"})
                last_status = status
            if status in TERMINAL_STATES:
                for line in remote.new_log_lines():
                    log.info("%s", printable(line), extra={"phase": "remote"})
                return status
            if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                log.info("run %s %s, %.0f min elapsed", remote.run_id, status,
                         (last_beat - started) / 60, extra={"phase": "wait"})
            time.sleep(interval)
    except KeyboardInterrupt:
        hint = backend.reattach_hint(remote.run_id)
        print(f"detached from run {remote.run_id}; it keeps running")
        if remote.portal_url:
            print(f"portal: {remote.portal_url}")
        print(f"re-attach with: {hint}")
        raise Detached(f"detached from run {remote.run_id}; re-attach with: {hint}") from None


def _raise_failure(remote: RemoteRun, status: str, folder: RunFolder) -> None:
    """Keep what the failed run left and raise: a rejection (exit code 2) or a failure."""
    tail = printable(remote.error_tail())
    record = _keep_failure_logs(remote, folder)
    remote.close()
    where = f"logs in {folder.failed_target}"
    if record.get("exit_code") == REJECTED:
        message = rejection_message(tail.rsplit(" | ", 1)[-1], {})
        raise TrainingRejected(f"{message}; {where}")
    raise RemoteError(f"remote run {remote.run_id} ended {status}: {tail}; {where}")


def _keep_failure_logs(remote: RemoteRun, folder: RunFolder) -> dict:
    """Download what a failed run left; return its record, or {} when there is none."""
    try:
        return remote.download(folder.outputs, folder.logs) or {}
    except (HarnessError, OSError, DockerException) as exc:
        log.warning("could not download the failed run's files: %s", exc)
        return {}


def _pending_path(target: str, remote_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in remote_id)
    return paths.RUNS / target / ".pending" / f"{safe}.json"


def _save_pending(target: str, pending: dict) -> None:
    path = _pending_path(target, pending["remote_id"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, pending)


def _load_pending(target: str, remote_id: str) -> dict:
    path = _pending_path(target, remote_id)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.exists() else []
        raise UsageError(
            f"RUN={remote_id}: no pending {target} run with that id in this checkout"
            + (f" (pending: {', '.join(known)})" if known else " (none pending)")
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"RUN={remote_id}: cannot read {path}: {exc}") from None


def forget_pending(target: str, remote_id: str) -> None:
    """Drop the pending record of ``remote_id`` (after it was cancelled)."""
    _pending_path(target, remote_id).unlink(missing_ok=True)
