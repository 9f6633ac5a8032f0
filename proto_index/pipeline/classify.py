"""Batch classification of an archive: profiles against a prototype set, minus each environment's background."""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import select

from proto_index.audio.discover import file_sha256
from proto_index.core.adaptation import resolve_adaptation, resolve_tau
from proto_index.core.decision import decide
from proto_index.core.profiles import background_profile, cosine_profiles, refine
from proto_index.embed.encoder import Encoder
from proto_index.errors import InvalidInput, NotFound
from proto_index.pipeline.catalog_views import (
    EnvironmentView,
    PrototypeSetView,
    environment_view,
    get_environment,
    get_prototype_set,
    prototype_set_view,
)
from proto_index.pipeline.embedding import FailedFile, embed_files
from proto_index.progress import Progress, SilentProgress
from proto_index.store.schema import Environment, Recording, Window
from proto_index.store.storage import Storage

OUTPUT_COLUMNS = ("path", "environment", "adaptation", "tau", "label", "score", "margin", "error")


@dataclass
class ClassifiedFile:
    """One input's outcome. ``scores`` holds the refined profile Pf (one value per class)."""

    path: Path
    environment: str
    adaptation: str
    tau: float
    label: str | None = None
    score: float | None = None
    margin: float | None = None
    scores: np.ndarray | None = None
    error: str | None = None


@dataclass
class Classification:
    labels: list[str]
    files: list[ClassifiedFile]

    @property
    def failed(self) -> list[ClassifiedFile]:
        return [f for f in self.files if f.error is not None]


def file_vectors(
    storage: Storage, encoder: Encoder, paths: Sequence[Path], batch_windows: int = 16, progress: Progress | None = None
) -> dict[Path, np.ndarray | str]:
    """Each file's vector (mean of its window embeddings), or the reason it failed.

    Files already in the corpus (same content hash) reuse their stored window vectors.
    """
    progress = progress or SilentProgress()
    progress.start(len(paths), "embedding")
    out: dict[Path, np.ndarray | str] = {}
    stored_rows: dict[Path, list[int]] = {}
    with storage.session() as s:
        for path in paths:
            rows = s.scalars(
                select(Window.vector_row)
                .join(Recording)
                .where(Recording.sha256 == file_sha256(path))
                .order_by(Window.start_s)
            ).all()
            if rows:
                stored_rows[path] = list(rows)
    for path, rows in stored_rows.items():
        out[path] = storage.vectors.read(rows).mean(axis=0)
        progress.advance()
    todo = [p for p in paths if p not in stored_rows]
    for result in embed_files(todo, encoder, batch_windows=batch_windows):
        progress.advance()
        if isinstance(result, FailedFile):
            out[result.path] = result.error
            progress.note(f"{result.path}: {result.error}")
        else:
            out[result.path] = result.pooled()
    return out


def classify(
    storage: Storage,
    encoder: Encoder,
    items: Sequence[tuple[Path, str]],
    prototypes: str,
    adapt: str = "auto",
    tau: float | None = None,
    batch_windows: int = 16,
    progress: Progress | None = None,
) -> Classification:
    """Classify ``(path, environment)`` pairs with Pf = Ps - tau * Pb and argmax.

    Unknown prototype sets or environments, unavailable adaptations and missing files are all
    reported before any embedding work starts.
    """
    storage.check_identity(encoder.identity)
    items = [(Path(p).absolute(), env) for p, env in items]
    if not items:
        raise InvalidInput("nothing to classify")
    with storage.session() as s:
        protos = prototype_set_view(s, get_prototype_set(s, prototypes), with_neighbours=False)
        envs = _environments(s, sorted({env for _, env in items}), storage.identity.dim)
    plans = {}
    for name, env in envs.items():
        try:
            adaptation = resolve_adaptation(adapt, len(env.audio_vectors) > 0, len(env.text_vectors) > 0)
        except ValueError as e:
            raise InvalidInput(f"environment {name!r}: {e}") from None
        plans[name] = (adaptation, resolve_tau(adaptation, tau, env.taus), _background(env, adaptation, protos))
    missing = [str(p) for p, _ in items if not p.is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise NotFound(f"{len(missing)} input file(s) not found: {shown}")

    vectors = file_vectors(storage, encoder, list(dict.fromkeys(p for p, _ in items)), batch_windows, progress)
    results = []
    for path, env in items:
        adaptation, env_tau, pb = plans[env]
        entry = ClassifiedFile(path, env, adaptation, env_tau)
        vec = vectors[path]
        if isinstance(vec, str):
            entry.error = vec
        else:
            pf = refine(cosine_profiles(vec, protos.matrix), pb, env_tau)
            d = decide(pf[None, :])
            entry.label = protos.labels[int(d.winners[0])]
            entry.score, entry.margin, entry.scores = float(d.scores[0]), float(d.margins[0]), pf
        results.append(entry)
    return Classification(protos.labels, results)


def _environments(s, names: list[str], dim: int) -> dict[str, EnvironmentView]:
    known = set(s.scalars(select(Environment.name)))
    unknown = [n for n in names if n not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or "none yet"
        raise NotFound(
            f"unknown environment(s): {', '.join(unknown)} (known: {listing}); add them with `proto-index env add`"
        )
    return {n: environment_view(get_environment(s, n), dim) for n in names}


def _background(env: EnvironmentView, adaptation: str, protos: PrototypeSetView) -> np.ndarray | None:
    if adaptation == "audio":
        return background_profile(env.audio_vectors, protos.matrix)
    if adaptation == "text":
        return background_profile(env.text_vectors, protos.matrix)
    return None


def write_csv(result: Classification, out: Path, all_scores: bool = False) -> None:
    """Write one row per input; with ``all_scores`` one more column per class (its Pf value).

    Written to a temporary file and renamed, so an interrupted run never leaves half a CSV.
    """
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    header = list(OUTPUT_COLUMNS) + (list(result.labels) if all_scores else [])
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in result.files:
            row = [r.path, r.environment, r.adaptation, _fmt(r.tau), r.label or "", _fmt(r.score), _fmt(r.margin), r.error or ""]
            if all_scores:
                row += [_fmt(v) for v in r.scores] if r.scores is not None else [""] * len(result.labels)
            w.writerow(row)
    os.replace(tmp, out)


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.6f}"
