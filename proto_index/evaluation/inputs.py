"""Reading the evaluation's inputs: labelled foregrounds (CSV) and background recordings per environment."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto_index.audio.discover import find_audio_files
from proto_index.errors import InvalidInput, NotFound
from proto_index.inputs.manifest import read_table, resolve


@dataclass(frozen=True)
class Foregrounds:
    """Labelled clips: ``labels`` (sorted class names), each clip's class index and fold."""

    paths: list[Path]
    labels: list[str]
    classes: np.ndarray  # (n,) index into labels
    folds: np.ndarray  # (n,)


def stratified_folds(classes: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Folds for clips without any: within each class, a seeded shuffle dealt round-robin."""
    if n_folds < 2:
        raise InvalidInput("need at least 2 folds")
    rng = np.random.default_rng([seed, 5])
    folds = np.empty(len(classes), dtype=np.int64)
    for c in np.unique(classes):
        rows = np.flatnonzero(classes == c)
        folds[rng.permutation(rows)] = np.arange(len(rows)) % n_folds + 1
    return folds


def read_foregrounds(path: Path, n_folds: int = 10, seed: int = 0) -> Foregrounds:
    """``path,label[,fold]`` rows (paths relative to the CSV). Without a fold column, clips are
    dealt into ``n_folds`` stratified folds (seeded)."""
    header, rows = read_table(path, ("path", "label"))
    has_fold = "fold" in header
    paths, names, folds = [], [], []
    for line, r in rows:
        if not r["path"] or not r["label"]:
            raise InvalidInput(f"{path}, line {line}: empty path or label")
        paths.append(resolve(path, r["path"]))
        names.append(r["label"])
        if has_fold:
            try:
                folds.append(int(r["fold"]))
            except ValueError:
                raise InvalidInput(f"{path}, line {line}: fold {r['fold']!r} is not an integer") from None
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise NotFound(f"{len(missing)} foreground file(s) not found, e.g. {missing[0]}")
    labels = sorted(set(names))
    if len(labels) < 2:
        raise InvalidInput(f"{path}: need at least two classes")
    classes = np.array([labels.index(n) for n in names], dtype=np.int64)
    fold_arr = np.array(folds, dtype=np.int64) if has_fold else stratified_folds(classes, n_folds, seed)
    if len(np.unique(fold_arr)) < 3:
        raise InvalidInput(f"{path}: nested cross-validation needs at least 3 folds")
    return Foregrounds(paths, labels, classes, fold_arr)


def read_backgrounds(source: Path) -> dict[str, list[Path]]:
    """Background recordings per environment: a CSV ``path,environment``, or a folder holding one
    subfolder of recordings per environment. Environments sorted by name, recordings by path."""
    source = Path(source)
    out: dict[str, list[Path]] = {}
    if source.is_dir():
        for sub in sorted(p for p in source.iterdir() if p.is_dir()):
            files = sorted(find_audio_files([sub]).files)
            if files:
                out[sub.name] = files
        if not out:
            raise InvalidInput(f"{source}: no subfolder with audio files (expected one folder per environment)")
        return out
    _, rows = read_table(source, ("path", "environment"))
    for line, r in rows:
        if not r["path"] or not r["environment"]:
            raise InvalidInput(f"{source}, line {line}: empty path or environment")
        out.setdefault(r["environment"], []).append(resolve(source, r["path"]))
    missing = [str(p) for files in out.values() for p in files if not p.is_file()]
    if missing:
        raise NotFound(f"{len(missing)} background file(s) not found, e.g. {missing[0]}")
    return {env: sorted(files) for env, files in sorted(out.items())}
