"""Connect to the Docker engine, starting or installing it where that is safe.

On a user's machine the engine already runs and the harness only connects. As
root on Debian or Ubuntu (CI machines, fresh servers) it starts an installed but
stopped ``dockerd``, and installs Debian's ``docker.io`` only when no engine is
installed at all, so it never replaces an engine a user already has.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
from docker.errors import DockerException

from .errors import EngineError

log = logging.getLogger(__name__)

START_TIMEOUT = 60
DOCKERD_LOG = Path("/var/log/harness-dockerd.log")

_client: docker.DockerClient | None = None


def connect() -> docker.DockerClient:
    """Return a client for a running engine, starting one if this process may.

    Raises:
        EngineError: no engine responds and none can be started here.
    """
    global _client
    if _client is not None:
        return _client
    client = _try_connect()
    if client is None:
        _start_engine()
        client = _wait_for_engine()
    _client = client
    return client


def _try_connect() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except DockerException:
        return None


def _may_manage_engine() -> bool:
    """Return whether this process may start or install an engine: root, Linux, local socket."""
    host = os.environ.get("DOCKER_HOST", "")
    return os.name == "posix" and os.geteuid() == 0 and host in ("", "unix:///var/run/docker.sock")


def _start_engine() -> None:
    if not _may_manage_engine():
        raise EngineError(
            "cannot connect to the Docker engine "
            f"({os.environ.get('DOCKER_HOST') or 'unix:///var/run/docker.sock'}); start it "
            "(Docker Desktop, or 'sudo systemctl start docker') and try again"
        )
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        _install_engine()
        dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineError("installing docker.io did not provide dockerd; install Docker by hand")
    log.info("starting dockerd (log: %s)", DOCKERD_LOG, extra={"phase": "engine"})
    with DOCKERD_LOG.open("ab") as out:
        subprocess.Popen(
            [dockerd], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _install_engine() -> None:
    if shutil.which("apt-get") is None:
        raise EngineError(
            "no Docker engine is installed and this is not a Debian-like system; "
            "install Docker (docs.docker.com/engine/install) and try again"
        )
    log.info("no Docker engine installed; installing Debian's docker.io", extra={"phase": "engine"})
    install_debian_packages(["docker.io"])


def install_debian_packages(packages: list[str]) -> None:
    """Install Debian packages with apt-get, as root, with progress on the log.

    Raises:
        EngineError: apt-get failed; the message carries its last lines.
    """
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        log.info("running %s", " ".join(command), extra={"phase": "engine"})
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])
            raise EngineError(f"'{' '.join(command)}' failed: {tail}")


def _wait_for_engine() -> docker.DockerClient:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        client = _try_connect()
        if client is not None:
            log.info("Docker engine is up", extra={"phase": "engine"})
            return client
        time.sleep(0.5)
    raise EngineError(
        f"dockerd did not respond within {START_TIMEOUT} s; see {DOCKERD_LOG} for why"
    )
