"""make clean: removes failed runs, unpinned wheels and stale images, never a successful run."""

from __future__ import annotations


import pytest

from harness.clean import clean
from harness.local import run_local
from harness.runfolder import new_run_id

pytestmark = pytest.mark.docker


def test_clean_keeps_successful_runs(docker_client, run_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    good = run_local(docker_client, run_inputs, tmp_path / "runs" / "local" / "good", new_run_id())
    failed = tmp_path / "runs" / "local" / "bad.failed-20261204-000000-abcd"
    (failed / "logs").mkdir(parents=True)
    partial = tmp_path / "runs" / "local" / ".other.partial-20261204-000000-abcd"
    partial.mkdir()
    lookalike = run_local(docker_client, run_inputs,
                          tmp_path / "runs" / "local" / "x.failed-retry", new_run_id())
    before = (good / "manifest.json").read_bytes()

    clean(docker_client)

    assert (good / "manifest.json").read_bytes() == before
    assert (lookalike / "manifest.json").exists()
    assert not failed.exists()
    assert not partial.exists()


def test_clean_keeps_current_image(docker_client, run_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    clean(docker_client)
    assert docker_client.images.get(run_inputs.image.tag).id == run_inputs.image.id


def test_clean_removes_stale_image(docker_client, run_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    stale = docker_client.images.build(
        fileobj=_dockerfile(run_inputs.image.id), tag="harness/stale-test:old", rm=True,
        labels={"io.harness.fingerprint": "0" * 64},
    )[0]
    clean(docker_client)
    assert not docker_client.images.list(name="harness/stale-test")
    assert stale.id != run_inputs.image.id


def test_clean_removes_unpinned_wheels(docker_client, run_inputs, tmp_path, monkeypatch):
    from harness.wheels import ensure_wheels, wheel_cache

    monkeypatch.setattr("harness.paths.RUNS", tmp_path / "runs")
    pinned = ensure_wheels(run_inputs.lock)
    stray = wheel_cache() / "stray_pkg-1.0-py3-none-any.whl"
    stray.write_bytes(b"not a real wheel")
    clean(docker_client)
    assert not stray.exists()
    assert all(path.exists() for path in pinned)


def _dockerfile(base_id: str):
    import io

    return io.BytesIO(f"FROM {base_id}\nLABEL note=stale\n".encode())
