"""Run handling of both Azure ML targets, the same once their SDK has fetched files.

:class:`RunFacts` are the manifest's facts about a job, kept as job tags so a
re-attached run reports them too. :class:`AzureRun` tails the job log, joins
the error tail and checks a download against the entry point's record.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ...errors import DownloadError, RemoteError
from ...manifest import verify_outputs
from ...runfolder import list_files
from ..base import REMOTE_RECORD, RemoteRun
from .service import strip_query

log = logging.getLogger(__name__)

TAG_PREFIX = "harness."
ERROR_TAIL_LINES = 10

# Log file names of a job's own stdout and stderr: "user_logs/std_log.txt" on
# the current Azure ML runtime (azure-ai-ml 1.35 streams the same pattern) and
# "azureml-logs/70_driver_log.txt" on the legacy one.
_JOB_LOG_PATTERNS = (
    re.compile(r"^user_logs/std_log[^\d]*0*(?:_ps)?\.txt$"),
    re.compile(r"^azureml-logs/70_driver_log.*\.txt$"),
)


@dataclass(frozen=True)
class RunFacts:
    """Facts the manifest records about a job, kept as job tags for re-attaching."""

    workspace: str
    experiment: str
    compute_target: str
    environment_name: str
    environment_version: str | None
    image_reference: str | None  # registry/repository@sha256:..., None for conda
    pinned: bool

    def tags(self) -> dict[str, str]:
        return {
            TAG_PREFIX + "environment": self.environment_name,
            TAG_PREFIX + "environment_version": str(self.environment_version or ""),
            TAG_PREFIX + "image": self.image_reference or "",
            TAG_PREFIX + "compute": self.compute_target,
            TAG_PREFIX + "pinned": "true" if self.pinned else "false",
        }

    @classmethod
    def from_tags(
        cls,
        tags: Mapping[str, str],
        workspace: str,
        experiment: str,
        compute_target: str | None = None,
    ) -> RunFacts:
        def tag(name: str) -> str | None:
            return tags.get(TAG_PREFIX + name) or None

        return cls(
            workspace=workspace,
            experiment=experiment,
            compute_target=tag("compute") or compute_target or "",
            environment_name=tag("environment") or "",
            environment_version=tag("environment_version"),
            image_reference=tag("image"),
            pinned=tag("pinned") != "false",
        )

    def manifest_extra(self, run_id: str, portal_url: str | None, sdk: str) -> dict:
        """Return the manifest's ``remote`` section for the job ``run_id``."""
        digest = None
        if self.image_reference and "@" in self.image_reference:
            digest = self.image_reference.rsplit("@", 1)[1]
        return {
            "workspace": self.workspace,
            "experiment": self.experiment,
            "run_id": run_id,
            "portal_url": portal_url,
            "environment": {
                "name": self.environment_name,
                "version": self.environment_version,
            },
            "image_digest": digest,
            "compute_target": self.compute_target,
            "pinned": self.pinned,
            "sdk": sdk,
        }


def select_job_log(names) -> str | None:
    """Return the name of the job's stdout/stderr log among ``names``, or None."""
    for pattern in _JOB_LOG_PATTERNS:
        matches = sorted(name for name in names if pattern.match(name))
        if matches:
            return matches[0]
    return None


class LogTail:
    """Tracker that turns repeated reads of whole log files into the new lines."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def new_lines(self, name: str, text: str) -> list[str]:
        lines = text.splitlines()
        # Only complete lines count, so a line still being written comes once, whole.
        if text and not text.endswith("\n"):
            lines = lines[:-1]
        start = self._seen.get(name, 0)
        self._seen[name] = max(start, len(lines))
        return lines[start:]


def tail_line(
    text: str | None, message: str | None = None, count: int = ERROR_TAIL_LINES
) -> str:
    """Join the service's error message and the last ``count`` log lines in one line."""
    parts = [strip_query(message.strip())] if message and message.strip() else []
    if text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        parts += [strip_query(line) for line in lines[-count:]]
    return " | ".join(parts)


def read_record(logs: Path) -> dict:
    """Return the entry point's record (``logs/harness/record.json``), or {} if absent.

    Raises:
        DownloadError: the record exists but is not valid JSON.
    """
    path = Path(logs) / Path(REMOTE_RECORD).relative_to("logs")
    if not path.is_file():
        log.warning(
            "the run left no %s; its outputs cannot be checked against the container's "
            "own listing",
            REMOTE_RECORD,
            extra={"phase": "download"},
        )
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DownloadError(
            f"{path}: the downloaded record is unreadable ({exc}); "
            "download the run again"
        ) from None
    if not isinstance(record, dict):
        raise DownloadError(f"{path}: the downloaded record is not a JSON object")
    return record


def check_download(record: dict, outputs: Path) -> None:
    """Check the downloaded ``outputs`` folder against the record's listing of outputs.

    Raises:
        DownloadError: naming the first file that is missing, empty or different.
    """
    found = list_files(outputs)
    verify_outputs(record.get("outputs"), found)
    size = sum(entry["size"] for entry in found.values())
    log.info(
        "downloaded %d output files (%d bytes) to %s",
        len(found),
        size,
        outputs,
        extra={"phase": "download"},
    )


class AzureRun(RemoteRun):
    """Base of the two Azure ML runs; subclasses reach their job through the service."""

    sdk_distribution: str  # recorded in the manifest with its installed version
    job_term: str  # what the SDK calls a job in messages: "run" (v1) or "job" (v2)

    def __init__(self, service, facts: RunFacts, run_id: str, portal_url: str | None):
        self.service = service
        self.facts = facts
        self.run_id = run_id
        self.portal_url = portal_url
        self._tail = LogTail()

    def new_log_lines(self) -> list[str]:
        """Return the new lines of the job's log, [] while there is none."""
        try:
            name, text = self._job_log()
        except RemoteError as exc:
            log.warning(
                "cannot read the log of %s %s: %s",
                self.job_term,
                self.run_id,
                exc,
                extra={"phase": "wait"},
            )
            return []
        return self._tail.new_lines(name, text) if name else []

    def download(self, outputs: Path, logs: Path) -> dict:
        """Download outputs/ and logs/, check them against the record, and return it.

        Raises:
            RemoteError: a download failed.
            DownloadError: a file the job recorded is missing, empty or different.
        """
        log.info(
            "downloading %s %s to %s and %s",
            self.job_term,
            self.run_id,
            outputs,
            logs,
            extra={"phase": "download"},
        )
        self._download_files(outputs, logs)
        record = read_record(logs)
        check_download(record, outputs)
        return record

    def error_tail(self) -> str:
        message = self._error_message()
        try:
            _name, text = self._job_log()
        except RemoteError:
            text = None
        return tail_line(text, message)

    def manifest_extra(self) -> dict:
        version = importlib.metadata.version(self.sdk_distribution)
        sdk = f"{self.sdk_distribution} {version}"
        return self.facts.manifest_extra(self.run_id, self.portal_url, sdk)

    @abstractmethod
    def _download_files(self, outputs: Path, logs: Path) -> None:
        """Download the job's outputs into ``outputs`` and its logs into ``logs``."""

    @abstractmethod
    def _log_files(self) -> dict[str, str]:
        """Return ``{log file name: pre-signed URL}`` of the job's logs so far."""

    @abstractmethod
    def _error_message(self) -> str | None:
        """Return the error message Azure ML recorded for the job, if any."""

    def _job_log(self) -> tuple[str | None, str | None]:
        files = self._log_files()
        name = select_job_log(files)
        if name is None:
            return None, None
        return name, self.service.read_log(files[name])
