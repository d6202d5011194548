"""Run the training image on this machine and keep a complete run folder.

The container has no network and a read-only root filesystem, with the script
snapshot and data mounted read-only. ``outputs/`` is its only writable run
mount, and the entry point's record goes to a separate scratch mount. Small
tmpfs mounts serve ``/tmp`` and HOME, and it runs as a non-root user with CPU
and memory limits.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from docker.types import Mount

from . import paths
from .container import CONTAINER_USER, Job, run_job
from .errors import HarnessError, RunFolderError
from .inputs import container_environment
from .manifest import RunInputs, build_manifest, now
from .runfolder import RunFolder, file_sha256
from .snapshot import Snapshot

log = logging.getLogger(__name__)

SCRIPT_MOUNT = "/mnt/script"
DATA_MOUNT = "/mnt/data"
OUTPUT_MOUNT = "/mnt/outputs"
RECORD_MOUNT = "/mnt/harness"


def run_local(client, inputs: RunInputs, out: Path, run_id: str) -> Path:
    """Run the training script in the image and return the finished run folder.

    Raises:
        RunFolderError: ``out`` exists already.
        TrainingRejected, TrainingFailed, ProfileError: see :func:`container.run_job`.
    """
    started = now()
    script_dir = stage_snapshot(inputs.snapshot)
    with RunFolder(out, run_id) as folder, _record_dir(run_id) as record_dir:
        user = _container_user([folder.outputs, record_dir])
        data_name = inputs.data.name
        job = Job(
            image=inputs.image.id,
            script=f"{SCRIPT_MOUNT}/train.py",
            arguments=["--input", f"{DATA_MOUNT}/{data_name}",
                       "--output", OUTPUT_MOUNT, *inputs.arguments],
            environment={**container_environment(inputs, run_id),
                         "HARNESS_RECORD": f"{RECORD_MOUNT}/record.json"},
            working_dir=SCRIPT_MOUNT,
            record_path=f"{RECORD_MOUNT}/record.json",
            mounts=[
                Mount(SCRIPT_MOUNT, str(script_dir), type="bind", read_only=True),
                Mount(f"{DATA_MOUNT}/{data_name}", str(inputs.data.resolve()), type="bind",
                      read_only=True),
                Mount(OUTPUT_MOUNT, str(folder.outputs.resolve()), type="bind"),
                Mount(RECORD_MOUNT, str(record_dir), type="bind"),
            ],
            tmpfs=_tmpfs(user),
            user=user,
            labels={"io.harness.run-id": run_id},
        )
        log.info("running %s in %s (run %s)", inputs.snapshot.root / "train.py",
                 inputs.image.tag, run_id, extra={"phase": "run"})
        paths_in_container = {f"{DATA_MOUNT}/{data_name}": str(inputs.data),
                              SCRIPT_MOUNT: str(inputs.snapshot.root)}
        try:
            result = run_job(client, job, folder.logs,
                             after_exit=lambda container: _take_record(record_dir),
                             host_paths=paths_in_container)
            manifest = build_manifest(run_id, "local", started, inputs, result.record,
                                      folder.outputs, logs_dir=folder.logs)
        except HarnessError as exc:
            raise type(exc)(f"{exc}; logs in {folder.failed_target}") from None
        return folder.commit(manifest)


def stage_snapshot(snapshot: Snapshot) -> Path:
    """Return a read-only copy of exactly the snapshot's files, made once per content.

    Mounting the script folder itself would also show the files that
    ``.amlignore`` or ``.gitignore`` leave out of remote snapshots, so a script
    could work locally and fail remotely.
    """
    target = paths.cache_dir() / "snapshots" / snapshot.sha256
    if target.is_dir():
        return target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        _copy_snapshot(snapshot, staging)
        os.replace(staging, target)
    except OSError as exc:
        if not target.is_dir():  # else another run staged the same content first
            raise RunFolderError(f"cannot stage the script folder: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target.resolve()


def _copy_snapshot(snapshot: Snapshot, staging: Path) -> None:
    """Copy the snapshot's files, checking each copy against the hash taken earlier.

    The image build runs between hashing and copying, so a file edited in that
    time would otherwise be stored under the old content's name.
    """
    for name, entry in snapshot.files.items():
        destination = staging / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snapshot.root / name, destination)
        if file_sha256(destination) != entry["sha256"]:
            raise RunFolderError(f"{snapshot.root / name} changed while the run was being "
                                 "prepared; run again")
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


class _record_dir:
    """A scratch folder for the entry point's record, removed afterwards."""

    def __init__(self, run_id: str):
        root = paths.cache_dir() / "records"
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(dir=root, prefix=f"{run_id}-")).resolve()

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _container_user(writable: list[Path]) -> str:
    """Return the container user, making the writable mounts writable for it.

    As root the container runs as the image's user 1000, so those folders are
    handed to that uid. Otherwise it runs as the calling user, who owns them.
    """
    if os.geteuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    uid, gid = (int(part) for part in CONTAINER_USER.split(":"))
    for path in writable:
        os.chown(path, uid, gid)
    return CONTAINER_USER


def _tmpfs(user: str) -> dict[str, str]:
    """Return tmpfs mounts for /tmp and HOME, owned by the container user.

    The engine copies the image's HOME folder and its owner onto the tmpfs, so
    a mode alone would not make it writable for another uid.
    """
    uid, gid = user.split(":")
    return {"/tmp": "size=256m,mode=1777",
            "/home/runner": f"size=64m,uid={uid},gid={gid},mode=0700"}


def _take_record(record_dir: Path) -> dict:
    try:
        return json.loads((record_dir / "record.json").read_text())
    except (OSError, ValueError):
        return {}
