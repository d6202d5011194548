"""Read a conda environment spec and translate it into PyPI requirements.

Azure ML users write environments as conda specs (``name``, ``channels``,
``dependencies`` with a ``python=3.X`` pin and a ``pip:`` list). The harness
installs everything from PyPI wheels, so each conda dependency is translated by
two rules: the conda name is the PyPI name, unless the short table
``CONDA_TO_PYPI`` gives another name. Packages that exist only as conda packages
(``CONDA_ONLY``) or only on another operating system (``OS_ONLY``) are rejected
with a message that names the reason, before anything is resolved or built.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from .errors import SpecError

log = logging.getLogger(__name__)

# Python versions a base image can be had for without a registry: Debian's python3.
DEBIAN_PYTHONS = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}

CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "py-xgboost": "xgboost",
    "matplotlib-base": "matplotlib",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "py-opencv": "opencv-python",
    "ruamel_yaml": "ruamel.yaml",
    "python-kaleido": "kaleido",
    "pyqt": "PyQt5",
}

# Conda packages with no PyPI wheel of the same meaning: compilers, system
# libraries and BLAS builds that conda ships but pip installs inside wheels.
CONDA_ONLY = {
    "cudatoolkit", "cudnn", "cuda-toolkit", "cuda-runtime", "nccl", "mkl", "mkl-include",
    "blas", "libblas", "libcblas", "liblapack", "openblas", "libopenblas", "_libgcc_mutex",
    "_openmp_mutex", "libgcc-ng", "libgcc", "libstdcxx-ng", "libgfortran-ng",
    "libgfortran5", "libgomp", "ld_impl_linux-64", "ca-certificates", "openssl",
    "libffi", "ncurses", "readline", "sqlite", "libsqlite", "tk", "xz", "zlib",
    "libzlib", "bzip2", "libuuid", "libnsl", "libxcrypt", "r-base", "nodejs",
    "gcc", "gxx", "gfortran", "cmake", "make",
    # What 'conda env export' adds on Linux: the IANA time-zone data (conda's
    # tzdata is not PyPI's tzdata package) and the C libraries under Python.
    "tzdata", "libexpat", "expat", "libmpdec", "libedit", "icu", "libiconv", "libxml2",
    "krb5", "c-ares", "freetype", "libpng", "libjpeg-turbo", "jpeg", "libtiff", "lcms2",
    "openjpeg", "libwebp", "libwebp-base", "zstd", "lz4-c", "libdeflate", "liblzma",
    "libstdcxx", "libgfortran", "qhull", "pthread-stubs", "libxcb", "libhwloc",
    "libbrotlicommon", "libbrotlidec", "libbrotlienc", "libevent", "libsodium",
}
CONDA_ONLY_PREFIXES = ("xorg-", "_")

OS_ONLY = {
    "vc": "Windows", "vs2015_runtime": "Windows", "vc14_runtime": "Windows",
    "ucrt": "Windows", "pywin32": "Windows", "pywin32-ctypes": "Windows",
    "win_inet_pton": "Windows", "wincertstore": "Windows", "menuinst": "Windows",
    "libcxx": "macOS", "libcxxabi": "macOS", "llvm-openmp": "macOS",
    "appnope": "macOS", "libcxx-devel": "macOS",
}
OS_ONLY_PREFIXES = {"m2w64-": "Windows", "msys2-": "Windows", "pyobjc-": "macOS"}

# Pip options a spec may carry; index options are passed to the resolver and to
# the wheel download and recorded in the lock.
INDEX_OPTIONS = ("--extra-index-url", "--index-url", "-i")

_MATCH_SPEC = re.compile(
    r"^(?:(?P<channel>[\w.\-/]+)::)?(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<rest>.*)$"
)

REEXPORT_HINT = "re-export it with 'conda env export --from-history' or write the pins by hand"


@dataclass
class Spec:
    """A parsed conda spec: where it is, its Python and its PyPI requirements."""

    path: Path
    name: str
    python: str
    requirements: list[str]
    index_options: list[str] = field(default_factory=list)
    sha256: str = ""

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")


def read_spec(path: Path) -> Spec:
    """Parse and validate the spec at ``path``.

    Raises:
        SpecError: the file is missing, not YAML, not a conda spec, pins no
            supported Python, or names a package that cannot come from PyPI.
    """
    path = Path(path)
    data, raw = _load_yaml(path)
    dependencies = data.get("dependencies")
    if not isinstance(dependencies, list) or not dependencies:
        raise SpecError(
            f"{path}: no 'dependencies' list; a conda spec lists packages under "
            "'dependencies:', for example '- python=3.11' and '- pip:'"
        )

    python = None
    requirements: list[str] = []
    pip_entries: list = []
    conda_only: list[str] = []
    for entry in dependencies:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            pip_entries.extend(entry["pip"] or [])
            continue
        if not isinstance(entry, str):
            raise SpecError(
                f"{path}: dependency {entry!r} is neither a package string nor a "
                "'pip:' list; write it as '- name=version'"
            )
        name, requirement = _translate_conda(path, entry)
        if name == "python":
            python = _python_version(path, entry, requirement)
        elif _is_conda_only(name):
            conda_only.append(name)
        elif requirement:
            requirements.append(requirement)
    if conda_only:
        raise SpecError(
            f"{path}: {len(conda_only)} conda-only package(s) with no PyPI wheel: "
            f"{', '.join(conda_only)}; drop them (pip wheels carry these libraries) or "
            "replace them with the pip packages that provide them, then run 'make lock'"
        )
    _warn_ignored(path, data)

    if python is None:
        raise SpecError(
            f"{path}: no python pin; add '- python=3.11' (supported: "
            f"{', '.join(supported_pythons())}) to 'dependencies'"
        )
    included: list[Path] = []
    pip_requirements, index_options = _pip_requirements(path, pip_entries, set(), included)
    digest = hashlib.sha256(raw)
    for extra in included:
        digest.update(extra.read_bytes())
    name = data.get("name") if isinstance(data.get("name"), str) else path.stem
    return Spec(
        path=path,
        name=name,
        python=python,
        requirements=requirements + pip_requirements,
        index_options=index_options,
        sha256=digest.hexdigest(),
    )


def supported_pythons() -> list[str]:
    """List the Python versions a base image is available for, lowest first."""
    from .base import pinned_slim_pythons

    versions = set(DEBIAN_PYTHONS) | set(pinned_slim_pythons())
    return sorted(versions, key=lambda v: tuple(int(part) for part in v.split(".")))


def _load_yaml(path: Path) -> tuple[dict, bytes]:
    if not path.exists():
        raise SpecError(f"{path}: spec file not found; pass ENV=envs/<name>.yml")
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a spec file; pass ENV=envs/<name>.yml")
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise SpecError(f"{path}: not valid YAML{where} ({problem}); fix the spec") from None
    if data is None:
        raise SpecError(f"{path}: the spec is empty; write 'name', 'channels' and 'dependencies'")
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: expected a mapping with 'name', 'channels' and 'dependencies', "
            f"found {type(data).__name__}"
        )
    return data, raw


def _translate_conda(path: Path, entry: str) -> tuple[str, str | None]:
    """Turn one conda match spec into ``(conda name, PyPI requirement or None)``."""
    match = _MATCH_SPEC.match(entry.strip())
    if not match:
        raise SpecError(f"{path}: cannot read dependency {entry!r}; write it as 'name=version'")
    name = match["name"].lower()
    rest = match["rest"].replace(" ", "")

    system = OS_ONLY.get(name) or next(
        (os_name for prefix, os_name in OS_ONLY_PREFIXES.items() if name.startswith(prefix)),
        None,
    )
    if system:
        raise SpecError(
            f"{path}: '{name}' exists only on {system}, so this spec was exported "
            f"there; {REEXPORT_HINT}"
        )
    if rest.startswith("=") and not rest.startswith("==") and rest.count("=") >= 2:
        raise SpecError(
            f"{path}: {entry!r} carries a conda build string, which pins a build for "
            f"one operating system; {REEXPORT_HINT}"
        )
    if rest[:1].isdigit():
        rest = "=" + rest  # 'python 3.11', the space form of a conda version
    if name in ("python", "pip"):
        return name, None if name == "pip" else rest
    if _is_conda_only(name):
        return name, None
    pypi_name = CONDA_TO_PYPI.get(name, name)
    return name, pypi_name + _conda_version(path, entry, rest)


def _is_conda_only(name: str) -> bool:
    return name in CONDA_ONLY or name.startswith(CONDA_ONLY_PREFIXES)


def _warn_ignored(path: Path, data: dict) -> None:
    if data.get("variables"):
        log.warning("%s: 'variables' are not applied to runs; pass the ones a run needs "
                    "with PASS_ENV=NAME,...", path)


def _conda_version(path: Path, entry: str, rest: str) -> str:
    """Translate a conda version constraint (``=1.2``, ``==1.2.3``, ``>=1``) to PEP 440."""
    if not rest:
        return ""
    if rest.startswith("==") or rest[0] in "<>!~":
        constraint = rest
    elif rest.startswith("="):
        version = rest[1:]
        constraint = f"=={version}" if version.endswith("*") else f"=={version}.*"
    else:
        raise SpecError(f"{path}: cannot read the version in {entry!r}; write 'name=1.2'")
    try:
        Requirement("x" + constraint)
    except InvalidRequirement:
        raise SpecError(f"{path}: invalid version {constraint!r} in {entry!r}") from None
    return constraint


def _python_version(path: Path, entry: str, constraint: str) -> str:
    match = re.fullmatch(r"==?(\d+)\.(\d+)(?:\.(\d+|\*))?(?:\.\*)?", constraint or "")
    if not match:
        raise SpecError(
            f"{path}: {entry!r} does not pin one Python version; write 'python=3.11' "
            f"(supported: {', '.join(supported_pythons())})"
        )
    version = f"{match[1]}.{match[2]}"
    if match[3] and match[3] != "*":
        log.warning("%s: %r pins a patch release; images use the base's python %s.x, "
                    "so only %s is kept", path, entry, version, version)
    if version not in supported_pythons():
        raise SpecError(
            f"{path}: python {version} is not supported: no base image for it "
            f"(supported: {', '.join(supported_pythons())}); pin one of those"
        )
    return version


def _pip_requirements(
    path: Path, entries: list, seen: set[Path], included: list[Path]
) -> tuple[list[str], list[str]]:
    """Validate the ``pip:`` entries, following ``-r`` files relative to ``path``.

    Included files are appended to ``included`` so that the spec hash covers them.
    """
    requirements: list[str] = []
    index_options: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            raise SpecError(f"{path}: pip entry {entry!r} is not a string")
        line = entry.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        option, _, value = line.partition(" ")
        if "=" in option and option.startswith("--"):
            option, _, value = line.partition("=")
        value = value.strip()
        if option in ("-r", "--requirement"):
            nested, options = _read_requirements_file(path, value, seen, included)
            requirements += nested
            index_options += options
        elif option in INDEX_OPTIONS:
            flag = "--index-url" if option == "-i" else option
            index_options += [flag, value]
        elif option.startswith("-"):
            _reject_pip_option(path, line, option)
        else:
            requirements.append(_pip_requirement(path, line))
    return requirements, index_options


def _reject_pip_option(path: Path, line: str, option: str) -> None:
    if option in ("-e", "--editable"):
        raise SpecError(
            f"{path}: editable pip entry {line!r} cannot go into an image; build a "
            "wheel, publish it to an index and pin it by name"
        )
    raise SpecError(
        f"{path}: pip option {option!r} is not supported in a spec (supported: -r FILE, "
        "--index-url URL, --extra-index-url URL); remove it"
    )


def _pip_requirement(path: Path, line: str) -> str:
    if line.startswith((".", "/", "~", "file:")) or re.match(r"^[a-z+]+://", line):
        raise SpecError(
            f"{path}: pip entry {line!r} is a local path or URL, which has no hash in "
            "an index; publish the package and pin it by name and version"
        )
    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]
        raise SpecError(f"{path}: invalid pip requirement {line!r} ({reason})") from None
    if requirement.url:
        raise SpecError(
            f"{path}: pip entry {line!r} installs from a URL; pin the package by "
            "name and version from an index instead"
        )
    return str(requirement)


def _read_requirements_file(
    path: Path, value: str, seen: set[Path], included: list[Path]
) -> tuple[list[str], list[str]]:
    target = (path.parent / value).resolve()
    if not target.is_file():
        raise SpecError(f"{path}: '-r {value}' names a file that does not exist ({target})")
    if target in seen:
        raise SpecError(f"{path}: '-r {value}' includes itself")
    included.append(target)
    lines = target.read_text(encoding="utf-8-sig").splitlines()
    return _pip_requirements(target, lines, seen | {target}, included)
