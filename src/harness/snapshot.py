"""The script folder as a run receives it: files minus what ``.amlignore`` or ``.gitignore`` exclude.

Azure ML uploads the script folder as the run's snapshot and reads
``.amlignore`` (or, when there is none, ``.gitignore``) to leave files out. The
harness applies the same rule to every target, so the script hash in a manifest
means the same files everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pathspec

from .errors import UsageError
from .runfolder import file_sha256, tree_sha256

ENTRY_SCRIPT = "train.py"
ALWAYS_EXCLUDED = ["__pycache__/", "*.pyc", ".git/", ".ipynb_checkpoints/"]

# Azure ML's snapshot limits (azureml-core 1.x defaults; a workspace can be
# configured otherwise, which this check does not read).
MAX_SNAPSHOT_BYTES = 300 * 1024 * 1024
MAX_SNAPSHOT_FILES = 2000


@dataclass
class Snapshot:
    """The files of a script folder that a run receives."""

    root: Path
    files: dict[str, dict]

    @property
    def sha256(self) -> str:
        return tree_sha256(self.files)

    @property
    def size(self) -> int:
        return sum(entry["size"] for entry in self.files.values())


def take_snapshot(script_dir: Path) -> Snapshot:
    """List the files of ``script_dir`` that a run receives, with their hashes.

    Raises:
        UsageError: the folder is missing or has no ``train.py``.
    """
    root = Path(script_dir)
    if root.is_file():
        raise UsageError(f"{root}: is a file; SCRIPT must name the folder that contains train.py")
    if not root.is_dir():
        raise UsageError(f"{root}: script folder not found; pass SCRIPT=<folder with train.py>")
    if not (root / ENTRY_SCRIPT).is_file():
        raise UsageError(
            f"{root}: no {ENTRY_SCRIPT} in the script folder; the harness runs "
            f"'python {ENTRY_SCRIPT} --input DATA --output OUT'"
        )
    ignore = _ignore_spec(root)
    files = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file() or ignore.match_file(relative):
            continue
        files[relative] = {"sha256": file_sha256(path), "size": path.stat().st_size}
    return Snapshot(root, files)


def check_limits(snapshot: Snapshot, max_bytes: int = MAX_SNAPSHOT_BYTES,
                 max_files: int = MAX_SNAPSHOT_FILES) -> None:
    """Raise UsageError naming the largest entries when the snapshot is too big to upload."""
    too_big = snapshot.size > max_bytes
    too_many = len(snapshot.files) > max_files
    if not (too_big or too_many):
        return
    largest = sorted(snapshot.files.items(), key=lambda item: -item[1]["size"])[:3]
    names = ", ".join(f"{name} ({entry['size'] / 1e6:.1f} MB)" for name, entry in largest)
    limit = (f"{snapshot.size / 1e6:.0f} MB > {max_bytes / 1e6:.0f} MB" if too_big
             else f"{len(snapshot.files)} files > {max_files}")
    raise UsageError(
        f"{snapshot.root}: snapshot too large for Azure ML ({limit}); largest: {names}; "
        "list data and outputs in .amlignore"
    )


def _ignore_spec(root: Path) -> pathspec.PathSpec:
    lines = list(ALWAYS_EXCLUDED)
    for name in (".amlignore", ".gitignore"):
        ignore_file = root / name
        if ignore_file.is_file():
            lines += ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
            break
    return pathspec.PathSpec.from_lines("gitwildmatch", lines)
