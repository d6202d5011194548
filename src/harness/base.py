"""Choose the base image for a Python version: a pinned slim image or a Debian build.

The preferred base is the official ``python:X.Y-slim`` image pinned by digest in
``envs/base-images.json``. Where it cannot be pulled (no registry access), the
harness builds a base from Debian packages with debootstrap, from the recipe in
``docker/base/debian.json``, and imports it into the engine. That base is tagged
by a hash of its recipe; its image id is local to this machine and goes into
every manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from docker.errors import APIError, ImageNotFound

from . import paths
from .engine import install_debian_packages
from .errors import BaseImageError
from .process import run_with_progress

log = logging.getLogger(__name__)

DEBIAN_REPOSITORY = "harness-base"
_PROGRESS = re.compile(r"^I: (Retrieving Release|Checking|Installing|Unpacking the base|"
                       r"Configuring the base|Base system)")


@dataclass
class BaseImage:
    """The base an image is built on."""

    reference: str          # what FROM names: a repo@digest or a local tag
    kind: str               # "slim" (official image) or "debian" (debootstrap)
    digest: str | None      # registry digest for slim; None for a local Debian build
    image_id: str           # local image id, sha256:...

    def identity(self) -> str:
        """Return what the image fingerprint hashes: the registry digest or the local id.

        A Debian base is rebuilt from a moving package archive, so its local id,
        not its recipe, identifies what went into an image.
        """
        return self.digest or self.image_id


def pinned_slim_pythons() -> list[str]:
    """List the Python versions with a pinned slim base in ``envs/base-images.json``."""
    return sorted(_read_pins())


def resolve_base(client, python: str) -> BaseImage:
    """Return a base image for ``python``, pulling or building it if needed.

    Raises:
        BaseImageError: the slim image cannot be pulled and no Debian base can be
            built (no recipe for this Python, not root, or debootstrap failed).
    """
    forced = os.environ.get("HARNESS_BASE", "")
    pin = _read_pins().get(python)
    if pin and forced != "debian":
        base = _pinned_slim(client, pin)
        if base:
            return base
    recipe = _debian_recipe(python)
    tag = f"{DEBIAN_REPOSITORY}:{recipe['release']}-{_recipe_hash(recipe)}"
    try:
        image = client.images.get(tag)
        log.info("base %s (Debian %s, built earlier)", tag, recipe["release"], extra={"phase": "base"})
        return BaseImage(tag, "debian", None, image.id)
    except ImageNotFound:
        pass
    if not pin and forced != "debian":
        base = pull_and_pin(client, python)
        if base:
            return base
    return _build_debian_base(client, recipe, tag)


def find_local_base(client, python: str) -> BaseImage | None:
    """Return the base ``resolve_base`` would use, if it is already in the engine.

    Unlike ``resolve_base`` it never pulls, builds or writes a pin.
    """
    pin = _read_pins().get(python)
    candidates = []
    if pin and os.environ.get("HARNESS_BASE", "") != "debian":
        reference = f"{pin['repository']}@{pin['digest']}"
        candidates.append((reference, "slim", pin["digest"]))
    try:
        recipe = _debian_recipe(python)
        candidates.append((f"{DEBIAN_REPOSITORY}:{recipe['release']}-{_recipe_hash(recipe)}",
                           "debian", None))
    except BaseImageError:
        pass
    for reference, kind, digest in candidates:
        try:
            return BaseImage(reference, kind, digest, client.images.get(reference).id)
        except ImageNotFound:
            continue
    return None


def _read_pins() -> dict:
    try:
        return json.loads(paths.BASE_PINS.read_text())["pins"]
    except (OSError, ValueError, KeyError):
        return {}


def _pinned_slim(client, pin: dict) -> BaseImage | None:
    reference = f"{pin['repository']}@{pin['digest']}"
    try:
        image = client.images.get(reference)
    except ImageNotFound:
        log.info("pulling base %s", reference, extra={"phase": "base"})
        try:
            image = client.images.pull(reference)
        except APIError as exc:
            log.warning("cannot pull %s (%s); using a Debian base instead",
                        reference, exc.explanation, extra={"phase": "base"})
            return None
    return BaseImage(reference, "slim", pin["digest"], image.id)


def pull_and_pin(client, python: str) -> BaseImage | None:
    """Pull python:X.Y-slim and record its digest; return None when it cannot be pulled."""
    repository, tag = "python", f"{python}-slim"
    log.info("pulling %s:%s to pin it", repository, tag, extra={"phase": "base"})
    try:
        image = client.images.pull(repository, tag=tag)
    except APIError as exc:
        log.info("cannot pull %s:%s (%s); building a base from Debian packages instead",
                 repository, tag, exc.explanation, extra={"phase": "base"})
        return None
    digest = next((d.split("@", 1)[1] for d in image.attrs.get("RepoDigests", [])), None)
    if digest is None:
        return None
    record_pin(python, repository, digest)
    return BaseImage(f"{repository}@{digest}", "slim", digest, image.id)


def record_pin(python: str, repository: str, digest: str) -> None:
    """Write a slim base digest into ``envs/base-images.json``."""
    data = json.loads(paths.BASE_PINS.read_text())
    data["pins"][python] = {"repository": repository, "digest": digest}
    tmp = paths.BASE_PINS.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(paths.BASE_PINS)
    log.info("pinned %s@%s in %s; commit it", repository, digest, paths.BASE_PINS,
             extra={"phase": "base"})


def _debian_recipe(python: str) -> dict:
    recipes = json.loads(paths.DEBIAN_RECIPES.read_text())
    recipe = recipes["pythons"].get(python)
    if recipe is None:
        raise BaseImageError(
            f"no base image for python {python}: python:{python}-slim is not pinned in "
            f"{paths.BASE_PINS} and Debian recipes exist only for "
            f"{', '.join(recipes['pythons'])}; pin a python version from that list"
        )
    return {**recipe, **{k: recipes[k] for k in ("mirror", "variant", "remove")}}


def _recipe_hash(recipe: dict) -> str:
    canonical = json.dumps({k: recipe[k] for k in ("release", "packages", "variant", "remove")},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _build_debian_base(client, recipe: dict, tag: str) -> BaseImage:
    _check_debootstrap()
    started = time.monotonic()
    log.info("building base %s from Debian %s packages with debootstrap (about a minute)",
             tag, recipe["release"], extra={"phase": "base"})
    scratch = paths.cache_dir() / "base"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        root = Path(tmp) / "rootfs"
        _debootstrap(recipe, root)
        for relative in recipe["remove"]:
            shutil.rmtree(root / relative, ignore_errors=True)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."],
                       check=True)
        size_mb = archive.stat().st_size / 1e6
        log.info("importing base (%.0f MB)", size_mb, extra={"phase": "base"})
        repository, version = tag.split(":")
        client.api.import_image_from_file(
            str(archive), repository=repository, tag=version,
            changes=["ENV LANG=C.UTF-8", 'CMD ["python3"]'],
        )
    image = client.images.get(tag)
    log.info("built base %s in %.0f s", tag, time.monotonic() - started, extra={"phase": "base"})
    return BaseImage(tag, "debian", None, image.id)


def _check_debootstrap() -> None:
    if shutil.which("debootstrap"):
        if os.geteuid() != 0:
            raise BaseImageError(
                "building a Debian base needs root (debootstrap); run 'sudo make build' "
                "once, or pin python:X.Y-slim with 'python -m harness pin-base X.Y'"
            )
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log.info("debootstrap not installed; installing it", extra={"phase": "base"})
        install_debian_packages(["debootstrap"])
        return
    raise BaseImageError(
        "cannot pull python:X.Y-slim and debootstrap is not installed; install "
        "debootstrap (as root) or give this machine access to Docker Hub"
    )


def _debootstrap(recipe: dict, root: Path) -> None:
    command = [
        "debootstrap", f"--variant={recipe['variant']}",
        f"--include={','.join(recipe['packages'])}",
        recipe["release"], str(root), recipe["mirror"],
    ]
    code, tail = run_with_progress(
        command, lambda line: f"debootstrap: {line[3:]}" if _PROGRESS.match(line) else None,
        "base",
    )
    if code != 0:
        raise BaseImageError(
            f"debootstrap of Debian {recipe['release']} failed (exit {code}): "
            + " | ".join(tail[-3:])
        )
