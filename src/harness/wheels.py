"""Download the lock's wheels on the host into a cache, verified by sha256.

Builds use no network: the image installs from these files with ``--no-index
--require-hashes``. The cache is keyed by file content, so a wheel is
downloaded once and shared by every lock that pins it.
"""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from . import paths
from .errors import WheelError
from .lock import Lock, Pin
from .process import run_with_progress
from .runfolder import file_sha256

log = logging.getLogger(__name__)


def wheel_cache() -> Path:
    path = paths.cache_dir() / "wheels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_wheels(lock: Lock) -> list[Path]:
    """Return one cached wheel per pin in ``lock``, downloading the missing ones.

    Raises:
        WheelError: pip could not download a wheel, or none matches the lock's hashes.
    """
    cache = wheel_cache()
    supported = supported_tags(lock)
    known = _index(cache, supported)
    missing = [pin for pin in lock.pins if not _find(pin, known)]
    if missing:
        log.info("downloading %d of %d wheels into %s",
                 len(missing), len(lock.pins), cache, extra={"phase": "wheels"})
        _download(lock, missing, cache)
        known = _index(cache, supported)
    else:
        log.info("all %d wheels cached", len(lock.pins), extra={"phase": "wheels"})
    wheels = []
    for pin in lock.pins:
        found = _find(pin, known)
        if found is None:
            raise WheelError(
                f"no wheel of {pin.name}=={pin.version} matching the lock's hashes was "
                f"downloaded into {cache}; run 'make lock' if the lock was edited by hand"
            )
        wheels.append(found)
    return wheels


def supported_tags(lock: Lock) -> set[Tag]:
    """Return the wheel tags an image for ``lock`` can install (CPython, its platform)."""
    major, minor = (int(part) for part in lock.python.split("."))
    platforms = _platform_options(lock.platform)[1::2]
    return set(cpython_tags((major, minor), platforms=platforms)) | set(
        compatible_tags((major, minor), platforms=platforms)
    )


def _index(cache: Path, supported: set[Tag]) -> dict[str, Path]:
    """Map sha256 to file for each cached wheel the lock's Python can install.

    A lock lists the hashes of every wheel of a version, for every Python and
    platform, so a hash match alone could pick another Python's wheel.
    """
    index = {}
    for wheel in cache.glob("*.whl"):
        try:
            tags = parse_wheel_filename(wheel.name)[3]
        except InvalidWheelFilename:
            continue
        if not tags & supported:
            continue
        sidecar = wheel.with_name(wheel.name + ".sha256")
        if not sidecar.exists() or sidecar.stat().st_mtime < wheel.stat().st_mtime:
            sidecar.write_text(file_sha256(wheel))
        index[sidecar.read_text().strip()] = wheel
    return index


def _find(pin: Pin, known: dict[str, Path]) -> Path | None:
    return next((known[h] for h in pin.hashes if h in known), None)


def _download(lock: Lock, pins: list[Pin], cache: Path) -> None:
    python_tag = "cp" + lock.python.replace(".", "")
    lines = [f"{pin.name}=={pin.version} " + " ".join(f"--hash=sha256:{h}" for h in pin.hashes)
             for pin in pins]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requirements:
        requirements.write("\n".join(lines) + "\n")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        *_platform_options(lock.platform), "--python-version", lock.python, "--implementation", "cp",
        "--abi", python_tag, "--require-hashes", "--progress-bar", "off",
        "--dest", str(cache), "-r", requirements.name, *lock.index_options,
    ]
    try:
        code, tail = run_with_progress(command, _download_progress, "wheels")
    finally:
        Path(requirements.name).unlink()
    if code != 0:
        reason = next((t for t in reversed(tail) if t.startswith("ERROR")), tail[-1] if tail else "")
        raise WheelError(f"downloading wheels failed: {reason.strip()}")


def _download_progress(line: str) -> str | None:
    match = re.match(r"\s*(?:Downloading|Saved) (\S+)(.*)", line)
    return f"{Path(match[1]).name}{match[2]}" if match else None


def _platform_options(platform: str) -> list[str]:
    """Return pip's --platform options for every manylinux tag ``platform`` accepts.

    pip takes the listed tags literally, so a glibc 2.28 target must also list
    2.27 down to 2.5 and the legacy manylinux2014/2010/1 aliases.
    """
    glibc_minor = int(re.search(r"manylinux_2_(\d+)", platform)[1])
    tags = [f"manylinux_2_{minor}_x86_64" for minor in range(glibc_minor, 4, -1)]
    tags += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    return [option for tag in tags for option in ("--platform", tag)]
