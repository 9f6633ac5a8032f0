"""Every command through the real Typer app, on generated audio and the fake encoder."""
from pathlib import Path

import pytest
from audio_factory import corrupt_header, text_as_wav, zero_length
from cli_store import cli, read_csv
from conftest import BACKGROUNDS, CLASS_FREQS, write
from typer.main import get_command

from proto_index.cli.app import app


def all_commands(cmd, path=()):
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from all_commands(sub, path + (name,))


def test_every_command_has_help_with_an_example():
    for path, cmd in all_commands(get_command(app)):
        out = cli(*path, "--help").stdout
        assert "Usage" in out
        if not hasattr(cmd, "commands"):
            assert "Example" in out, f"{' '.join(path)} --help has no example"


@pytest.fixture
def store(tmp_path, corpus_dir):
    path = tmp_path / "store"
    cli("init", "--store", path, "--model", "fake-bands")
    return path


def test_main_job_end_to_end(tmp_path, store, corpus_dir, background_dir):
    out = cli("ingest", corpus_dir, "--store", store, "--quiet").stdout
    assert "added 24 files (24 windows), skipped 0 already stored, 0 failed" in out
    assert "skipped 24 already stored" in cli("ingest", corpus_dir, "--store", store).stdout

    labels = tmp_path / "labels.txt"
    labels.write_text("# urban sounds\nsiren\ndog bark\n\ndrilling\nbird song\n")
    assert "class set urban: 4 labels" in cli("classes", "add", "urban", "--labels-file", labels, "--store", store).stdout
    assert "urban\t4 labels\tsiren, dog bark, drilling, bird song" in cli("classes", "list", "--store", store).stdout

    cli("prototypes", "build", "urban", "--method", "zero-shot", "--store", store)
    assert "urban-tgap6: tgap" in cli("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--store", store).stdout
    listing = cli("prototypes", "list", "--store", store).stdout
    assert "urban-tgap6\ttgap\tN=6\turban\t4 classes" in listing and "urban-zero-shot\tzero-shot\t-" in listing
    shown = cli("prototypes", "show", "urban-tgap6", "--top", "3", "--store", store).stdout
    assert 'siren\t"This is a sound of siren"' in shown
    assert shown.count("siren_") == 3 and "... 3 more" in shown

    assert "3 background recordings" in cli(
        "env", "add", "airport", "--text", "airport", "--audio", background_dir / "airport", "--store", store
    ).stdout
    cli("env", "add", "park", "--tau-text", "0.25", "--store", store)
    envs = cli("env", "list", "--store", store).stdout
    assert 'airport: 3 background recordings, text "airport"' in envs and "park: text \"park\", tau text=0.25" in envs

    hits = cli("search", "siren", "-k", "3", "--store", store).stdout.strip().splitlines()
    assert len(hits) == 3 and all("siren_" in h for h in hits)

    archive = tmp_path / "archive"
    clips = {
        "a.wav": ("siren", "airport"),
        "b.wav": ("drilling", "park"),
        "sub/c.wav": ("bird song", "airport"),
    }
    for name, (label, env) in clips.items():
        write(archive / name, [(CLASS_FREQS[label], 0.2)] + BACKGROUNDS[env], seconds=2.5)
    manifest = archive / "manifest.csv"
    manifest.write_text("path,environment,note\n" + "".join(f"{n},{e},x\n" for n, (_, e) in clips.items()))
    result_csv = tmp_path / "out.csv"
    out = cli("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--out", result_csv, "--all-scores", "--store", store, "-q").stdout
    assert "classified 3 files, 0 failed" in out
    rows = read_csv(result_csv)
    assert list(rows[0]) == ["path", "environment", "prototypes", "adaptation", "tau", "label", "score", "margin", "error",
                             "siren", "dog bark", "drilling", "bird song"]
    assert [(Path(r["path"]).name, r["environment"], r["adaptation"], r["tau"], r["label"]) for r in rows] == [
        ("a.wav", "airport", "audio", "0.700000", "siren"),
        ("b.wav", "park", "text", "0.250000", "drilling"),
        ("c.wav", "airport", "audio", "0.700000", "bird song"),
    ]
    for r in rows:
        scores = [float(r[k]) for k in CLASS_FREQS]
        assert float(r["score"]) == pytest.approx(max(scores), abs=1e-6)
        assert float(r["margin"]) == pytest.approx(sorted(scores)[-1] - sorted(scores)[-2], abs=2e-6)

    cli("classify", archive / "a.wav", "-p", "urban-zero-shot", "--env", "airport", "--adapt", "none", "--out", result_csv, "--store", store)
    (row,) = read_csv(result_csv)
    assert (row["adaptation"], row["tau"], row["label"]) == ("none", "0.000000", "dog bark")

    info = cli("info", "--store", store).stdout
    assert "24 recordings, 24 windows" in info and "urban-tgap6: tgap, N=6, 4 classes from urban" in info


def test_store_from_environment_variable(tmp_path, corpus_dir):
    env = {"PROTO_INDEX_STORE": str(tmp_path / "via-env")}
    cli("init", "--model", "fake-bands", env=env)
    assert "added 24 files" in cli("ingest", corpus_dir, "-q", env=env).stdout
    assert (tmp_path / "via-env" / "catalog.sqlite").exists()


def test_ingest_reports_each_bad_file_and_exits_3(tmp_path, store):
    folder = tmp_path / "mixed"
    write(folder / "ok.wav", [(700.0, 0.5)])
    corrupt_header(folder / "header.wav")
    zero_length(folder / "zero.wav")
    text_as_wav(folder / "text.wav")
    result = cli("ingest", folder, "--store", store, code=3)
    assert "added 1 files (1 windows), skipped 0 already stored, 3 failed" in result.stdout
    for name in ("header.wav", "zero.wav", "text.wav"):
        lines = [ln for ln in result.stderr.splitlines() if name in ln]
        assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "failed files: 3" in cli("info", "--store", store).stdout


def test_adapt_audio_without_background_recordings_is_one_line(tmp_path, store):
    cli("classes", "add", "urban", "-l", "siren", "-l", "drilling", "--store", store)
    cli("prototypes", "build", "urban", "--store", store)
    cli("env", "add", "park", "--store", store)
    clip = write(tmp_path / "x.wav", [(700.0, 0.5)])
    out = tmp_path / "out.csv"
    result = cli("classify", clip, "-p", "urban-zero-shot", "--env", "park", "--adapt", "audio", "--out", out,
                 "--store", store, code=1)
    assert result.stderr.strip().splitlines() == [
        "error: environment 'park': no background recordings (add some with `proto-index env add NAME --audio PATH`)"]
    assert not out.exists()


def test_manifest_without_environment_column(tmp_path, store):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,siren\n")
    result = cli("classify", "-p", "x", "--manifest", manifest, "-o", tmp_path / "o.csv", "--store", store, code=1)
    assert "missing column(s) environment" in result.stderr


def test_commands_on_a_missing_store_say_how_to_create_one(tmp_path):
    result = cli("info", "--store", tmp_path / "none", code=1)
    assert "no proto-index store at" in result.stderr and "proto-index init" in result.stderr


def test_init_twice_and_unknown_model(tmp_path, store):
    assert "a store already exists" in cli("init", "--store", store, "--model", "fake-bands", code=1).stderr
    result = cli("init", "--store", tmp_path / "other", "--model", "clip-vit", code=1)
    assert "clip-vit" in result.stderr and "clap-fusion" in result.stderr
