"""Locks: resolution for the spec's Python, header, staleness and resolver errors.

These tests resolve against the package index, as a user's 'make lock' does.
"""

from __future__ import annotations

import re

import pytest

from harness.errors import LockError, SpecError
from harness.lock import ensure_lock, read_lock, write_lock
from harness.spec import read_spec
from test_spec import spec_with


def test_lock_for_python_313_has_cp313_wheels(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.13", "numpy=2.4.6"))
    lock = write_lock(spec)
    text = lock.path.read_text()
    numpy_pin = next(pin for pin in lock.pins if pin.name == "numpy")
    assert lock.python == "3.13"
    assert numpy_pin.version == "2.4.6"
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in numpy_pin.hashes)
    assert f"# spec-sha256: {spec.sha256}" in text


def test_lock_wheels_match_python_313(tmp_path):
    """The cached wheel of a 3.13 lock carries a cp313 tag, not the host's."""
    from harness import wheels

    spec = read_spec(spec_with(tmp_path, "python=3.13", "numpy=2.4.6"))
    lock = write_lock(spec)
    files = wheels.ensure_wheels(lock)
    numpy_wheel = next(f for f in files if f.name.startswith("numpy-"))
    assert "-cp313-cp313-" in numpy_wheel.name
    assert "x86_64" in numpy_wheel.name


def test_lock_adds_threadpoolctl(tmp_path):
    lock = write_lock(read_spec(spec_with(tmp_path, "python=3.11", "six")))
    assert lock.version_of("threadpoolctl") is not None


def test_missing_lock_is_created(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.11", "six"))
    assert not spec.lock_path.exists()
    ensure_lock(spec)
    assert spec.lock_path.exists()


def test_stale_lock_stops_with_hint(tmp_path):
    path = spec_with(tmp_path, "python=3.11", "six")
    write_lock(read_spec(path))
    before = path.with_suffix(".lock").read_text()
    path.write_text(path.read_text() + "  - packaging\n")
    with pytest.raises(LockError) as caught:
        ensure_lock(read_spec(path))
    assert "is stale" in str(caught.value)
    assert "make lock" in str(caught.value)
    assert path.with_suffix(".lock").read_text() == before


def test_unchanged_lock_is_not_rewritten(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.11", "six"))
    write_lock(spec)
    mtime = spec.lock_path.stat().st_mtime_ns
    ensure_lock(spec)
    assert spec.lock_path.stat().st_mtime_ns == mtime


def test_lock_without_header_rejected(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text("six==1.17.0 --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(LockError, match="not a harness lock"):
        read_lock(path)


def test_lock_entry_without_hash_rejected(tmp_path):
    path = tmp_path / "x.lock"
    path.write_text("# spec-sha256: a\n# python: 3.11\n# platform: p\nsix==1.17.0\n")
    with pytest.raises(LockError, match="no exact '==' pin with sha256"):
        read_lock(path)


@pytest.mark.parametrize("dependency, expected", [
    ("notapkg-xyzzy-harness-test", "is not on PyPI and is not a known conda-only package"),
    ("numpy=99.1", "does not exist on PyPI"),
    ("numpy==1.21.0", "has no wheel for python 3.11"),
])
def test_resolver_errors_name_package(tmp_path, dependency, expected):
    spec = read_spec(spec_with(tmp_path, "python=3.11", dependency))
    with pytest.raises(SpecError) as caught:
        write_lock(spec)
    assert expected in str(caught.value)
    assert not spec.lock_path.exists()
