"""Run folders: created beside their final place and renamed only on success.

Layout, the same for every target::

    OUT/outputs/        exactly what the training script wrote
    OUT/logs/           the container's stdout and stderr, and its record
    OUT/manifest.json   provenance (see manifest.py)

A run writes into ``.<name>.partial-<run id>`` next to ``OUT`` and renames it to
``OUT`` at the end. A failed or interrupted run is renamed to
``<name>.failed-<run id>`` (``<run id>.failed`` when the name is the run id)
instead, so ``OUT`` exists only for a run that
succeeded and earlier runs are never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from .errors import OutputError, RunFolderError

log = logging.getLogger(__name__)

PARTIAL = ".partial-"
FAILED = ".failed"
RUN_ID = r"\d{8}-\d{6}-[0-9a-f]{4}"
FAILED_NAME = re.compile(rf"^(.+\.failed-{RUN_ID}|{RUN_ID}\.failed)$")
PARTIAL_NAME = re.compile(rf"^\..+\.partial-(?P<run_id>{RUN_ID})$")


def new_run_id() -> str:
    """Return a sortable, unique run id such as ``20261204-153012-a1b2``."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


class RunFolder:
    """A run folder under construction; use as a context manager.

    Leaving the ``with`` block by an exception moves the partial folder to the
    failed name; :meth:`commit` moves it to the final path.
    """

    def __init__(self, final: Path, run_id: str):
        self.final = Path(final)
        self.run_id = run_id
        if self.final.exists():
            raise RunFolderError(
                f"{self.final} already exists; pick a new OUT= or leave OUT unset for "
                "a fresh folder under runs/"
            )
        parent = self.final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create {parent}: {exc.strerror}") from None
        self.path = parent / f".{self.final.name}{PARTIAL}{run_id}"
        self.committed = False

    @property
    def outputs(self) -> Path:
        return self.path / "outputs"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def __enter__(self) -> RunFolder:
        self.outputs.mkdir(parents=True)
        self.logs.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not self.committed:
            self.fail()

    def commit(self, manifest: dict) -> Path:
        """Write ``manifest.json`` and move the folder to its final path."""
        write_json(self.path / "manifest.json", manifest)
        if self.final.exists():
            raise RunFolderError(f"{self.final} appeared while the run was going on; "
                                 f"the run is kept at {self.failed_target}")
        os.rename(self.path, self.final)
        self.committed = True
        return self.final

    @property
    def failed_target(self) -> Path:
        """Where the folder goes if the run fails."""
        if self.final.name == self.run_id:
            return self.final.parent / f"{self.run_id}{FAILED}"
        return self.final.parent / f"{self.final.name}{FAILED}-{self.run_id}"

    def fail(self) -> Path | None:
        """Move the partial folder to the failed name, keeping its logs."""
        if not self.path.exists():
            return None
        target = self.failed_target
        shutil.rmtree(target, ignore_errors=True)
        os.replace(self.path, target)
        return target


def write_json(path: Path, data) -> None:
    """Write ``data`` as indented JSON through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(folder: Path) -> dict[str, dict]:
    """Return ``{relative path: {"sha256", "size"}}`` for every file under ``folder``.

    Raises:
        OutputError: an entry is not a regular file or folder (a symbolic link,
            a FIFO, a socket), or its name is not UTF-8.
    """
    result = {}
    for path in sorted(Path(folder).rglob("*")):
        relative = path.relative_to(folder).as_posix()
        _check_entry(path, relative)
        if path.is_file():
            result[relative] = {"sha256": file_sha256(path), "size": path.stat().st_size}
    return result


def _check_entry(path: Path, relative: str) -> None:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        shown = relative.encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise OutputError(f"outputs/{shown}: the file name is not UTF-8; write names "
                          "that every system can store") from None
    if path.is_symlink():
        raise OutputError(f"outputs/{relative} is a symbolic link; the script must write "
                          "regular files, so that a run folder holds its own data")
    if not (path.is_file() or path.is_dir()):
        raise OutputError(f"outputs/{relative} is not a regular file (a FIFO or socket?); "
                          "the script must write regular files")


def tree_sha256(files: dict[str, dict]) -> str:
    """Return one sha256 over a listing from :func:`list_files` (names and contents)."""
    digest = hashlib.sha256()
    for name, entry in sorted(files.items()):
        digest.update(f"{name}\0{entry['sha256']}\n".encode())
    return digest.hexdigest()
