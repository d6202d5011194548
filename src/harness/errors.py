"""Error kinds of the harness, one per stage.

Every error the user can cause or fix carries a one-line message (what failed, on
which value, what to do next) and the exit code the command line returns. The CLI
prints ``error: <message>`` once and exits; nothing else prints tracebacks.
"""


class HarnessError(Exception):
    """Base class: a failure the user can act on. ``exit_code`` is returned by the CLI."""

    exit_code = 1


class UsageError(HarnessError):
    """Bad command-line arguments or options."""

    exit_code = 2


class SpecError(HarnessError):
    """The conda environment spec is invalid or cannot be translated to PyPI."""


class LockError(HarnessError):
    """The lock is missing, stale, or could not be resolved."""


class EngineError(HarnessError):
    """The Docker engine cannot be reached, started or installed."""


class BaseImageError(HarnessError):
    """No base image could be pulled or built for the spec's Python."""


class WheelError(HarnessError):
    """A wheel in the lock could not be downloaded or failed its hash check."""


class BuildError(HarnessError):
    """The image build failed; the message ends with the failing step's output."""


class DataError(HarnessError):
    """The data file is missing or unusable before the container starts."""


class TrainingRejected(HarnessError):
    """The training script rejected its input (it exited with code 2)."""

    exit_code = 2


class TrainingFailed(HarnessError):
    """The training script crashed, or its container did not finish."""


class ProfileError(HarnessError):
    """The determinism profile did not take effect inside the container."""


class OutputError(TrainingFailed):
    """The script left something in outputs/ that is not a regular file."""


class RunFolderError(HarnessError):
    """The run folder cannot be created, or already exists."""


class RemoteError(HarnessError):
    """A remote target is not configured, unreachable, or its run failed."""


class RegistryError(RemoteError):
    """The container registry rejected or interrupted a push or pull."""


class DownloadError(RemoteError):
    """A file downloaded from a remote run is missing, short or corrupt."""


class Detached(HarnessError):
    """The user interrupted the wait; the remote run goes on and can be re-attached."""

    exit_code = 130


class ParityInputError(HarnessError):
    """Two run folders cannot be compared at all (missing or unreadable files)."""

    exit_code = 2
