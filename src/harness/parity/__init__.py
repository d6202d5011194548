"""Compare two run folders number by number and write a parity report.

``compare_runs`` reads both runs' manifests and outputs and returns a
``ParityResult``; ``write_report`` renders it as parity.md, parity.json and
parity.png. ``ParityResult.exit_code`` is 0 when every number is within
tolerance and 1 otherwise; inputs that cannot be compared raise
``ParityInputError`` (exit code 2).
"""

from harness.parity.compare import compare_runs
from harness.parity.report import write_report
from harness.parity.result import ParityResult
from harness.parity.ulp import Tolerance, ulp_distance

__all__ = ["ParityResult", "Tolerance", "compare_runs", "ulp_distance", "write_report"]
