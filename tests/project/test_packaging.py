"""The wheel ships cli/ and migrations/ inside proto_index, runs from there, and imports stay offline and light."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from suite_paths import ROOT



@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    """A copy of the sources alone: a stale build/ folder in the checkout would hide a package missing
    from pyproject's list. Links stay links (proto_index/cli -> ../cli), as in the checkout."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "proto_index", "cli", "migrations"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, sources) -> Path:
    out = tmp_path_factory.mktemp("dist")
    src = sources
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    (whl,) = out.glob("proto_index-*.whl")
    return whl, build.stdout + build.stderr


def test_the_build_prints_no_setuptools_warning(wheel):
    """Every setup used to print ~95 lines about data folders absent from `packages`."""
    _, log = wheel
    assert "Warning" not in log, log


def test_an_editable_install_prints_no_warning(sources, tmp_path):
    """pip shows every warning the build backend emits; a package-dir mapping (cli -> proto_index.cli)
    made setuptools' editable build warn on every setup."""
    code = (
        "import sys, warnings;"
        "from setuptools import build_meta;"
        "warnings.simplefilter('always');"
        "caught = warnings.catch_warnings(record=True);"
        "seen = caught.__enter__();"
        "name = build_meta.build_editable(sys.argv[1]);"
        "caught.__exit__(None, None, None);"
        "print(name);"
        "[print('WARNING', w.category.__name__, w.message) for w in seen]"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=sources, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "WARNING" not in out.stdout, out.stdout
    (whl,) = tmp_path.glob("proto_index-*.editable-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    pth = next(n for n in names if n.endswith(".pth"))
    assert zipfile.ZipFile(whl).read(pth).decode().strip() == str(sources.resolve())


def test_wheel_maps_cli_and_migrations_into_the_package(wheel):
    wheel, _ = wheel
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"proto_index"}, f"unexpected top-level entries: {tops}"
    for required in (
        "proto_index/cli/app.py",
        "proto_index/migrations/env.py",
        "proto_index/migrations/script.py.mako",
        "proto_index/migrations/versions/0001_initial.py",
        "proto_index/migrations/versions/0002_environment_tau.py",
        "proto_index/outputs/report/assets/report.js",
        "proto_index/outputs/report/assets/report.css",
        "proto_index/service/static/index.html",
        "proto_index/service/static/app.js",
        "proto_index/service/static/app.css",
        "proto_index/service/routes/search.py",
        "proto_index/migrations/versions/0004_annotations.py",
        "proto_index/embed/data/clap-tiny-demo.safetensors",
        "proto_index/embed/data/clap-tiny-fair.safetensors",
        "proto_index/embed/data/known-states.json",
    ):
        assert required in names
    # every module of the source tree ships (a package missing from pyproject's list would not)
    for module in (ROOT / "proto_index").rglob("*.py"):
        assert f"proto_index/{module.relative_to(ROOT / 'proto_index').as_posix()}" in names, module
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "proto-index = proto_index.cli.app:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_runs_the_cli_and_its_migrations(wheel, tmp_path):
    wheel, _ = wheel
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import proto_index, proto_index.cli.app as app, sys;"
        "from proto_index.store import catalog;"
        "from pathlib import Path;"
        f"assert proto_index.__file__.startswith({str(target)!r}), proto_index.__file__;"
        "e = catalog.create_catalog_engine(Path(sys.argv[1]));"
        "catalog.upgrade(e);"
        "print(catalog.current_revision(e), catalog.head_revision())"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c.sqlite")], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    rev, head = out.stdout.split()
    assert rev == head and rev != "None"
    help_out = subprocess.run(
        [sys.executable, "-m", "proto_index.cli.app", "--help"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert help_out.returncode == 0 and "classify" in help_out.stdout


def test_import_is_light_and_offline():
    code = (
        "import sys, proto_index;"
        "heavy = [m for m in ('torch', 'laion_clap', 'transformers', 'faiss', 'librosa') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_an_unmarked_test_cannot_build_a_real_tower():
    """The `slow` marker means something: conftest refuses a tower build outside a slow test."""
    from proto_index.embed.registry import load_encoder

    with pytest.raises(pytest.fail.Exception, match="mark it @pytest.mark.slow"):
        load_encoder("clap-tiny-random", device="cpu")
