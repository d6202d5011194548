"""Push the training image to a registry and refer to it by digest.

A tag can be moved; a digest cannot. Remote jobs therefore run
``registry/repository@sha256:...``, the digest the registry returned for the
push. For the emulated target this module also starts a real OCI registry on
127.0.0.1 when none responds there.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from docker.errors import APIError, DockerException
from requests.exceptions import RequestException

from .. import paths
from ..engine import install_debian_packages
from ..errors import RegistryError
from ..image import Image

log = logging.getLogger(__name__)

LOCAL_REGISTRY = os.environ.get("HARNESS_REGISTRY", "127.0.0.1:5000")
REGISTRY_START_TIMEOUT = 20

_REGISTRY_CONFIG = """version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {address}
"""


def push_by_digest(client, image: Image, registry: str, repository: str,
                   auth_config: dict | None = None) -> str:
    """Push ``image`` to ``registry/repository`` and return ``registry/repository@sha256:...``.

    Raises:
        RegistryError: the registry refused, or the push stopped part-way.
    """
    target = f"{registry}/{repository}"
    tag = image.fingerprint[:16]
    client.images.get(image.id).tag(target, tag=tag)
    log.info("pushing %s:%s", target, tag, extra={"phase": "push"})
    try:
        digest, layers, seconds = _push(client, target, tag, registry, auth_config)
    finally:
        # Jobs refer to the digest, so the tag was only needed for the push.
        client.images.remove(f"{target}:{tag}", noprune=True)
    pushed = sum(1 for status in layers.values() if status == "Pushed")
    log.info("pushed %s@%s (%d layers, %d new) in %.0f s", target, digest, len(layers),
             pushed, seconds, extra={"phase": "push"})
    return f"{target}@{digest}"


def _push(client, target: str, tag: str, registry: str,
          auth_config: dict | None) -> tuple[str, dict[str, str], float]:
    """Push ``target:tag``; return the digest, each layer's last status and the time taken."""
    started = time.monotonic()
    digest = None
    layers: dict[str, str] = {}
    try:
        for event in client.api.push(target, tag=tag, stream=True, decode=True,
                                     auth_config=auth_config):
            if "error" in event:
                raise RegistryError(
                    f"pushing {target}:{tag} failed: {event['error'].strip()}; check that "
                    f"the registry {registry} is up and retry"
                )
            _log_push_event(event, layers)
            digest = event.get("aux", {}).get("Digest", digest)
    except (APIError, RequestException, DockerException) as exc:
        raise RegistryError(f"pushing {target}:{tag} failed: {exc}; retry when {registry} "
                            "responds") from None
    if digest is None:
        raise RegistryError(f"pushing {target}:{tag} returned no digest; retry the push")
    return digest, layers, time.monotonic() - started


def _log_push_event(event: dict, layers: dict[str, str]) -> None:
    layer, status = event.get("id"), event.get("status", "")
    if not layer or status in ("Preparing", "Waiting", "Pushing"):
        return
    if layers.get(layer) != status:
        layers[layer] = status
        log.info("layer %s: %s", layer, status, extra={"phase": "push"})


def registry_responds(address: str) -> bool:
    """Return whether an OCI registry responds at ``http://address/v2/``."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (OSError, ValueError):
        return False


def ensure_local_registry(address: str = LOCAL_REGISTRY) -> str:
    """Return the address of a registry on 127.0.0.1, starting one if none responds.

    Debian's ``docker-registry`` package is used where the harness may install
    packages (root on Debian or Ubuntu), as for the engine.

    Raises:
        RegistryError: no registry responds and none can be started.
    """
    if registry_responds(address):
        return address
    host = address.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost"):
        raise RegistryError(f"no registry responds at {address}; start it or unset HARNESS_REGISTRY")
    binary = shutil.which("docker-registry")
    if binary is None and os.geteuid() == 0 and shutil.which("apt-get"):
        log.info("no registry on %s; installing Debian's docker-registry", address,
                 extra={"phase": "registry"})
        install_debian_packages(["docker-registry"])
        binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryError(
            f"no registry responds at {address} and docker-registry is not installed; "
            f"start one with 'docker run -d -p {address}:5000 registry:2'"
        )
    _start_registry(binary, address)
    return address


def _start_registry(binary: str, address: str) -> None:
    folder = paths.cache_dir() / "registry"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yml"
    config.write_text(_REGISTRY_CONFIG.format(root=folder / "storage", address=address))
    log_file = folder / "registry.log"
    log.info("starting a registry on %s (storage %s)", address, folder / "storage",
             extra={"phase": "registry"})
    with log_file.open("ab") as out:
        subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + REGISTRY_START_TIMEOUT
    while time.monotonic() < deadline:
        if registry_responds(address):
            return
        time.sleep(0.2)
    raise RegistryError(f"the registry did not respond on {address} within "
                        f"{REGISTRY_START_TIMEOUT} s; see {log_file}")
