"""Compare what two runs' manifests record, apart from the output numbers.

* identity: the inputs that decide what a run computes (image, lock, spec,
  script, data, arguments);
* integrity: whether each output file still matches the sha256 and size in its
  run's manifest;
* environment: machine, BLAS, packages and determinism settings.

None of these change the exit code. When numbers differ, :func:`likely_causes`
turns these findings into a ranked list of explanations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from harness.parity.numbers import output_kind, union_keys
from harness.parity.runs import RunFolder, RunInfo

# (name in the reports, dotted manifest key)
_IDENTITY_FIELDS = (
    ("image id", "image.id"),
    ("image digest", "image.digest"),
    ("lock sha256", "inputs.lock.sha256"),
    ("spec sha256", "inputs.spec.sha256"),
    ("script sha256", "inputs.script.sha256"),
    ("data sha256", "inputs.data.sha256"),
    ("arguments", "inputs.arguments"),
)

_ENVIRONMENT_FIELDS = (
    "target",
    "container.cpu_model",
    "container.python",
    "container.numpy.version",
    "image.base.reference",
    "image.base.digest",
    "determinism.enabled",
)

_CPU_FEATURES = "container.numpy.cpu_features"

_BLAS_FIELDS = ("internal_api", "version", "architecture", "num_threads")

# Library names for threadpoolctl's ``internal_api`` values.
_BLAS_NAMES = {
    "openblas": "OpenBLAS",
    "mkl": "MKL",
    "blis": "BLIS",
    "flexiblas": "FlexiBLAS",
}

_HEX_DIGEST = re.compile(r"(sha256:)?[0-9a-f]{64}")


@dataclass(frozen=True)
class IdentityField:
    """One input that decides what a run computes, as recorded in both manifests.

    ``detail_a`` and ``detail_b`` hold the input's path when the manifest has one.
    """

    name: str
    key: str
    a: Any
    b: Any
    differs: bool
    detail_a: str | None = None
    detail_b: str | None = None


@dataclass(frozen=True)
class IntegrityProblem:
    """An output file that does not match the run's manifest record."""

    run: str
    file: str | None
    kind: str  # checksum, missing, unlisted, unreadable, invalid_entry, not_recorded
    message: str


@dataclass(frozen=True)
class EnvironmentDifference:
    """A manifest field about the machine or packages that differs between runs."""

    field: str
    a: Any
    b: Any

    def describe(self, label_a: str, label_b: str, with_field: bool = True) -> str:
        """Return one line such as ``container.python: '3.11.2' (local) vs ...``."""
        prefix = f"{self.field}: " if with_field else ""
        if isinstance(self.a, list) and isinstance(self.b, list):
            only_a = sorted(set(map(str, self.a)) - set(map(str, self.b)))
            only_b = sorted(set(map(str, self.b)) - set(map(str, self.a)))
            parts = []
            if only_a:
                parts.append(f"{', '.join(only_a)} only in {label_a}")
            if only_b:
                parts.append(f"{', '.join(only_b)} only in {label_b}")
            if parts:
                return prefix + "; ".join(parts)
        return f"{prefix}{shown(self.a)} ({label_a}) vs {shown(self.b)} ({label_b})"


def shown(value: Any) -> str:
    """Return ``repr(value)``, or "not recorded" for None."""
    return "not recorded" if value is None else repr(value)


def short_text(value: Any) -> str:
    """Return a value for a one-line cause, with sha256 digests cut to 12 hex digits."""
    text = str(value)
    if _HEX_DIGEST.fullmatch(text):
        return text[: text.index(":") + 13] if ":" in text else text[:12]
    return "not recorded" if value is None else text


def _get(document: Any, dotted: str) -> Any:
    """Return the value at a dotted key path of nested dicts, or None."""
    value = document
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _get_list(document: Any, dotted: str) -> list[Any]:
    value = _get(document, dotted)
    return value if isinstance(value, list) else []


def _get_dict(document: Any, dotted: str) -> dict[str, Any]:
    value = _get(document, dotted)
    return value if isinstance(value, dict) else {}


# --- Identity ----------------------------------------------------------------


def compare_identity(a: RunFolder, b: RunFolder) -> list[IdentityField]:
    fields = []
    for name, key in _IDENTITY_FIELDS:
        value_a = _get(a.manifest, key)
        value_b = _get(b.manifest, key)
        differs = value_a != value_b
        if key == "image.digest" and (value_a is None or value_b is None):
            # A null digest only means that the image was never pushed. The
            # image id still shows whether the content differs.
            differs = False
        detail_a = detail_b = None
        if key.startswith("inputs.") and key.endswith(".sha256"):
            path_key = key.rsplit(".", 1)[0] + ".path"
            detail_a = _get(a.manifest, path_key)
            detail_b = _get(b.manifest, path_key)
        fields.append(
            IdentityField(name, key, value_a, value_b, differs, detail_a, detail_b)
        )
    return fields


# --- Integrity ---------------------------------------------------------------


def _is_inside_outputs(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel:
        return False
    path = PurePosixPath(rel)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in rel


def check_integrity(run: RunFolder) -> list[IntegrityProblem]:
    """Check every output file against the sha256 and size in the run's manifest."""
    record = run.manifest.get("outputs")
    if not isinstance(record, dict):
        return [
            IntegrityProblem(
                run.label,
                None,
                "not_recorded",
                f"{run.label}: manifest.json has no outputs record, "
                "so output checksums were not checked",
            )
        ]

    problems = []
    listed = set()
    for rel, entry in record.items():
        if not _is_inside_outputs(rel):
            problems.append(
                IntegrityProblem(
                    run.label,
                    str(rel),
                    "invalid_entry",
                    f"{run.label}: manifest lists output {rel!r}, which is not a path "
                    "inside outputs/; it was not checked",
                )
            )
            continue
        rel = PurePosixPath(rel).as_posix()
        listed.add(rel)
        problem = _check_recorded_file(run, rel, entry)
        if problem is not None:
            problems.append(problem)

    for rel in run.files:
        if rel not in listed:
            problems.append(
                IntegrityProblem(
                    run.label,
                    rel,
                    "unlisted",
                    f"{run.label}: outputs/{rel} is not listed in the manifest "
                    "(written after the run?)",
                )
            )
    return problems


def _check_recorded_file(
    run: RunFolder, rel: str, entry: Any
) -> IntegrityProblem | None:
    if rel not in run.file_set:
        return IntegrityProblem(
            run.label,
            rel,
            "missing",
            f"{run.label}: outputs/{rel} is listed in the manifest but missing",
        )
    expected_sha = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(expected_sha, str):
        return IntegrityProblem(
            run.label,
            rel,
            "invalid_entry",
            f"{run.label}: the manifest entry for outputs/{rel} has no sha256; "
            "it was not checked",
        )
    try:
        actual_sha = run.sha256(rel)
        actual_size = (run.outputs / rel).stat().st_size
    except OSError as exc:
        return IntegrityProblem(
            run.label,
            rel,
            "unreadable",
            f"{run.label}: outputs/{rel} could not be read ({exc.strerror})",
        )

    expected_size = entry.get("size")
    if actual_sha == expected_sha.lower() and expected_size in (None, actual_size):
        return None
    detail = ""
    if expected_size is not None and expected_size != actual_size:
        detail = f"; size {expected_size} recorded, {actual_size} on disk"
    return IntegrityProblem(
        run.label,
        rel,
        "checksum",
        f"{run.label}: outputs/{rel} does not match its manifest checksum "
        f"(edited after the run?){detail}",
    )


# --- Environment -------------------------------------------------------------


def compare_environment(
    a: dict[str, Any], b: dict[str, Any]
) -> list[EnvironmentDifference]:
    """List the environment fields of two manifests that differ, in report order."""
    pairs = [(key, _get(a, key), _get(b, key)) for key in _ENVIRONMENT_FIELDS]
    pairs += _cpu_feature_pairs(a, b)

    blas_a = _get_list(a, "container.blas")
    blas_b = _get_list(b, "container.blas")
    for index in range(max(len(blas_a), len(blas_b))):
        entry_a = blas_a[index] if index < len(blas_a) else None
        entry_b = blas_b[index] if index < len(blas_b) else None
        for key in _BLAS_FIELDS:
            name = f"container.blas[{index}].{key}"
            pairs.append((name, _get(entry_a, key), _get(entry_b, key)))

    for section in ("packages", "determinism.env"):
        mapping_a = _get_dict(a, section)
        mapping_b = _get_dict(b, section)
        for key in union_keys(mapping_a, mapping_b):
            pairs.append((f"{section}.{key}", mapping_a.get(key), mapping_b.get(key)))

    return [
        EnvironmentDifference(name, value_a, value_b)
        for name, value_a, value_b in pairs
        if value_a != value_b
    ]


def _cpu_feature_pairs(
    a: dict[str, Any], b: dict[str, Any]
) -> list[tuple[str, Any, Any]]:
    features_a = _get(a, _CPU_FEATURES)
    features_b = _get(b, _CPU_FEATURES)
    if not (isinstance(features_a, list) and isinstance(features_b, list)):
        return [(_CPU_FEATURES, features_a, features_b)]
    # Two lists are compared as sets, because their order carries no meaning.
    if set(map(str, features_a)) == set(map(str, features_b)):
        return []
    return [(_CPU_FEATURES, sorted(map(str, features_a)), sorted(map(str, features_b)))]


# --- Likely causes -----------------------------------------------------------


def likely_causes(
    run_a: RunInfo,
    run_b: RunInfo,
    identity: list[IdentityField],
    integrity: list[IntegrityProblem],
    environment: list[EnvironmentDifference],
) -> list[str]:
    """List the likely causes of numbers that are not identical, strongest first."""
    la, lb = run_a.label, run_b.label
    causes = []
    for item in identity:
        if item.differs:
            causes.append(
                f"different {item.name}: "
                f"{short_text(item.a)} ({la}) vs {short_text(item.b)} ({lb})"
            )
    for problem in integrity:
        # Only files whose numbers are compared can explain a numeric difference.
        if problem.kind == "checksum" and output_kind(problem.file or "") is not None:
            causes.append(
                f"outputs/{problem.file} in {problem.run} was changed after the run"
            )
    causes += _blas_causes(run_a.manifest, run_b.manifest, la, lb)
    causes += _environment_causes(environment, la, lb)
    return list(dict.fromkeys(causes))


def _environment_causes(
    environment: list[EnvironmentDifference], la: str, lb: str
) -> list[str]:
    causes = []
    by_field = {item.field: item for item in environment}
    packages = [
        f"{item.field.split('.', 1)[1]} {short_text(item.a)} vs {short_text(item.b)}"
        for item in environment
        if item.field.startswith("packages.")
    ]
    if packages:
        causes.append(f"package versions differ ({la} vs {lb}): " + ", ".join(packages))
    features = by_field.get(_CPU_FEATURES)
    if features is not None:
        causes.append(
            "CPU features that NumPy dispatches on differ: "
            + features.describe(la, lb, with_field=False)
        )
    determinism = [
        item.describe(la, lb)
        for item in environment
        if item.field.startswith("determinism.")
    ]
    if determinism:
        causes.append("determinism settings differ: " + "; ".join(determinism))
    cpu = by_field.get("container.cpu_model")
    if cpu is not None:
        causes.append(
            f"CPU model {short_text(cpu.a)} ({la}) vs {short_text(cpu.b)} ({lb})"
        )
    return causes


def _blas_causes(a: dict[str, Any], b: dict[str, Any], la: str, lb: str) -> list[str]:
    blas_a = _get_list(a, "container.blas")
    blas_b = _get_list(b, "container.blas")
    causes = []
    for entry_a, entry_b in zip(blas_a, blas_b):
        api_a = _get(entry_a, "internal_api")
        api_b = _get(entry_b, "internal_api")
        if api_a != api_b:
            causes.append(
                f"BLAS library {short_text(api_a)} ({la}) vs {short_text(api_b)} ({lb})"
            )
            continue
        name = _BLAS_NAMES.get(str(api_a), str(api_a) if api_a else "BLAS")
        for key, what in (
            ("architecture", "kernel"),
            ("version", "version"),
            ("num_threads", "threads"),
        ):
            value_a = _get(entry_a, key)
            value_b = _get(entry_b, key)
            if value_a != value_b:
                causes.append(
                    f"{name} {what} "
                    f"{short_text(value_a)} ({la}) vs {short_text(value_b)} ({lb})"
                )
    if len(blas_a) != len(blas_b):
        causes.append(
            f"{len(blas_a)} BLAS libraries loaded in {la}, {len(blas_b)} in {lb}"
        )
    return causes
