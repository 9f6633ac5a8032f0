"""The audio experiment's work folder (proto_index.evaluation.audio_run): environment names from a CSV
never become paths, and a run deletes only the files it wrote."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from proto_index.evaluation.audio_run import audio_experiment


class _Embedder:
    """Zero vectors; records what it was asked to embed (the scene files must exist at that time)."""

    def __init__(self):
        self.seen: list[Path] = []

    def embed_audio(self, paths):
        assert all(Path(p).is_file() for p in paths)
        self.seen += [Path(p) for p in paths]
        return np.zeros((len(paths), 4), dtype=np.float32)

    def embed_text(self, texts):
        return np.zeros((len(texts), 4), dtype=np.float32)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _foreground_csv(tmp_path):
    """Three one-second clips of two classes in tmp_path/fg, listed with folds in tmp_path/fg.csv."""
    fg_rows = []
    for label, freq in (("siren", 700.0), ("dog bark", 1500.0)):
        for i in range(3):
            p = write(tmp_path / "fg" / f"{label}_{i}.wav", [(freq, 0.5)], seconds=1.0, seed=i)
            fg_rows.append([str(p), label, i + 1])
    fg_csv = tmp_path / "fg.csv"
    with open(fg_csv, "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "fold"], *fg_rows])
    return fg_csv


@pytest.mark.parametrize("env", ["ABS", "..", "../x", "../../victim", "a/../../victim", "*?<>|:"])
def test_evaluate_environment_names_never_become_paths(tmp_path, env):
    """An environment named as an absolute path or with ``..`` touches nothing outside the work
    folder, and the run deletes only the scene and segment files it wrote."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "keep.txt").write_text("precious")
    (victim / "sub" / "also.txt").write_text("precious too")
    env = str(victim) if env == "ABS" else env
    fg_csv = _foreground_csv(tmp_path)
    bg = write(tmp_path / "bg" / "b.wav", [(150.0, 0.5)], seconds=1.0)
    bg_csv = tmp_path / "bg.csv"
    with open(bg_csv, "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "environment"], [str(bg), env]])
    work = tmp_path / "out" / "work"
    work.mkdir(parents=True)
    (work / "mine.txt").write_text("the user's file in the work folder")
    before_victim, before_work = _tree(victim), _tree(work)

    embedder = _Embedder()
    result = audio_experiment(embedder.embed_audio, embedder.embed_text, "m", fg_csv, bg_csv, [0.0], work)

    assert [c.environment for c in result.data.conditions] == [env]
    assert _tree(victim) == before_victim and (victim / "sub").is_dir()
    assert all(work in p.parents for p in embedder.seen)  # every scene was written inside the work folder
    after = _tree(work)
    assert after.pop("mine.txt") == before_work["mine.txt"]
    assert all(k.startswith("embeddings/") for k in after)  # only the cached embeddings stay
    assert sorted(p.name for p in work.iterdir()) == ["embeddings", "mine.txt"]  # created folders removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bg", "bg.csv", "fg", "fg.csv", "out", "victim"]


def test_evaluate_keeps_a_folder_it_did_not_create(tmp_path):
    """A scenes folder that already held the user's files is emptied of the run's files only."""
    fg_csv = _foreground_csv(tmp_path)
    bg_dir = tmp_path / "bgs"
    write(bg_dir / "park" / "b.wav", [(150.0, 0.5)], seconds=1.0)
    work = tmp_path / "work"
    (work / "scenes").mkdir(parents=True)
    (work / "scenes" / "notes.txt").write_text("x")
    embedder = _Embedder()
    audio_experiment(embedder.embed_audio, embedder.embed_text, "m", fg_csv, bg_dir, [0.0, 6.0], work)
    assert sorted(p.name for p in (work / "scenes").iterdir()) == ["notes.txt"]
    assert not (work / "backgrounds").exists()
