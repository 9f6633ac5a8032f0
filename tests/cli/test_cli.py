"""Every command through the real Typer app, on generated audio and the fake encoder."""
import csv
from pathlib import Path

import pytest
from audio_factory import corrupt_header, text_as_wav, zero_length
from conftest import BACKGROUNDS, CLASS_FREQS, write
from typer.main import get_command
from typer.testing import CliRunner

from proto_index.cli.app import app

runner = CliRunner()


def run(*args, code=0, env=None):
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"
    return result


def all_commands(cmd, path=()):
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            yield from all_commands(sub, path + (name,))


def test_every_command_has_help_with_an_example():
    for path, cmd in all_commands(get_command(app)):
        out = run(*path, "--help").stdout
        assert "Usage" in out
        if not hasattr(cmd, "commands"):
            assert "Example" in out, f"{' '.join(path)} --help has no example"


@pytest.fixture
def store(tmp_path, corpus_dir):
    path = tmp_path / "store"
    run("init", "--store", path, "--model", "fake-bands")
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_main_job_end_to_end(tmp_path, store, corpus_dir, background_dir):
    out = run("ingest", corpus_dir, "--store", store, "--quiet").stdout
    assert "added 24 files (24 windows), skipped 0 already stored, 0 failed" in out
    assert "skipped 24 already stored" in run("ingest", corpus_dir, "--store", store).stdout

    labels = tmp_path / "labels.txt"
    labels.write_text("# urban sounds\nsiren\ndog bark\n\ndrilling\nbird song\n")
    assert "class set urban: 4 labels" in run("classes", "add", "urban", "--labels-file", labels, "--store", store).stdout
    assert "urban\t4 labels\tsiren, dog bark, drilling, bird song" in run("classes", "list", "--store", store).stdout

    run("prototypes", "build", "urban", "--method", "zero-shot", "--store", store)
    assert "urban-tgap6: tgap" in run("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--store", store).stdout
    listing = run("prototypes", "list", "--store", store).stdout
    assert "urban-tgap6\ttgap\tN=6\turban\t4 classes" in listing and "urban-zero-shot\tzero-shot\t-" in listing
    shown = run("prototypes", "show", "urban-tgap6", "--top", "3", "--store", store).stdout
    assert 'siren\t"This is a sound of siren"' in shown
    assert shown.count("siren_") == 3 and "... 3 more" in shown

    assert "3 background recordings" in run(
        "env", "add", "airport", "--text", "airport", "--audio", background_dir / "airport", "--store", store
    ).stdout
    run("env", "add", "park", "--tau-text", "0.25", "--store", store)
    envs = run("env", "list", "--store", store).stdout
    assert 'airport: 3 background recordings, text "airport"' in envs and "park: text \"park\", tau text=0.25" in envs

    hits = run("search", "siren", "-k", "3", "--store", store).stdout.strip().splitlines()
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
    out = run("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--out", result_csv, "--all-scores", "--store", store, "-q").stdout
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

    run("classify", archive / "a.wav", "-p", "urban-zero-shot", "--env", "airport", "--adapt", "none", "--out", result_csv, "--store", store)
    (row,) = read_csv(result_csv)
    assert (row["adaptation"], row["tau"], row["label"]) == ("none", "0.000000", "dog bark")

    info = run("info", "--store", store).stdout
    assert "24 recordings, 24 windows" in info and "urban-tgap6: tgap, N=6, 4 classes from urban" in info


def test_store_from_environment_variable(tmp_path, corpus_dir):
    env = {"PROTO_INDEX_STORE": str(tmp_path / "via-env")}
    run("init", "--model", "fake-bands", env=env)
    assert "added 24 files" in run("ingest", corpus_dir, "-q", env=env).stdout
    assert (tmp_path / "via-env" / "catalog.sqlite").exists()


def test_ingest_reports_each_bad_file_and_exits_3(tmp_path, store):
    folder = tmp_path / "mixed"
    write(folder / "ok.wav", [(700.0, 0.5)])
    corrupt_header(folder / "header.wav")
    zero_length(folder / "zero.wav")
    text_as_wav(folder / "text.wav")
    result = run("ingest", folder, "--store", store, code=3)
    assert "added 1 files (1 windows), skipped 0 already stored, 3 failed" in result.stdout
    for name in ("header.wav", "zero.wav", "text.wav"):
        lines = [ln for ln in result.stderr.splitlines() if name in ln]
        assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "failed files: 3" in run("info", "--store", store).stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["-p", "nope", "--env", "park"], "no prototype set named 'nope'"),
        (["-p", "urban-zero-shot", "--env", "beach"], "unknown environment(s): beach (known: park)"),
        (["-p", "urban-zero-shot"], "give exactly one of --env NAME (with PATHs) or --manifest CSV"),
        (["-p", "urban-zero-shot", "--env", "park", "--adapt", "audio"], "environment 'park': no background recordings"),
    ],
)
def test_classify_errors_are_one_line_before_any_work(tmp_path, store, args, message):
    run("classes", "add", "urban", "-l", "siren", "-l", "drilling", "--store", store)
    run("prototypes", "build", "urban", "--store", store)
    run("env", "add", "park", "--store", store)
    clip = write(tmp_path / "x.wav", [(700.0, 0.5)])
    out = tmp_path / "out.csv"
    usage = message.startswith("give exactly one")  # a usage error: exit 2
    result = run("classify", clip, *args, "--out", out, "--store", store, code=2 if usage else 1)
    assert result.stderr.strip().splitlines() == [f"error: {message}"] or message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not out.exists()


def test_unknown_environment_in_manifest(tmp_path, store):
    run("classes", "add", "urban", "-l", "siren", "--store", store)
    run("prototypes", "build", "urban", "--store", store)
    run("env", "add", "park", "--store", store)
    clip = write(tmp_path / "x.wav", [(700.0, 0.5)])
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,environment\n{clip.name},park\n{clip.name},harbour\n")
    result = run("classify", "-p", "urban-zero-shot", "--manifest", manifest, "-o", tmp_path / "o.csv", "--store", store, code=1)
    assert "unknown environment(s): harbour (known: park)" in result.stderr


def test_manifest_without_environment_column(tmp_path, store):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,siren\n")
    result = run("classify", "-p", "x", "--manifest", manifest, "-o", tmp_path / "o.csv", "--store", store, code=1)
    assert "missing column(s) environment" in result.stderr


def test_commands_on_a_missing_store_say_how_to_create_one(tmp_path):
    result = run("info", "--store", tmp_path / "none", code=1)
    assert "no proto-index store at" in result.stderr and "proto-index init" in result.stderr


def test_init_twice_and_unknown_model(tmp_path, store):
    assert "a store already exists" in run("init", "--store", store, "--model", "fake-bands", code=1).stderr
    result = run("init", "--store", tmp_path / "other", "--model", "clip-vit", code=1)
    assert "clip-vit" in result.stderr and "clap-fusion" in result.stderr
