"""Build the training image from a lock, named by a fingerprint of its inputs.

The tag is a content fingerprint of everything that goes into the image: the
spec and lock hashes, the Dockerfile, the in-container entry point, the base
image identity and the platform. An existing image with that tag is reused
without calling the builder, so an unchanged spec costs two engine look-ups
(the base and the image).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from docker.errors import APIError, ImageNotFound

from . import paths
from .base import BaseImage, resolve_base
from .errors import BuildError
from .lock import Lock
from .spec import Spec
from .wheels import ensure_wheels

log = logging.getLogger(__name__)

PLATFORM = "linux/amd64"
FINGERPRINT_LABEL = "io.harness.fingerprint"
STAGE_LABEL = "io.harness.stage"  # on the install stage, which builds leave behind
VENV_PYTHON = "/opt/venv/bin/python"
ENTRY_POINT = "/opt/harness/entry.py"
_STEP = re.compile(r"^Step \d+/\d+ : ")
# pip's milestones inside the long install step, shown so the step is not silent.
_INSTALL_PROGRESS = re.compile(r"^\s*(Installing collected packages|Successfully installed)")


@dataclass
class Image:
    """A built training image and what it was built from."""

    id: str
    tag: str
    fingerprint: str
    base: BaseImage
    numpy_version: str | None

    @property
    def repository(self) -> str:
        return self.tag.rsplit(":", 1)[0]


def fingerprint(spec: Spec, lock: Lock, base: BaseImage) -> str:
    """Return the sha256 over every input of the image, in a fixed order."""
    digest = hashlib.sha256()
    for part in (
        f"spec:{spec.sha256}", f"lock:{lock.sha256}", f"base:{base.identity()}",
        f"platform:{PLATFORM}",
    ):
        digest.update(part.encode() + b"\n")
    for name in ("Dockerfile", "entry.py"):
        digest.update(name.encode() + b":" + (paths.DOCKER_DIR / name).read_bytes())
    return digest.hexdigest()


def ensure_image(client, spec: Spec, lock: Lock, no_cache: bool = False) -> Image:
    """Return the image for ``spec`` and ``lock``, building it when it does not exist.

    ``no_cache`` rebuilds every step, even when the image exists, instead of
    reusing it or the engine's layer cache.

    Raises:
        BaseImageError: no base image can be had.
        WheelError: a wheel cannot be downloaded.
        BuildError: the build failed; the message ends with the failing step's output.
    """
    base = resolve_base(client, spec.python)
    fingerprint_hex = fingerprint(spec, lock, base)
    tag = f"harness/{_repository_name(spec.name)}:{fingerprint_hex[:16]}"
    numpy_version = lock.version_of("numpy")
    try:
        existing = client.images.get(tag)
        if existing.labels.get(FINGERPRINT_LABEL) == fingerprint_hex and not no_cache:
            log.info("image %s is up to date (fingerprint %s)", tag, fingerprint_hex[:12],
                     extra={"phase": "build"})
            return Image(existing.id, tag, fingerprint_hex, base, numpy_version)
    except ImageNotFound:
        pass

    wheels = ensure_wheels(lock)
    image_id = _build(client, lock, wheels, base, tag, fingerprint_hex, no_cache)
    return Image(image_id, tag, fingerprint_hex, base, numpy_version)


def _repository_name(name: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "env"


def _build(client, lock: Lock, wheels: list[Path], base: BaseImage, tag: str,
           fingerprint_hex: str, no_cache: bool) -> str:
    started = time.monotonic()
    with tempfile.TemporaryFile(dir=paths.cache_dir()) as context:
        _write_context(context, lock, wheels)
        size_mb = context.tell() / 1e6
        context.seek(0)
        log.info("building %s on %s from docker/Dockerfile (context %.0f MB, %d wheels)",
                 tag, base.reference, size_mb, len(wheels), extra={"phase": "build"})
        stream = client.api.build(
            fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
            pull=False, nocache=no_cache, network_mode="none", platform=PLATFORM, decode=True,
            buildargs={"BASE_IMAGE": base.reference, "FINGERPRINT": fingerprint_hex},
        )
        image_id = _follow_build(stream, tag)
    _remove_build_stage(client)
    log.info("built %s (%s) in %.0f s", tag, image_id[:19], time.monotonic() - started,
             extra={"phase": "build"})
    return image_id


def _remove_build_stage(client) -> None:
    """Remove the install stage the classic builder leaves behind (about 1 GB)."""
    try:
        client.images.prune(filters={"label": f"{STAGE_LABEL}=install", "dangling": True})
    except APIError as exc:
        log.warning("could not remove the build stage image: %s", exc.explanation)


def _write_context(context, lock: Lock, wheels: list[Path]) -> None:
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name in ("Dockerfile", "entry.py"):
            tar.add(paths.DOCKER_DIR / name, arcname=name)
        data = lock.path.read_bytes()
        info = tarfile.TarInfo("requirements.lock")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for wheel in wheels:
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
    context.seek(0, io.SEEK_END)


def _follow_build(stream, tag: str) -> str:
    """Log the build's steps and return the image id; raise with the tail on failure."""
    tail: list[str] = []
    step = "?"
    image_id = None
    try:
        for event in stream:
            if "error" in event:
                raise BuildError(_build_failure(tag, step, tail, event["error"]))
            if "aux" in event and "ID" in event["aux"]:
                image_id = event["aux"]["ID"]
            for line in event.get("stream", "").splitlines():
                if not line.strip():
                    continue
                tail = (tail + [line])[-40:]
                if _STEP.match(line):
                    step = line
                    log.info("%s", line[:120], extra={"phase": "build"})
                elif _INSTALL_PROGRESS.match(line):
                    log.info("%s", line.strip()[:120], extra={"phase": "build"})
                else:
                    log.debug("build: %s", line)
    except APIError as exc:
        raise BuildError(f"building {tag} failed: {exc.explanation}") from None
    if image_id is None:
        raise BuildError(_build_failure(tag, step, tail, "the engine returned no image id"))
    return image_id


def _build_failure(tag: str, step: str, tail: list[str], error: str) -> str:
    output = " | ".join(line.strip() for line in tail[-6:] if not _STEP.match(line))
    return f"building {tag} failed at '{step[:100]}': {error.strip()} (last output: {output})"
