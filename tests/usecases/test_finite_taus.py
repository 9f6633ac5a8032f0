"""A tau is finite wherever it enters: env add, the Python API, a calibration grid, and a store written
before taus were checked (issue "Tried as a hostile user would, again")."""
from __future__ import annotations

import csv

import pytest
from cli_store import cli, store_with_prototypes
from fakes import BandEncoder

from proto_index import Store
from proto_index.errors import InvalidInput
from proto_index.options import CalibrateOptions, EnvironmentOptions

LABELS = ["siren", "dog bark", "drilling", "bird song"]


@pytest.fixture
def store(urban_store):
    return urban_store  # conftest's open store: urban zero-shot prototypes, airport (audio) and park (text)


@pytest.mark.parametrize("flag, value", [("--tau-text", "inf"), ("--tau-audio", "nan"), ("--tau-text", "-inf")])
def test_env_add_refuses_a_non_finite_tau(tmp_path, corpus_dir, background_dir, flag, value):
    st = store_with_prototypes(tmp_path, corpus_dir, LABELS)
    result = cli("env", "add", "e2", "--text", "park", "--audio", background_dir / "park", flag, value,
                 "--store", st, code=2)
    assert result.stderr.strip().splitlines() == [f"error: {flag} must be a finite number, not {float(value)!r}"]
    assert "e2" not in cli("env", "list", "--store", st).stdout


def test_the_python_api_refuses_non_finite_taus(store):
    from proto_index import ScoringOptions

    with pytest.raises(InvalidInput, match=r"^the tau for text backgrounds must be a finite number, not inf$"):
        store.add_environment("e2", EnvironmentOptions(text="park", tau_text=float("inf")))
    with pytest.raises(InvalidInput, match=r"^the tau for audio backgrounds must be a finite number, not nan$"):
        store.set_environment_tau("airport", audio=float("nan"))
    with pytest.raises(InvalidInput, match=r"^tau must be a finite number, not nan$"):
        ScoringOptions(tau=float("nan"))
    assert [e.name for e in store.environments()] == ["airport", "park"]
    assert store.environment("airport").tau_audio is None


def test_calibration_refuses_a_non_finite_grid_before_embedding(store, tmp_path, monkeypatch):
    manifest = tmp_path / "cal.csv"
    manifest.write_text("path,environment,label\n")
    from proto_index.usecases import classify as classify_module

    monkeypatch.setattr(classify_module, "file_windows", lambda *a, **k: pytest.fail("embedded before the grid was checked"))
    for call in (lambda: store.calibrate(manifest, CalibrateOptions("urban-zero-shot", grid=(0.1, float("inf")))),
                 lambda: store.calibrate_from_annotations(CalibrateOptions("urban-zero-shot", grid=(float("nan"),)))):
        with pytest.raises(InvalidInput, match=r"^tau grid: a tau grid needs at least one value, and only finite ones$"):
            call()


def test_a_non_finite_tau_already_in_the_catalog_is_refused_at_classify(tmp_path, corpus_dir):
    import sqlite3

    st = store_with_prototypes(tmp_path, corpus_dir, LABELS)
    cli("env", "add", "e2", "--text", "park", "--store", st)
    with sqlite3.connect(st / "catalog.sqlite") as db:  # as a store written before taus were checked holds it
        db.execute("UPDATE environments SET tau_text = ? WHERE name = 'e2'", (float("inf"),))
    clip = sorted(corpus_dir.iterdir())[0]
    out = tmp_path / "labels.csv"
    result = cli("classify", "-p", "urban-zero-shot", "--env", "e2", clip, "--store", st, "--out", out, "-q", code=1)
    assert result.stderr.strip().splitlines() == [
        "error: environment 'e2': its stored tau for text backgrounds must be a finite number, not inf; redefine "
        "the environment with a finite one with `proto-index env add`, or give the run a tau (use --replace)"]
    assert "RuntimeWarning" not in result.output
    assert not out.exists()
    cli("classify", "-p", "urban-zero-shot", "--env", "e2", clip, "--tau", "0.2", "--store", st, "--out", out, "-q")
    row = next(csv.DictReader(open(out, encoding="utf-8")))
    assert row["tau"] == "0.200000" and float(row["score"]) > -1 and row["margin"] != ""
