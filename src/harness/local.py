"""Run the training image on this machine and keep a complete run folder.

The container has no network, a read-only root filesystem, the script folder
and data mounted read-only, one writable mount for the run's outputs, small
tmpfs mounts for ``/tmp`` and HOME, a non-root user and CPU and memory limits.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from docker.types import Mount

from .container import CONTAINER_USER, Job, run_job
from .errors import HarnessError, TrainingFailed
from .inputs import container_environment
from .manifest import RunInputs, build_manifest, now
from .runfolder import RunFolder

log = logging.getLogger(__name__)

SCRIPT_MOUNT = "/mnt/script"
DATA_MOUNT = "/mnt/data"
RUN_MOUNT = "/mnt/run"


def _tmpfs(user: str) -> dict[str, str]:
    """Return tmpfs mounts for /tmp and HOME, owned by the container user.

    The engine copies the image's HOME folder and its owner onto the tmpfs, so
    a mode alone would not make it writable for another uid.
    """
    uid, gid = user.split(":")
    return {"/tmp": "size=256m,mode=1777", "/home/runner": f"size=64m,uid={uid},gid={gid},mode=0700"}


def run_local(client, inputs: RunInputs, out: Path, run_id: str) -> Path:
    """Run the training script in the image and return the finished run folder.

    Raises:
        RunFolderError: ``out`` exists already.
        TrainingRejected, TrainingFailed, ProfileError: see :func:`container.run_job`.
    """
    started = now()
    with RunFolder(out, run_id) as folder:
        user = _prepare_ownership(folder)
        data_name = inputs.data.name
        record_host = folder.path / "record.json"
        job = Job(
            image=inputs.image.id,
            script=f"{SCRIPT_MOUNT}/train.py",
            arguments=["--input", f"{DATA_MOUNT}/{data_name}",
                       "--output", f"{RUN_MOUNT}/outputs", *inputs.arguments],
            environment={**container_environment(inputs, run_id),
                         "HARNESS_RECORD": f"{RUN_MOUNT}/record.json"},
            working_dir=SCRIPT_MOUNT,
            record_path=f"{RUN_MOUNT}/record.json",
            mounts=[
                Mount(SCRIPT_MOUNT, str(inputs.snapshot.root.resolve()), type="bind",
                      read_only=True),
                Mount(f"{DATA_MOUNT}/{data_name}", str(inputs.data.resolve()), type="bind",
                      read_only=True),
                Mount(RUN_MOUNT, str(folder.path.resolve()), type="bind"),
            ],
            tmpfs=_tmpfs(user),
            user=user,
            labels={"io.harness.run-id": run_id},
        )
        log.info("running %s in %s (run %s)", inputs.snapshot.root / "train.py",
                 inputs.image.tag, run_id, extra={"phase": "run"})
        try:
            result = run_job(client, job, folder.logs,
                             after_exit=lambda container: _take_record(record_host))
        except HarnessError as exc:
            raise type(exc)(f"{exc}; logs in {folder.failed_target}") from None
        if not result.record:
            raise TrainingFailed(
                "the container left no record of the run (did the script end the process "
                f"with os._exit?); logs are in {folder.failed_target}"
            )
        manifest = build_manifest(run_id, "local", started, inputs, result.record, folder.outputs)
        return folder.commit(manifest)


def _prepare_ownership(folder: RunFolder) -> str:
    """Return the container user, making the run folder writable for it.

    As root the container runs as the image's user 1000, so the folder is handed
    to that uid; otherwise it runs as the calling user, who owns the folder.
    """
    if os.geteuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    uid, gid = (int(part) for part in CONTAINER_USER.split(":"))
    for path in (folder.path, folder.outputs):
        os.chown(path, uid, gid)
    return CONTAINER_USER


def _take_record(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except ValueError:
        record = {}
    path.unlink()
    return record
