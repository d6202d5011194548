"""Entry point of the training image: probe, check the profile, run the script.

Usage inside the container::

    python /opt/harness/entry.py train.py --input DATA --output OUT [ARGS...]

Before the training script runs, this measures what the container really
provides (the OpenBLAS libraries and the kernel each one chose, numpy's active
CPU dispatch targets, the CPU model, Python) and, when the determinism profile
is on (``HARNESS_PROFILE`` contains its expected values as JSON), fails with exit
code 3 if any setting did not take effect. The script then runs in this same
process with ``runpy``, so the measured libraries are the ones it uses. After it
ends, the sha256 and size of every file under ``--output`` are recorded.

Everything measured goes to the JSON record at ``HARNESS_RECORD``. This file
runs with the image's Python only and imports nothing from the harness.
"""

import hashlib
import json
import os
import platform
import runpy
import sys
import time
import traceback

PROFILE_FAILED = 3
PROBE_MARKER = "harness-probe: "
FINGERPRINT_FILE = "/opt/harness/fingerprint"
PACKAGES_FILE = "/opt/harness/packages.json"
# numpy dispatch targets that need AVX-512; the profile keeps numpy below them.
AVX512_TARGETS = ("AVX512", "X86_V4", "AVX10")


def main(argv):
    if not argv:
        print("error: usage: entry.py SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    record = {"started": _now(), "image": _image_identity(), "container": probe()}
    profile = json.loads(os.environ.get("HARNESS_PROFILE") or "null")
    record["profile_problems"] = check_profile(record["container"], profile)
    if record["profile_problems"]:
        record["exit_code"] = PROFILE_FAILED
        _write_record(record)
        print("error: determinism profile did not take effect: "
              + "; ".join(record["profile_problems"]), file=sys.stderr)
        return PROFILE_FAILED

    # Printed before the script starts, so the script cannot change it later;
    # the harness compares it with the record written at the end.
    print(PROBE_MARKER + json.dumps(record["container"], sort_keys=True), flush=True)
    code = run_script(argv[0], argv[1:])
    record["exit_code"] = code
    record["ended"] = _now()
    record["outputs"], record["irregular_outputs"] = list_outputs(_output_folder(argv[1:]))
    _write_record(record)
    return code


def probe():
    """Measure the BLAS libraries, numpy's CPU dispatch, the CPU and Python in use."""
    found = {"python": platform.python_version(), "cpu_model": _cpu_model(),
             "machine": platform.machine()}
    try:
        import numpy
        from numpy._core._multiarray_umath import (  # numpy >= 2.0
            __cpu_baseline__, __cpu_dispatch__, __cpu_features__,
        )
    except ImportError:
        try:
            import numpy
            from numpy.core._multiarray_umath import (  # numpy 1.x
                __cpu_baseline__, __cpu_dispatch__, __cpu_features__,
            )
        except ImportError:
            numpy = None
    if numpy is not None:
        found["numpy"] = {
            "version": numpy.__version__,
            "baseline": list(__cpu_baseline__),
            "dispatch_active": [t for t in __cpu_dispatch__ if __cpu_features__.get(t)],
            "cpu_features": sorted(k for k, v in __cpu_features__.items() if v),
        }
    try:
        import scipy.linalg  # noqa: F401 - loads scipy's own OpenBLAS, if any
    except ImportError:
        pass
    try:
        import threadpoolctl

        found["blas"] = [
            {key: lib.get(key) for key in ("internal_api", "version", "architecture",
                                           "num_threads", "threading_layer", "filepath")}
            for lib in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        found["blas"] = None
    return found


def check_profile(found, profile):
    """Return the profile settings that did not take effect, as readable lines."""
    if not profile:
        return []
    problems = []
    if found.get("blas") is None:
        problems.append("threadpoolctl is missing, so the BLAS kernel cannot be checked")
    for lib in found.get("blas") or []:
        name = os.path.basename(lib.get("filepath") or "?")
        if lib.get("internal_api") == "openblas":
            kernel = str(lib.get("architecture"))
            if kernel.lower() != profile["openblas_coretype"].lower():
                problems.append(f"{name} runs kernel {kernel}, expected "
                                f"{profile['openblas_coretype']}")
        if lib.get("num_threads") != profile["threads"]:
            problems.append(f"{name} uses {lib.get('num_threads')} threads, expected "
                            f"{profile['threads']}")
    numpy_info = found.get("numpy")
    if numpy_info and profile.get("numpy_below_avx512"):
        wide = [t for t in numpy_info["dispatch_active"] if t.startswith(AVX512_TARGETS)]
        if wide:
            problems.append("numpy still dispatches to " + ", ".join(wide))
    for name, value in profile.get("env", {}).items():
        if os.environ.get(name) != value:
            problems.append(f"{name} is {os.environ.get(name)!r}, expected {value!r}")
    return problems


def run_script(script, args):
    """Run ``script`` as ``__main__`` with ``args``; return its exit code."""
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def list_outputs(folder):
    """Return ``{relative path: {sha256, size}}`` for every regular file under ``folder``.

    Also returns the names of entries that are not regular files or folders
    (symbolic links, FIFOs, sockets), which the harness rejects.
    """
    result, irregular = {}, []
    if not folder or not os.path.isdir(folder):
        return result, irregular
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                irregular.append(os.path.relpath(path, folder).replace(os.sep, "/"))
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            result[relative] = {"sha256": digest.hexdigest(), "size": os.path.getsize(path)}
    return dict(sorted(result.items())), sorted(irregular)


def _output_folder(args):
    for i, arg in enumerate(args):
        if arg == "--output" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--output="):
            return arg.split("=", 1)[1]
    return None


def _image_identity():
    identity = {"fingerprint": os.environ.get("HARNESS_IMAGE_FINGERPRINT")}
    try:
        with open(FINGERPRINT_FILE) as handle:
            identity["fingerprint_file"] = handle.read().strip()
        with open(PACKAGES_FILE) as handle:
            identity["packages"] = json.load(handle)
    except OSError:
        pass
    return identity


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _write_record(record):
    path = os.environ.get("HARNESS_RECORD")
    if not path:
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
