"""The emulated remote: every step of a cloud run, against real local components.

The image is pushed to a real OCI registry on 127.0.0.1, its local tag removed
and pulled back by digest. The job runs in a fresh container started from
``repository@sha256:...``, which receives a copy of the script snapshot and the
data with no bind mounts, as a remote node would. Its ``outputs/`` and
``logs/`` are copied back and checked against the sizes and checksums the job
recorded.
Runs are detached like remote jobs, so ``RUN=`` re-attaches for real.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from pathlib import Path

from docker.errors import APIError, NotFound

from ..container import CONTAINER_USER, isolation_options
from ..errors import DownloadError, RegistryError, RemoteError
from ..manifest import RunInputs
from .base import REMOTE_RECORD, Backend, RemoteRun, Submission
from .registry import ensure_local_registry, push_by_digest

log = logging.getLogger(__name__)

JOB_ROOT = "/mnt/job"
SNAPSHOT_DIR = f"{JOB_ROOT}/snapshot"
DATA_DIR = f"{JOB_ROOT}/data"
NAME_PREFIX = "harness-emulated-"
STATUS = {"created": "Queued", "running": "Running", "restarting": "Running",
          "paused": "Running", "removing": "Running", "dead": "Failed"}


class EmulatedBackend(Backend):
    """A remote target made of a local registry and a container per job."""

    name = "emulated"
    poll_seconds = 0.5

    def __init__(self, client=None):
        self._client = client
        self.registry: str | None = None

    @property
    def client(self):
        if self._client is None:
            from .. import engine

            self._client = engine.connect()
        return self._client

    def check_config(self) -> None:
        self.registry = ensure_local_registry()
        log.info("registry %s responds", self.registry, extra={"phase": "registry"})

    def push(self, client, inputs: RunInputs) -> str:
        repository = f"harness/{inputs.image.repository.split('/')[-1]}"
        reference = push_by_digest(client, inputs.image, self.registry, repository)
        # push_by_digest removed its tag, so the engine, like a remote node, has
        # the image under this name only through the registry.
        log.info("pulling %s", reference, extra={"phase": "pull"})
        try:
            client.images.pull(reference)
        except APIError as exc:
            raise RegistryError(f"pulling {reference} failed: {exc.explanation}") from None
        return reference

    def submit(self, inputs: RunInputs, submission: Submission) -> RemoteRun:
        data_argument = f"{DATA_DIR}/{submission.data_path.name}"
        try:
            container = self.client.containers.create(
                submission.image_reference,
                command=submission.command(data_argument)[1:],
                entrypoint=[submission.command(data_argument)[0]],
                environment=submission.job_environment,
                working_dir=SNAPSHOT_DIR,
                name=NAME_PREFIX + submission.run_id,
                user=CONTAINER_USER,
                labels={"io.harness.role": "emulated-job",
                        "io.harness.run-id": submission.run_id},
                **isolation_options(),
            )
        except APIError as exc:
            raise RemoteError(f"cannot create the job container: {exc.explanation}") from None
        try:
            files = {f"snapshot/{name}": inputs.snapshot.root / name
                     for name in inputs.snapshot.files}
            files[f"data/{submission.data_path.name}"] = submission.data_path
            size = sum(path.stat().st_size for path in files.values())
            log.info("uploading %d files, %.0f KB into the job", len(files), size / 1e3,
                     extra={"phase": "upload"})
            container.put_archive("/mnt", _job_archive(files))
            container.start()
        except BaseException:
            container.remove(force=True)
            raise
        return EmulatedRun(container, submission.run_id, self.registry, submission.image_reference)

    def attach(self, remote_id: str) -> RemoteRun:
        try:
            container = self.client.containers.get(NAME_PREFIX + remote_id)
        except NotFound:
            raise RemoteError(f"no emulated run {remote_id} (its container is gone); "
                              "submit the run again") from None
        reference = container.attrs["Config"]["Image"]
        return EmulatedRun(container, remote_id, self.registry, reference)

    def cancel(self, remote_id: str) -> None:
        """Stop and remove the job container of ``remote_id``."""
        try:
            self.client.containers.get(NAME_PREFIX + remote_id).remove(force=True)
        except NotFound:
            raise RemoteError(f"no emulated run {remote_id} to cancel") from None


class EmulatedRun(RemoteRun):
    """A job container, seen through the same calls as an Azure ML run."""

    def __init__(self, container, run_id: str, registry: str | None, reference: str):
        self.container = container
        self.run_id = run_id
        self.registry = registry
        self.reference = reference
        self._lines_seen = 0

    def status(self) -> str:
        self.container.reload()
        state = self.container.attrs["State"]
        if self.container.status == "exited":
            return "Completed" if state.get("ExitCode") == 0 else "Failed"
        return STATUS.get(self.container.status, "Running")

    def new_log_lines(self) -> list[str]:
        lines = self.container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        lines = lines.splitlines()
        fresh, self._lines_seen = lines[self._lines_seen:], len(lines)
        return fresh

    def download(self, outputs: Path, logs: Path) -> dict:
        _extract(self.container, f"{SNAPSHOT_DIR}/outputs", outputs)
        _extract(self.container, f"{SNAPSHOT_DIR}/logs", logs, missing_ok=True)
        for name, stream in (("stdout", True), ("stderr", False)):
            (logs / f"{name}.log").write_bytes(self.container.logs(stdout=stream, stderr=not stream))
        record_file = logs / Path(REMOTE_RECORD).relative_to("logs")
        return json.loads(record_file.read_text()) if record_file.exists() else {}

    def close(self) -> None:
        self.container.remove(force=True)

    def error_tail(self) -> str:
        stderr = self.container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
        lines = [line for line in stderr.splitlines() if line.strip()]
        return " | ".join(lines[-3:]) or f"exit code {self.container.attrs['State'].get('ExitCode')}"

    def manifest_extra(self) -> dict:
        image = self.container.client.images.get(self.container.attrs["Image"])
        return {
            "emulated": True,
            "note": "emulated target: a local registry and container stand in for Azure ML",
            "registry": self.registry,
            "pushed_digest": self.reference,
            "ran_image_id": image.id,
            "ran_digests": image.attrs.get("RepoDigests", []),
            "container": self.container.name,
        }


def _job_archive(files: dict[str, Path]) -> bytes:
    """Return a tar of ``job/<name>`` entries owned by the container user."""
    uid, gid = (int(part) for part in CONTAINER_USER.split(":"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folders = {"job"}
        for name in files:
            parts = Path("job", name).parents
            folders.update(str(parent) for parent in parts if str(parent) != ".")
        for folder in sorted(folders) + ["job/snapshot/outputs", "job/snapshot/logs"]:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
            tar.addfile(info)
        for name, path in sorted(files.items()):
            info = tar.gettarinfo(str(path), arcname=f"job/{name}")
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def _extract(container, source: str, target: Path, missing_ok: bool = False) -> None:
    """Copy the folder ``source`` out of ``container`` into ``target``."""
    try:
        stream, _ = container.get_archive(source)
    except NotFound:
        if missing_ok:
            return
        raise DownloadError(f"the job left no {source}; the script wrote no outputs") from None
    buffer = io.BytesIO(b"".join(stream))
    prefix = Path(source).name + "/"
    with tarfile.open(fileobj=buffer) as tar:
        for member in tar.getmembers():
            if not member.name.startswith(prefix) or not member.isfile():
                continue
            member.name = member.name[len(prefix):]
            tar.extract(member, target, filter="data")
