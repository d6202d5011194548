"""Gather and check everything a run is made from, before any container starts.

Every target (local, emulated, Azure ML) starts here. The spec is read and its
lock checked or created, and the script folder and data file are checked. Then
the image is built or reused, and the container environment is assembled from
the determinism profile and the variables the user names.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from . import profile
from .errors import DataError, UsageError
from .image import ensure_image
from .lock import ensure_lock
from .manifest import RunInputs
from .snapshot import take_snapshot
from .spec import read_spec

log = logging.getLogger(__name__)

RUN_ID_VARIABLE = "HARNESS_RUN_ID"
CPU_CHOICES = (None, "", "native", "avx2")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_data(path: Path) -> Path:
    """Check that the data file exists and is a readable file (the script checks its content).

    Raises:
        DataError: missing, a directory, or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: data file not found; pass DATA=<csv file>")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass DATA=<csv file>, not a folder")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file; pass DATA=<csv file>")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: data file is not readable; check its permissions")
    return path


def parse_pass_env(names: list[str]) -> dict[str, str]:
    """Return the caller's values of the named variables, checking each name.

    Raises:
        UsageError: a name is not a valid variable name or is not set.
    """
    values = {}
    for name in names:
        if not _ENV_NAME.match(name):
            raise UsageError(f"PASS_ENV: {name!r} is not a variable name")
        if name not in os.environ:
            raise UsageError(f"PASS_ENV: {name} is not set in this shell; export it or drop it")
        values[name] = os.environ[name]
    return values


def prepare(client, spec_path: Path, data: Path, script_dir: Path, arguments: list[str],
            determinism: bool, pass_env: list[str], cpu: str | None = None) -> RunInputs:
    """Check the inputs, then lock and build; return what a run needs.

    Raises:
        HarnessError: any check or step failed (see the errors of each stage).
    """
    if cpu not in CPU_CHOICES:
        raise UsageError(f"CPU={cpu!r} is not known; use CPU=avx2 or leave it unset")
    spec = read_spec(spec_path)
    data = check_data(data)
    snapshot = take_snapshot(script_dir)
    passed = parse_pass_env(pass_env)
    lock = ensure_lock(spec)
    image = ensure_image(client, spec, lock)

    environment = profile.container_env(determinism, image.numpy_version)
    if cpu == "avx2":
        environment.update(profile.cpu_env(image.numpy_version))
    for name in passed:
        log.info("env: %s=<set>", name, extra={"phase": "run"})
    return RunInputs(
        spec=spec, lock=lock, image=image, snapshot=snapshot, data=data,
        arguments=list(arguments), determinism=determinism,
        environment=environment, passed_env=list(passed),
    )


def container_environment(inputs: RunInputs, run_id: str) -> dict[str, str]:
    """Return the variables a training container gets: run id, profile, named variables.

    The caller's environment is never passed whole, since it may hold secrets.
    """
    env = {RUN_ID_VARIABLE: run_id, **inputs.environment}
    env.update({name: os.environ[name] for name in inputs.passed_env if name in os.environ})
    return env
