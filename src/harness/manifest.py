"""The provenance record of a run: ``manifest.json``, the same for every target.

It names the inputs by hash (spec, lock, script snapshot, data), the image by
id and fingerprint, what the container measured about itself (BLAS kernel, CPU,
numpy dispatch, package versions), and the sha256 and size of every output.
``parity`` compares two runs through it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .errors import DownloadError, OutputError, TrainingFailed
from .text import printable
from .image import Image
from .lock import Lock
from .runfolder import file_sha256, list_files
from .snapshot import ENTRY_SCRIPT, Snapshot
from .spec import Spec

SCHEMA = 1


@dataclass
class RunInputs:
    """Everything a run is made from; identical inputs give identical numbers."""

    spec: Spec
    lock: Lock
    image: Image
    snapshot: Snapshot
    data: Path
    arguments: list[str]
    determinism: bool
    environment: dict[str, str] = field(default_factory=dict)
    passed_env: list[str] = field(default_factory=list)

    def data_sha256(self) -> str:
        if not hasattr(self, "_data_sha256"):
            self._data_sha256 = file_sha256(self.data)
        return self._data_sha256


def now() -> str:
    """Return the current UTC time in ISO 8601 with milliseconds."""
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def check_record(record: dict) -> None:
    """Check that the entry point finished and recorded the run.

    Raises:
        TrainingFailed: the record is missing or incomplete, as when the script
            ends the process with ``os._exit`` or overwrites the record file.
    """
    complete = (isinstance(record, dict) and record.get("exit_code") == 0
                and isinstance(record.get("container"), dict) and record["container"]
                and isinstance(record.get("outputs"), dict) and "ended" in record)
    if not complete:
        raise TrainingFailed(
            "the container's record of the run is missing or incomplete (did the script "
            "end the process with os._exit, or write to HARNESS_RECORD?)"
        )
    irregular = record.get("irregular_outputs") or []
    if irregular:
        raise OutputError(f"outputs/{printable(irregular[0])} is not a regular file (a "
                          "symbolic link, FIFO or socket); the script must write regular files")
    for name in record["outputs"]:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise OutputError(f"outputs/{printable(name)}: the file name is not UTF-8; "
                              "write names that every system can store") from None


# Logs that hold the container's standard output: logs/stdout.log for local and
# emulated runs, Azure ML's user_logs/std_log.txt for remote jobs. The script can
# write other files in logs/, so those are not read.
STDOUT_LOGS = ("stdout.log", "user_logs/std_log.txt", "azureml-logs/70_driver_log.txt")


def check_probe(record: dict, logs_dir: Path) -> None:
    """Check the record's measurements against the probe line printed before the script ran.

    The script runs in the entry point's process and could change the record
    it writes at the end, but not the first line of its standard output, which
    the entry point printed before the script started. Logs without that line
    are not checked.

    Raises:
        TrainingFailed: the record differs from the printed probe.
    """
    from .container import PROBE_MARKER

    for name in STDOUT_LOGS:
        path = Path(logs_dir) / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as handle:
            line = next((line for line in handle if line.startswith(PROBE_MARKER)), None)
        if line is None:
            continue
        try:
            printed = json.loads(line[len(PROBE_MARKER):])
        except ValueError:
            printed = None
        if printed != record.get("container"):
            raise TrainingFailed(
                "the run's record of the container differs from what the container "
                "measured before the script started; the script changed it, so the run "
                "cannot be trusted"
            )
        return


def build_manifest(run_id: str, target: str, started: str, inputs: RunInputs, record: dict,
                   outputs_dir: Path, extra: dict | None = None,
                   require_record: bool = True, logs_dir: Path | None = None) -> dict:
    """Return the manifest of a finished run whose outputs are in ``outputs_dir``.

    ``require_record`` is false only for runs outside the harness's image
    (Azure ML building its own environment from the conda spec), which have no
    entry point to write a record.

    Raises:
        TrainingFailed: the container's record is missing or incomplete.
        DownloadError: a file in ``outputs_dir`` differs from what the container
            recorded (missing, short, or a different checksum).
    """
    if require_record:
        check_record(record)
        if logs_dir is not None:
            check_probe(record, logs_dir)
    outputs = list_files(outputs_dir)
    verify_outputs(record.get("outputs") if require_record else None, outputs)
    image = inputs.image
    manifest = {
        "schema": SCHEMA,
        "run_id": run_id,
        "target": target,
        "started": started,
        "ended": now(),
        "harness_version": __version__,
        "image": {
            "id": image.id,
            "tag": image.tag,
            "fingerprint": image.fingerprint,
            "digest": None,
            "fingerprint_seen": record.get("image", {}).get("fingerprint"),
            "base": {
                "reference": image.base.reference,
                "kind": image.base.kind,
                "digest": image.base.digest,
                "image_id": image.base.image_id,
            },
        },
        "inputs": {
            "spec": {"path": str(inputs.spec.path), "sha256": inputs.spec.sha256},
            "lock": {"path": str(inputs.lock.path), "sha256": inputs.lock.sha256},
            "script": {"path": str(inputs.snapshot.root), "entry": ENTRY_SCRIPT,
                       "sha256": inputs.snapshot.sha256, "files": len(inputs.snapshot.files)},
            "data": {"path": str(inputs.data), "sha256": inputs.data_sha256(),
                     "size": inputs.data.stat().st_size},
            "arguments": list(inputs.arguments),
            "passed_env": sorted(inputs.passed_env),
        },
        "determinism": {"enabled": inputs.determinism, "env": inputs.environment},
        "container": record.get("container", {}),
        "packages": record.get("image", {}).get("packages", {}),
        "outputs": outputs,
    }
    manifest.update(extra or {})
    return manifest


def verify_outputs(recorded: dict | None, found: dict) -> None:
    """Check files on the host against the container's own listing of its outputs.

    Raises:
        DownloadError: naming the first file that is missing, empty or differs.
    """
    if recorded is None:
        return
    for name, entry in recorded.items():
        if name not in found:
            raise DownloadError(f"outputs/{name} was written by the run but is missing here")
        if found[name]["size"] == 0 and entry["size"] > 0:
            raise DownloadError(f"outputs/{name} came back empty ({entry['size']} bytes expected)")
        if found[name] != entry:
            raise DownloadError(
                f"outputs/{name} differs from what the run wrote "
                f"({found[name]['size']} bytes, expected {entry['size']}; checksum mismatch)"
            )
    extra = sorted(set(found) - set(recorded))
    if extra:
        raise DownloadError(f"outputs/{extra[0]} was not written by this run; "
                            "the download folder was not empty")
