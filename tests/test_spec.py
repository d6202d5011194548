"""Conda spec parsing, conda-to-PyPI rules and the rejection of unusable specs."""

from __future__ import annotations

import pytest

from harness.errors import SpecError
from harness.spec import read_spec


def write_spec(tmp_path, text, name="env.yml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def spec_with(tmp_path, *dependencies, pip=()):
    lines = ["name: test-env", "channels:", "  - conda-forge", "dependencies:"]
    lines += [f"  - {dependency}" for dependency in dependencies]
    if pip:
        lines += ["  - pip:"] + [f"      - {entry}" for entry in pip]
    return write_spec(tmp_path, "\n".join(lines) + "\n")


def rejection(path) -> str:
    with pytest.raises(SpecError) as caught:
        read_spec(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_shipped_spec_reads(tmp_path):
    from conftest import SPEC

    spec = read_spec(SPEC)
    assert spec.python == "3.11"
    assert "statsmodels==0.15.0.*" in spec.requirements
    assert any(r.startswith("azureml-core==") for r in spec.requirements)
    assert spec.lock_path.name == "arima-env.lock"


def test_conda_versions_translate(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.11", "numpy=2.4", "pandas==3.1.1",
                               "scipy>=1.15", "conda-forge::joblib"))
    assert spec.requirements == ["numpy==2.4.*", "pandas==3.1.1", "scipy>=1.15", "joblib"]


def test_known_renames_apply(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.11", "pytorch=2.1", "matplotlib-base"))
    assert spec.requirements == ["torch==2.1.*", "matplotlib"]


def test_pip_section_passes_through(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.11", "pip", pip=["requests==2.32.3"]))
    assert spec.requirements == ["requests==2.32.3"]


def test_requirements_file_is_followed(tmp_path):
    (tmp_path / "extra.txt").write_text("# comment\nsix==1.17.0\n")
    path = spec_with(tmp_path, "python=3.11", pip=["-r extra.txt"])
    first = read_spec(path)
    (tmp_path / "extra.txt").write_text("six==1.16.0\n")
    second = read_spec(path)
    assert first.requirements == ["six==1.17.0"]
    assert first.sha256 != second.sha256


def test_index_options_are_kept(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python=3.11",
                               pip=["--extra-index-url https://example.invalid/simple", "six"]))
    assert spec.index_options == ["--extra-index-url", "https://example.invalid/simple"]


@pytest.mark.parametrize("text, expected", [
    ("name: x\ndependencies: [python=3.11\n", "not valid YAML"),
    ("- python=3.11\n", "expected a mapping"),
    ("just a string\n", "expected a mapping"),
    ("name: x\n", "no 'dependencies' list"),
    ("name: x\ndependencies: []\n", "no 'dependencies' list"),
])
def test_malformed_spec_rejected(tmp_path, text, expected):
    assert expected in rejection(write_spec(tmp_path, text))


def test_missing_file_rejected(tmp_path):
    assert "not found" in rejection(tmp_path / "absent.yml")


def test_directory_rejected(tmp_path):
    assert "is a directory" in rejection(tmp_path)


def test_binary_file_rejected(tmp_path):
    path = tmp_path / "env.yml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    assert "not UTF-8" in rejection(path)


def test_missing_python_rejected(tmp_path):
    assert "no python pin" in rejection(spec_with(tmp_path, "numpy"))


@pytest.mark.parametrize("pin", ["python", "python>=3.10", "python<4"])
def test_unpinned_python_rejected(tmp_path, pin):
    assert "does not pin one Python version" in rejection(spec_with(tmp_path, pin))


@pytest.mark.parametrize("pin", ["python=3.12", "python=3.8", "python=2.7"])
def test_unsupported_python_lists_supported(tmp_path, pin):
    message = rejection(spec_with(tmp_path, pin))
    assert "not supported" in message
    assert "3.9, 3.11, 3.13" in message


@pytest.mark.parametrize("pin", ["python=3.9", "python=3.13", "python=3.11.*", "python==3.11"])
def test_supported_pythons_accepted(tmp_path, pin):
    assert read_spec(spec_with(tmp_path, pin)).python in ("3.9", "3.11", "3.13")


@pytest.mark.parametrize("package", ["cudatoolkit=11.8", "mkl", "libgcc-ng", "openssl"])
def test_conda_only_package_rejected(tmp_path, package):
    message = rejection(spec_with(tmp_path, "python=3.11", package))
    assert "conda-only package" in message
    assert package.split("=")[0] in message


@pytest.mark.parametrize("package, system", [
    ("vc=14.3", "Windows"), ("m2w64-gcc-libs", "Windows"), ("ucrt", "Windows"),
    ("libcxx=16", "macOS"), ("appnope", "macOS"),
])
def test_other_os_export_rejected(tmp_path, package, system):
    message = rejection(spec_with(tmp_path, "python=3.11", package))
    assert f"exists only on {system}" in message
    assert "--from-history" in message


def test_build_string_rejected(tmp_path):
    message = rejection(spec_with(tmp_path, "python=3.11", "numpy=1.26.4=py311h64a7726_0"))
    assert "build string" in message


@pytest.mark.parametrize("entry, expected", [
    ("-e .", "editable"),
    ("--editable ./pkg", "editable"),
    ("./local_pkg", "local path"),
    ("/abs/path/pkg.whl", "local path"),
    ("file:///tmp/pkg.whl", "local path"),
    ("git+https://example.invalid/repo.git", "local path or URL"),
    ("pkg @ https://example.invalid/pkg.whl", "installs from a URL"),
    ("--find-links /wheels", "not supported"),
    ("--trusted-host example.invalid", "not supported"),
    ("not a requirement!!", "invalid pip requirement"),
])
def test_unusable_pip_entry_rejected(tmp_path, entry, expected):
    assert expected in rejection(spec_with(tmp_path, "python=3.11", pip=[entry]))


def test_missing_requirements_file_rejected(tmp_path):
    message = rejection(spec_with(tmp_path, "python=3.11", pip=["-r absent.txt"]))
    assert "does not exist" in message


def test_non_string_dependency_rejected(tmp_path):
    path = write_spec(tmp_path, "name: x\ndependencies:\n  - python=3.11\n  - {foo: 1}\n")
    assert "neither a package string" in rejection(path)


def test_all_conda_only_packages_named(tmp_path):
    message = rejection(spec_with(tmp_path, "python=3.11", "_libgcc_mutex=0.1", "openssl=3.0",
                                  "tzdata=2024a", "xorg-libx11", "numpy=2.4.6"))
    assert "4 conda-only package(s)" in message
    for name in ("_libgcc_mutex", "openssl", "tzdata", "xorg-libx11"):
        assert name in message


def test_space_form_versions_read(tmp_path):
    spec = read_spec(spec_with(tmp_path, "python 3.11", "numpy 2.4.6"))
    assert spec.python == "3.11"
    assert spec.requirements == ["numpy==2.4.6.*"]


def test_patch_pin_warns(tmp_path, caplog):
    spec = read_spec(spec_with(tmp_path, "python=3.11.10"))
    assert spec.python == "3.11"
    assert "pins a patch release" in caplog.text


def test_variables_warn(tmp_path, caplog):
    path = write_spec(tmp_path, "name: x\nvariables:\n  OMP_NUM_THREADS: '4'\n"
                                "dependencies:\n  - python=3.11\n")
    read_spec(path)
    assert "'variables' are not applied" in caplog.text
