"""Run a tool (debootstrap, pip) and turn its output into progress lines."""

from __future__ import annotations

import logging
import subprocess
from typing import Callable

log = logging.getLogger(__name__)


def run_with_progress(command: list[str], progress: Callable[[str], str | None],
                      phase: str) -> tuple[int, list[str]]:
    """Run ``command``; log the lines ``progress`` turns into text at INFO, the rest at DEBUG.

    Returns the exit code and the last 20 lines of output, for error messages.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    tail: list[str] = []
    try:
        for line in process.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-20:]
            shown = progress(line)
            if shown:
                log.info("%s", shown, extra={"phase": phase})
            else:
                log.debug("%s: %s", command[0], line)
    except BaseException:
        process.kill()  # interrupted: do not leave the tool running
        process.wait()
        raise
    return process.wait(), tail
