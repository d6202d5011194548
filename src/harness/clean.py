"""``make clean``: remove what the harness no longer needs, never a successful run.

It removes the images the harness built whose fingerprint is not the current
one of any spec in ``envs/`` (with ``--all``, every harness image and base) and
the build stages that builds leave behind. It also removes wheels that no lock
in ``envs/`` pins, build scratch, and failed or abandoned partial run folders
under ``runs/``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from docker.errors import APIError

from . import paths
from .errors import HarnessError
from .base import DEBIAN_REPOSITORY, find_local_base
from .image import FINGERPRINT_LABEL, STAGE_LABEL, fingerprint
from .lock import read_lock
from .runfolder import FAILED_NAME, PARTIAL_NAME
from .spec import read_spec
from .wheels import wheel_cache

log = logging.getLogger(__name__)



def clean(client, everything: bool = False) -> None:
    """Remove unneeded images, caches and failed run folders, logging each."""
    keep_images, keep_hashes = set(), set()
    if not everything:
        keep_images, keep_hashes = _current_fingerprints(client)
    _remove_images(client, keep_images, everything)
    _remove_wheels(keep_hashes)
    shutil.rmtree(paths.cache_dir() / "base", ignore_errors=True)
    _remove_failed_runs(client, paths.RUNS)


def _current_fingerprints(client) -> tuple[set[str], set[str]]:
    """Return the fingerprints and wheel hashes that the specs in envs/ use now."""
    fingerprints, hashes = set(), set()
    for spec_path in sorted((paths.ROOT / "envs").glob("*.yml")):
        try:
            spec = read_spec(spec_path)
            lock = read_lock(spec.lock_path)
            hashes.update(h for pin in lock.pins for h in pin.hashes)
            base = find_local_base(client, spec.python)
            if base is not None:
                fingerprints.add(fingerprint(spec, lock, base))
        except HarnessError as exc:
            log.info("keeping nothing for %s: %s", spec_path, exc, extra={"phase": "clean"})
    return fingerprints, hashes


def _remove_images(client, keep: set[str], everything: bool) -> None:
    for image in client.images.list(filters={"label": FINGERPRINT_LABEL}):
        if image.labels.get(FINGERPRINT_LABEL) in keep:
            continue
        _remove_image(client, image, ", ".join(image.tags) or image.short_id)
    for image in client.images.list(filters={"label": STAGE_LABEL}, all=True):
        if not image.tags:
            _remove_image(client, image, f"build stage {image.short_id}")
    if everything:
        for image in client.images.list(name=DEBIAN_REPOSITORY):
            _remove_image(client, image, ", ".join(image.tags))


def _remove_image(client, image, name: str) -> None:
    try:
        client.images.remove(image.id, force=True)
        log.info("removed image %s", name, extra={"phase": "clean"})
    except APIError as exc:
        log.warning("could not remove image %s: %s", name, exc.explanation)


def _remove_wheels(keep: set[str]) -> None:
    removed = 0
    for wheel in wheel_cache().glob("*.whl"):
        sidecar = wheel.with_name(wheel.name + ".sha256")
        digest = sidecar.read_text().strip() if sidecar.exists() else ""
        if digest not in keep:
            wheel.unlink()
            sidecar.unlink(missing_ok=True)
            removed += 1
    log.info("removed %d cached wheels", removed, extra={"phase": "clean"})


def _remove_failed_runs(client, runs: Path) -> None:
    """Remove failed run folders, and partial ones whose run no longer has a container."""
    if not runs.is_dir():
        return
    running = {container.labels.get("io.harness.run-id")
               for container in client.containers.list(filters={"label": "io.harness.run-id"})}
    for folder in sorted(runs.glob("*/*")):
        partial = PARTIAL_NAME.match(folder.name)
        abandoned = partial is not None and partial["run_id"] not in running
        if folder.is_dir() and (FAILED_NAME.match(folder.name) or abandoned):
            shutil.rmtree(folder)
            log.info("removed %s", folder, extra={"phase": "clean"})
