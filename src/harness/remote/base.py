"""The interface every remote target implements, and the pieces they share.

A backend checks its configuration first (before anything is built or pushed),
pushes the image by digest, submits the training job and returns a
:class:`RemoteRun`; :mod:`harness.remote.flow` waits for it, downloads the
outputs into a run folder and writes the manifest, the same way for every
target. Every call that reaches a service goes through the backend's own small
service class, so tests hand the backend a fake of that class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ..image import ENTRY_POINT, VENV_PYTHON
from ..manifest import RunInputs

# Inside a remote job the script folder is the working directory. Azure ML
# uploads ./outputs and ./logs of it when the job ends.
REMOTE_OUTPUT = "outputs"
REMOTE_RECORD = "logs/harness/record.json"

TERMINAL_STATES = {"Completed", "Failed", "Canceled", "NotResponding"}


@dataclass
class Submission:
    """A remote job's image by digest, command line and environment variables."""

    run_id: str
    image_reference: str          # registry/repository@sha256:...
    data_path: Path
    data_sha256: str
    arguments: list[str]          # the user's extra training arguments
    environment: dict[str, str]   # determinism profile, run id, named variables

    def command(self, data_argument: str) -> list[str]:
        """Return the job's command line, given how the backend names the data file."""
        return [
            VENV_PYTHON, ENTRY_POINT, "train.py",
            "--input", data_argument, "--output", REMOTE_OUTPUT, *self.arguments,
        ]

    @property
    def job_environment(self) -> dict[str, str]:
        return {**self.environment, "HARNESS_RECORD": REMOTE_RECORD}


class RemoteRun(ABC):
    """A submitted remote job: poll it, read its log, download its results."""

    run_id: str
    portal_url: str | None = None

    @abstractmethod
    def status(self) -> str:
        """Return the job's status in Azure ML's words (Queued, Running, Completed, ...)."""

    @abstractmethod
    def new_log_lines(self) -> list[str]:
        """Return the lines of the job's log that arrived since the last call."""

    @abstractmethod
    def download(self, outputs: Path, logs: Path) -> dict:
        """Download ``outputs/`` and ``logs/`` into the given empty folders.

        Returns the record the in-container entry point wrote (``REMOTE_RECORD``),
        or an empty dict when there is none.
        """

    @abstractmethod
    def error_tail(self) -> str:
        """Return the last lines of the failed job's error log, joined into one line."""

    def manifest_extra(self) -> dict:
        """Return target-specific facts for the manifest under the key ``remote``."""
        return {}

    def close(self) -> None:
        """Release what the finished job still holds (the emulated job's container)."""


class Backend(ABC):
    """A remote target."""

    name: str

    @abstractmethod
    def check_config(self) -> None:
        """Raise RemoteError unless the target is configured and reachable."""

    @abstractmethod
    def push(self, client, inputs: RunInputs) -> str:
        """Push the image and return its reference by digest (``repo@sha256:...``)."""

    @abstractmethod
    def submit(self, inputs: RunInputs, submission: Submission) -> RemoteRun:
        """Upload what the job needs, submit it and return the running job."""

    @abstractmethod
    def attach(self, remote_id: str) -> RemoteRun:
        """Return the already submitted job ``remote_id``."""

    @abstractmethod
    def cancel(self, remote_id: str) -> None:
        """Cancel the submitted job ``remote_id``; never called without the user asking."""

    def reattach_hint(self, remote_id: str) -> str:
        """Return the command that re-attaches to ``remote_id``."""
        return f"make cloud-train TARGET={self.name} RUN={remote_id}"
