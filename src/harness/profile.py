"""The determinism profile: run-time settings that make a fit repeat bit for bit.

One BLAS/OpenMP thread, a fixed hash seed, UTC and a headless matplotlib
backend remove the ordinary sources of variation. The less obvious one is the
CPU: OpenBLAS picks a kernel for the CPU it finds, and numpy dispatches to the
widest SIMD code the CPU has, so the same image gives different last digits on
AVX-512 Intel nodes and on AMD or older Intel nodes. For example, ARIMA(2,0,2)
on the shipped 2013 series with statsmodels 0.15 gives RMSE 511.0755126931052
with OpenBLAS's SkylakeX kernel and 511.07517077623913 with its Haswell kernel.
The profile therefore pins OpenBLAS to the Haswell kernel, which every AVX2 CPU
runs, and keeps numpy's dispatch below AVX-512.

The settings are applied per run, not baked into the image, so that a run with
the profile off shows what it changes. The in-container entry point checks that
each one took effect and fails the run otherwise.
"""

from __future__ import annotations

import json

from packaging.version import Version

OPENBLAS_CORETYPE = "Haswell"
THREADS = 1

BASE_ENV = {
    "OMP_NUM_THREADS": str(THREADS),
    "OPENBLAS_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
    "PYTHONHASHSEED": "0",
    "TZ": "UTC",
    "MPLBACKEND": "Agg",
}


def numpy_disabled_features(numpy_version: str | None) -> str:
    """Return ``NPY_DISABLE_CPU_FEATURES`` that keeps numpy below AVX-512.

    numpy 2.4 groups x86 features into levels and dispatches to ``X86_V4`` plus
    the ``AVX512_ICL`` and ``AVX512_SPR`` targets; earlier releases name each
    AVX-512 group. numpy ignores names it does not know, with a warning, so the
    list is chosen by the numpy version in the lock.
    """
    if numpy_version and Version(numpy_version) >= Version("2.4"):
        return "X86_V4 AVX512_ICL AVX512_SPR"
    return ("AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX "
            "AVX512_CNL AVX512_ICL AVX512_SPR")


def cpu_env(numpy_version: str | None) -> dict[str, str]:
    """Return the settings that make any x86-64 CPU compute like an AVX2-only one."""
    return {
        "OPENBLAS_CORETYPE": OPENBLAS_CORETYPE,
        "NPY_DISABLE_CPU_FEATURES": numpy_disabled_features(numpy_version),
    }


def profile_env(numpy_version: str | None) -> dict[str, str]:
    """Return the container environment of the determinism profile."""
    return {**BASE_ENV, **cpu_env(numpy_version)}


def expected() -> dict:
    """Return what the in-container check compares the measured values with."""
    return {
        "openblas_coretype": OPENBLAS_CORETYPE,
        "threads": THREADS,
        "numpy_below_avx512": True,
        "env": {k: v for k, v in BASE_ENV.items() if k in ("PYTHONHASHSEED", "TZ", "MPLBACKEND")},
    }


def container_env(enabled: bool, numpy_version: str | None) -> dict[str, str]:
    """Return the profile's variables plus ``HARNESS_PROFILE`` for the entry point."""
    if not enabled:
        return {}
    env = profile_env(numpy_version)
    env["HARNESS_PROFILE"] = json.dumps(expected(), sort_keys=True)
    return env
