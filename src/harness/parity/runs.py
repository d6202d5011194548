"""Load a run folder: its manifest.json, the files under outputs/ and their sha256."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ParityInputError
from harness.parity.numbers import read_json
from harness.runfolder import file_sha256

# The ARIMA script's outputs. When either run has one of them, both runs must
# have it and it must parse, or the comparison is rejected with exit code 2.
REQUIRED_OUTPUTS = ("metric.json", "model.json")


@dataclass(frozen=True)
class RunInfo:
    """One of the two run folders, as read by :func:`compare_runs`."""

    path: Path
    label: str
    target: str | None
    run_id: str | None
    manifest: dict[str, Any] = field(repr=False, compare=False)


class RunFolder:
    """A loaded run folder: manifest, output file list and cached checksums.

    ``role`` ("run A" or "run B") names the folder in errors. ``label`` names
    it in findings and is set by :func:`assign_labels`.
    """

    def __init__(
        self, path: Path, role: str, manifest: dict[str, Any], files: list[str]
    ):
        self.path = path
        self.role = role
        self.manifest = manifest
        self.files = files
        self.file_set = set(files)
        self.label = role
        self._digests: dict[str, str] = {}

    @property
    def outputs(self) -> Path:
        return self.path / "outputs"

    def sha256(self, rel: str) -> str:
        """Return the hex sha256 of ``outputs/<rel>``; OSError if it is unreadable."""
        digest = self._digests.get(rel)
        if digest is None:
            digest = file_sha256(self.outputs / rel)
            self._digests[rel] = digest
        return digest

    def recorded_outputs(self) -> dict[str, Any]:
        """Return the manifest's outputs record, or {} if it has none."""
        record = self.manifest.get("outputs")
        return record if isinstance(record, dict) else {}

    def info(self) -> RunInfo:
        target = self.manifest.get("target")
        run_id = self.manifest.get("run_id")
        return RunInfo(
            path=self.path,
            label=self.label,
            target=target if isinstance(target, str) else None,
            run_id=run_id if isinstance(run_id, str) else None,
            manifest=self.manifest,
        )


def load_run(path: Path, role: str) -> RunFolder:
    """Read ``path/manifest.json`` and list ``path/outputs/``.

    Raises:
        ParityInputError: the folder, its manifest.json or its outputs/ folder
            is missing, or the manifest is unreadable or not a JSON object.
    """
    if not path.exists():
        raise ParityInputError(
            f"{role} folder {path} not found; check the path or pick another run folder"
        )
    if not path.is_dir():
        raise ParityInputError(
            f"{role} {path} is not a folder; pass a run folder that contains "
            "manifest.json and outputs/"
        )

    manifest_path = path / "manifest.json"
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParityInputError(
            f"{role} {path}: manifest.json is missing; "
            "re-run or pick another run folder"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParityInputError(
            f"{role} {manifest_path} could not be read ({exc}); "
            "re-run or pick another run folder"
        ) from exc
    try:
        manifest = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParityInputError(
            f"{role} {manifest_path} is not valid JSON ({exc}); "
            "re-run or pick another run folder"
        ) from exc
    if not isinstance(manifest, dict):
        raise ParityInputError(
            f"{role} {manifest_path} is not a JSON object; "
            "re-run or pick another run folder"
        )

    outputs = path / "outputs"
    if not outputs.is_dir():
        raise ParityInputError(
            f"{role} {path} has no outputs/ folder; re-run or pick another run folder"
        )
    return RunFolder(path, role, manifest, _list_files(outputs))


def _list_files(folder: Path) -> list[str]:
    # Only regular files count, as in the manifest's outputs record: a symbolic
    # link could pull in a file from outside the run, and reading a FIFO would
    # block. Names that are not UTF-8 are skipped, since no report can show them.
    files = []
    for dirpath, _dirnames, filenames in os.walk(folder):
        base = Path(dirpath).relative_to(folder)
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            name = (base / filename).as_posix()
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                continue
            files.append(name)
    return sorted(files)


def check_required_outputs(runs: Sequence[RunFolder]) -> dict[tuple[int, str], Any]:
    """Parse the ARIMA outputs that either run has, and raise if any run lacks one.

    Returns the parsed documents keyed by (run index, file name).
    """
    parsed = {}
    for name in REQUIRED_OUTPUTS:
        expected = any(
            name in run.file_set or name in run.recorded_outputs() for run in runs
        )
        if not expected:
            continue
        for index, run in enumerate(runs):
            if name not in run.file_set:
                raise ParityInputError(
                    f"{run.role} {run.path}: outputs/{name} is missing; "
                    "re-run the training or pick another run folder"
                )
            try:
                parsed[(index, name)] = read_json(run.outputs / name)
            except (OSError, ValueError) as exc:
                raise ParityInputError(
                    f"{run.role} {run.path}: outputs/{name} could not be read ({exc}); "
                    "re-run the training or pick another run folder"
                ) from exc
    return parsed


def assign_labels(a: RunFolder, b: RunFolder) -> None:
    """Label each run by its target when both targets are recorded and differ.

    Otherwise the labels are "A" and "B", each followed by its target in
    brackets where the manifest records one.
    """
    target_a = a.manifest.get("target")
    target_b = b.manifest.get("target")
    if isinstance(target_a, str) and isinstance(target_b, str) and target_a != target_b:
        a.label, b.label = target_a, target_b
    else:
        a.label = f"A ({target_a})" if isinstance(target_a, str) else "A"
        b.label = f"B ({target_b})" if isinstance(target_b, str) else "B"
