"""Resolve a spec into a hashed lock, and read a lock back.

The lock is pip's requirements format with a sha256 for every wheel, resolved
with uv for linux x86_64 and the spec's Python (not the host's). Its header
records the sha256 of the spec it came from, so a changed spec makes the lock
stale instead of being re-resolved behind the user's back.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import LockError, SpecError
from .spec import Spec

log = logging.getLogger(__name__)

# glibc 2.28 wheels run on every base we use (Debian bullseye has 2.31).
PLATFORM = "x86_64-manylinux_2_28"

# The in-container probe reads the BLAS kernel with threadpoolctl, so every
# image carries it, whether or not the spec lists it.
HARNESS_REQUIREMENTS = ["threadpoolctl"]

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass
class Pin:
    """One locked package: its name, exact version and allowed wheel hashes."""

    name: str
    version: str
    hashes: list[str]


@dataclass
class Lock:
    """A lock file read back: header fields and pins."""

    path: Path
    spec_sha256: str
    python: str
    platform: str
    index_options: list[str]
    pins: list[Pin]
    sha256: str

    def version_of(self, name: str) -> str | None:
        wanted = _normalize(name)
        return next((pin.version for pin in self.pins if _normalize(pin.name) == wanted), None)


def write_lock(spec: Spec) -> Lock:
    """Resolve ``spec`` with uv and write ``spec.lock_path``.

    Raises:
        SpecError: a package is not on PyPI, a version does not exist, or has no
            wheel for the spec's Python.
        LockError: the resolver could not run.
    """
    requirements = spec.requirements + [
        name for name in HARNESS_REQUIREMENTS if not _requires(spec.requirements, name)
    ]
    log.info(
        "resolving %d requirements for python %s on %s",
        len(requirements), spec.python, PLATFORM, extra={"phase": "lock"},
    )
    body = _run_uv(spec, requirements)
    header = [
        f"# Lock of {spec.path.name} for python {spec.python} on {PLATFORM}.",
        "# Written by 'python -m harness lock'; run 'make lock' after changing the spec.",
        f"# spec-sha256: {spec.sha256}",
        f"# python: {spec.python}",
        f"# platform: {PLATFORM}",
    ]
    options = [" ".join(spec.index_options[i:i + 2]) for i in range(0, len(spec.index_options), 2)]
    text = "\n".join(header + options) + "\n" + body
    tmp = spec.lock_path.with_name(spec.lock_path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(spec.lock_path)
    lock = read_lock(spec.lock_path)
    log.info(
        "wrote %s: %d packages (%s)",
        spec.lock_path, len(lock.pins), _summary(lock), extra={"phase": "lock"},
    )
    return lock


def read_lock(path: Path) -> Lock:
    """Parse a lock written by :func:`write_lock`.

    Raises:
        LockError: the file is missing, not a harness lock, or has a package
            without an exact pin or hashes.
    """
    if not path.is_file():
        raise LockError(f"{path}: lock not found; run 'make lock'")
    raw = path.read_bytes()
    fields, index_options, pins = {}, [], []
    for line in _logical_lines(raw.decode("utf-8")):
        if line.startswith("# ") and ": " in line:
            key, _, value = line[2:].partition(": ")
            fields[key] = value.strip()
        elif line.startswith("--") and not line.startswith("--hash"):
            index_options += line.split(None, 1)
        elif line and not line.startswith("#"):
            pins.append(_read_pin(path, line))
    missing = {"spec-sha256", "python", "platform"} - set(fields)
    if missing:
        raise LockError(
            f"{path}: not a harness lock (no {', '.join(sorted(missing))} in its header); "
            "run 'make lock' to rewrite it"
        )
    return Lock(
        path=path,
        spec_sha256=fields["spec-sha256"],
        python=fields["python"],
        platform=fields["platform"],
        index_options=index_options,
        pins=pins,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def ensure_lock(spec: Spec) -> Lock:
    """Return the spec's lock, writing it when missing; never re-resolve one.

    Raises:
        LockError: the lock exists but was made from a different spec.
    """
    if not spec.lock_path.exists():
        log.info("no lock at %s, creating it", spec.lock_path, extra={"phase": "lock"})
        return write_lock(spec)
    lock = read_lock(spec.lock_path)
    if lock.spec_sha256 != spec.sha256:
        raise LockError(
            f"{lock.path} is stale: it was made from another version of {spec.path} "
            f"(spec sha256 {lock.spec_sha256[:12]} in the lock, {spec.sha256[:12]} now); "
            f"run 'make lock ENV={spec.path}'"
        )
    log.info(
        "using lock %s (%d packages, sha256 %s)",
        lock.path, len(lock.pins), lock.sha256[:12], extra={"phase": "lock"},
    )
    return lock


def _run_uv(spec: Spec, requirements: list[str]) -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise LockError("uv not found; install the harness with 'make .venv' (it brings uv)")
    command = [
        uv, "pip", "compile", "-", "--quiet", "--no-header", "--generate-hashes",
        "--only-binary", ":all:", "--python-version", spec.python,
        "--python-platform", PLATFORM, *spec.index_options,
    ]
    result = subprocess.run(
        command, input="\n".join(requirements) + "\n", capture_output=True, text=True
    )
    if result.returncode != 0:
        raise _translate_uv_error(spec, result.stderr)
    return result.stdout


def _translate_uv_error(spec: Spec, stderr: str) -> Exception:
    """Turn uv's resolver explanation into one line naming the package."""
    text = " ".join(stderr.split())
    where = f"{spec.path}:"
    if match := re.search(r"Because ([^\s]+) was not found in the package registry", text):
        return SpecError(
            f"{where} '{match[1]}' is not on PyPI and is not a known conda-only package; "
            "check the spelling at pypi.org, or move it out of the spec"
        )
    match = re.search(r"there is no version of ([^\s,]+)", text) or re.search(
        r"only [^\s]+ (?:is|are) available and you require ([^\s,]+)", text
    )
    if match:
        return SpecError(
            f"{where} {match[1]} does not exist on PyPI; pick a released version "
            "('pip index versions NAME' lists them)"
        )
    if match := re.search(r"Because ([^\s]+) has no usable wheels", text):
        return SpecError(
            f"{where} {match[1]} has no wheel for python {spec.python} on linux x86_64 "
            "(images install wheels only); pin a version that publishes one"
        )
    if "error sending request" in text or "Failed to fetch" in text:
        return LockError(f"cannot reach the package index to resolve {spec.path}: {text[:300]}")
    return SpecError(f"{where} cannot be resolved: {text[:400]}")


def _requires(requirements: list[str], name: str) -> bool:
    return any(_normalize(re.split(r"[\s\[<>=!~;]", r, 1)[0]) == name for r in requirements)


def _read_pin(path: Path, line: str) -> Pin:
    match = _PIN.match(line)
    hashes = _HASH.findall(line)
    if not match or not hashes:
        raise LockError(
            f"{path}: entry {line.split()[0]!r} has no exact '==' pin with sha256 hashes; "
            "run 'make lock' to rewrite the lock"
        )
    return Pin(name=match[1], version=match[2], hashes=hashes)


def _logical_lines(text: str):
    """Join backslash continuations; strip trailing '# via' comments."""
    buffer = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        if buffer and stripped.startswith("#"):
            continue
        yield (buffer + stripped).strip()
        buffer = ""
    if buffer:
        yield buffer.strip()


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _summary(lock: Lock) -> str:
    keys = ("statsmodels", "numpy", "pandas", "scipy")
    found = [f"{key} {lock.version_of(key)}" for key in keys if lock.version_of(key)]
    return ", ".join(found) or "no scientific packages"
