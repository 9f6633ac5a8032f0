"""Batch classification of an archive: profiles against a prototype set, minus each environment's background."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from sqlalchemy import select

from proto_index.core.adaptation import resolve_adaptation, resolve_tau
from proto_index.core.decision import decide
from proto_index.core.profiles import background_profile, refine, similarity_profiles
from proto_index.core.tau import DEFAULT_AUTO_RULE, auto_tau
from proto_index.core.drift import DEFAULT_NOISE_PHRASES, ENVIRONMENT_PHRASES, conditioned_prompts, drift_directions, drift_profiles
from proto_index.core.prototypes import render_prompts
from proto_index.core.transductive import TransductiveOptions, prior_from_profiles, transduce
from proto_index.embed.encoder import Encoder
from proto_index.errors import REPLACE, AudioDecodeError, Hint, InvalidInput, NotFound
from proto_index.store.views import (
    EnvironmentView,
    PrototypeSetView,
    environment_view,
    get_class_set,
    get_environment,
    prototype_set_view,
)
from proto_index.options import EmbedOptions, ScoringOptions
from proto_index.engine.embedding import FailedFile, SkippedFile
from proto_index.engine.executors import local_embedder
from proto_index.engine.model import LazyEncoder
from proto_index.usecases.preflight import classify_inputs
from proto_index.progress import Progress, SilentProgress
from proto_index.store.knn import neighbour_graph
from proto_index.store.schema import Recording, Window
from proto_index.store.storage import Storage

OUTPUT_COLUMNS = ("path", "environment", "prototypes", "adaptation", "tau", "label", "score", "margin", "error")
WINDOW_COLUMNS = ("start_s", "end_s")
"""With ``per_window``, these follow ``path``: the window's [start, end) in seconds."""


@dataclass
class ClassifiedFile:
    """One input's outcome. ``scores`` holds the refined profile Pf (one value per class).

    Per window (``ScoringOptions(per_window=True)``), one per window, with its ``start_s``/``end_s``.
    """

    path: Path
    environment: str
    adaptation: str
    tau: float
    label: str | None = None
    score: float | None = None
    margin: float | None = None
    scores: np.ndarray | None = None
    error: str | None = None
    start_s: float | None = None
    end_s: float | None = None


@dataclass
class Classification:
    labels: list[str]
    files: list[ClassifiedFile]
    per_window: bool = False
    prototypes: str = ""  # the prototype set's name

    @property
    def failed(self) -> list[ClassifiedFile]:
        return [f for f in self.files if f.error is not None]


@dataclass
class FileWindows:
    """A file's window vectors ``(w, d)`` with each window's [start, end) in seconds."""

    starts_s: list[float]
    ends_s: list[float]
    vectors: np.ndarray


def file_windows(
    storage: Storage, encoder: Encoder | None, paths: Sequence[Path], *, options: EmbedOptions = EmbedOptions(),
    progress: Progress | None = None, embed=None,
) -> dict[Path, FileWindows | str]:
    """Each file's window vectors, or the reason it failed.

    Each file is read once, by the embedding workers, which also hash it: files already in the
    corpus (same content hash) reuse their stored windows (whatever hop they were ingested with)
    and are not decoded; the others are embedded as ``options`` say. An input
    whose content repeats an earlier input's gets that input's result. ``embed``: where the files
    are embedded (:mod:`proto_index.engine.executors`; default: here, with ``encoder``).
    """
    progress = progress or SilentProgress()
    progress.start(len(paths), "embedding")
    with storage.session() as s:
        stored = set(s.scalars(select(Recording.sha256)))
    out: dict[Path, FileWindows | str] = {}
    embedded_as: dict[str, Path] = {}  # content hash -> the input embedded for it in this call
    if embed is None:
        if encoder is None:
            raise ValueError("embedding needs an encoder here, or an embed function")
        embed = local_embedder(encoder)
    results = embed(paths, options=options, known_hashes=stored, on_windows=getattr(progress, "add_windows", None))
    for result in results:
        progress.advance()
        if isinstance(result, FailedFile):
            out[result.path] = result.error
            progress.note(f"{result.path}: {result.error}")
        elif isinstance(result, SkippedFile):
            if result.sha256 in stored:
                out[result.path] = _stored_windows(storage, result.sha256)
            elif result.sha256 in embedded_as:
                out[result.path] = out[embedded_as[result.sha256]]
            else:
                out[result.path] = "same content as an earlier input that could not be read"
        else:
            out[result.path] = FileWindows(result.starts_s, result.ends_s, result.vectors)
            embedded_as[result.sha256] = result.path
    return out


def _stored_windows(storage: Storage, sha256: str) -> FileWindows:
    with storage.session() as s:
        rows = s.execute(
            select(Window.vector_row, Window.start_s, Window.end_s)
            .join(Recording)
            .where(Recording.sha256 == sha256)
            .order_by(Window.start_s)
        ).all()
    vectors = storage.vectors.read([r for r, _, _ in rows])
    return FileWindows([a for _, a, _ in rows], [b for _, _, b in rows], np.asarray(vectors, np.float32))


def file_vectors(
    storage: Storage, encoder: Encoder | None, paths: Sequence[Path], *, options: EmbedOptions = EmbedOptions(),
    progress: Progress | None = None, embed=None,
) -> dict[Path, np.ndarray | str]:
    """Each file's vector, the mean of its window embeddings (see :func:`file_windows`), or why it failed."""
    windows = file_windows(storage, encoder, paths, options=options, progress=progress, embed=embed)
    return {p: w if isinstance(w, str) else w.vectors.mean(axis=0) for p, w in windows.items()}


def embed_audio(storage: Storage, encoder: Encoder, paths: Sequence[str | Path]) -> np.ndarray:
    """One float32 vector per file (mean of its 10 s window embeddings); :class:`AudioDecodeError`
    naming every file that cannot be decoded."""
    files = [Path(p).absolute() for p in paths]
    vecs = file_vectors(storage, encoder, files)
    bad = [f"{p}: {v}" for p, v in vecs.items() if isinstance(v, str)]
    if bad:
        raise AudioDecodeError("; ".join(bad))
    return np.stack([v for v in (vecs[p] for p in files) if not isinstance(v, str)]).astype(np.float32)


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def classify(
    storage: Storage,
    model: LazyEncoder,
    items: Sequence[tuple[Path, str]],
    prototypes: str,
    *,
    scoring: ScoringOptions = ScoringOptions(),
    options: EmbedOptions = EmbedOptions(),
    progress: Progress | None = None,
    embed=None,
) -> Classification:
    """Classify ``(path, environment)`` pairs with Pf = Ps - tau * Pb and argmax.

    One result per pair, whose clip vector is the mean of the file's window embeddings (files
    embedded as ``options`` say: 10 s windows every ``options.hop_s`` seconds); with
    ``scoring.per_window``, one result per window instead (with its start and end), each window
    classified on its own vector.

    ``scoring`` (:class:`~proto_index.options.ScoringOptions`): the adaptation; tau, a number for
    every environment, None for each environment's own (else the default), or ``"auto"`` /
    ``"auto-clip"``: a label-free rule (:data:`proto_index.core.tau.TAU_KEYWORDS`) estimates it from
    the profiles, per environment over this run's clips, or per clip; the prototype norm.

    Unknown prototype sets or environments, unavailable adaptations and missing files are all
    reported before ``model`` loads and any embedding work starts. ``embed``: where files are embedded
    (:mod:`proto_index.engine.executors`; default: here, with ``model``, which then loads only for
    ``scoring.drift``'s prompts).
    """
    items = [(Path(p).absolute(), env) for p, env in items]
    if not items:
        raise InvalidInput("nothing to classify")
    protos, plans, auto_rule, sources = prepare(storage, prototypes, [env for _, env in items], scoring)
    check_inputs([p for p, _ in items])
    drift = None
    if scoring.drift:  # the text tower's work, before any audio is embedded
        drift = drift_setup(storage, model, protos, sorted(plans))
        plans = _drift_backgrounds(plans, sources, protos, drift, scoring)
    encoder = None
    if embed is None:
        encoder = model.get()
        storage.check_identity(encoder.identity)

    unique = list(dict.fromkeys(p for p, _ in items))
    per_window, prototype_norm = scoring.per_window, scoring.prototype_norm
    if per_window:
        windows = file_windows(storage, encoder, unique, options=options, progress=progress, embed=embed)
        items, spans, row_vectors = _window_rows(items, windows)
    else:
        vectors = file_vectors(storage, encoder, unique, options=options, progress=progress, embed=embed)
        spans = [(None, None)] * len(items)
        row_vectors = [vectors[path] for path, _ in items]
    profiles = {
        i: similarity_profiles(row_vectors[i], protos.matrix, prototype_norm)
        for i in range(len(items))
        if not isinstance(row_vectors[i], str)
    }
    if drift is not None:
        anchors, directions = drift
        profiles = {i: drift_profiles(ps, row_vectors[i], anchors, directions[items[i][1]], scoring.drift_weight)
                    for i, ps in profiles.items()}
    taus = _taus(items, profiles, plans, auto_rule)
    refined = {i: refine(ps, plans[items[i][1]][2], taus[i]) for i, ps in profiles.items()}
    if scoring.transductive:
        refined = _transduce(items, row_vectors, refined)
    results = []
    for i, (path, env) in enumerate(items):
        adaptation, fixed_tau, _ = plans[env]
        # a file that failed has no profile: it shows its environment's tau, or none under auto
        entry = ClassifiedFile(path, env, adaptation, taus.get(i, float("nan") if fixed_tau is None else fixed_tau))
        entry.start_s, entry.end_s = spans[i]
        if i not in profiles:
            entry.error = row_vectors[i]
        else:
            pf = refined[i]
            d = decide(pf[None, :])
            entry.label = protos.labels[int(d.winners[0])]
            entry.score, entry.margin, entry.scores = float(d.scores[0]), float(d.margins[0]), pf
        results.append(entry)
    return Classification(protos.labels, results, per_window, prototypes)


def _transduce(items, row_vectors, refined: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Each environment's refined profiles replaced by its clips' class probabilities after
    transductive EM over those clips (:func:`proto_index.core.transductive.transduce`)."""
    options = TransductiveOptions()
    out = dict(refined)
    for env in dict.fromkeys(e for _, e in items):
        rows = [i for i, (_, e) in enumerate(items) if e == env and i in refined]
        if not rows:
            continue
        vectors = np.stack([row_vectors[i] for i in rows])
        prior = prior_from_profiles(np.stack([refined[i] for i in rows]), options.temperature)
        z = transduce(vectors, prior, neighbour_graph(vectors, options.neighbours), options).assignments
        out.update(zip(rows, z))
    return out


def drift_phrases(env: EnvironmentView) -> list[str]:
    """The noise phrases of an environment: from its text description, else the generic ones."""
    if env.description and env.description.strip():
        bg = env.description.strip()
        return [p.replace("{bg}", bg) for p in ENVIRONMENT_PHRASES]
    return list(DEFAULT_NOISE_PHRASES)


def drift_setup(storage: Storage, model: LazyEncoder, protos: PrototypeSetView, environments: list[str]):
    """The clean text anchors ``(k, d)`` of the prototype set's class set, and each environment's
    drift directions ``(k, d)`` from its noise-conditioned prompts (:mod:`proto_index.core.drift`),
    embedded with ``model``'s text tower."""
    if not storage.identity.text:
        raise InvalidInput(f"drift-augmented scoring embeds prompts with the model's text tower, and model "
                           f"{storage.identity.name!r} has none")
    with storage.session() as s:
        template = get_class_set(s, protos.class_set).template
        envs = {n: environment_view(get_environment(s, n), storage.identity.dim) for n in sorted(set(environments))}
    prompts = render_prompts(protos.labels, template)
    phrases = {name: drift_phrases(env) for name, env in envs.items()}
    conditioned = {name: conditioned_prompts(prompts, protos.labels, p) for name, p in phrases.items()}
    texts = prompts + [t for name in envs for row in conditioned[name] for t in row]
    encoder = model.get()
    storage.check_identity(encoder.identity)
    embedded = np.asarray(encoder.embed_texts(texts), dtype=np.float64)
    k = len(prompts)
    anchors, at, directions = embedded[:k], k, {}
    for name in envs:
        size = k * len(phrases[name])
        directions[name] = drift_directions(anchors, embedded[at:at + size].reshape(k, len(phrases[name]), -1))
        at += size
    return anchors, directions


def _drift_backgrounds(plans: dict, sources: dict, protos: PrototypeSetView, drift, scoring: ScoringOptions) -> dict:
    """Each environment's background profile recomputed with the drift bonus, as the clips' are."""
    anchors, directions = drift
    out = {}
    for name, (adaptation, fixed_tau, pb) in plans.items():
        if pb is not None:
            bg = sources[name]
            pb = drift_profiles(similarity_profiles(bg, protos.matrix, scoring.prototype_norm), bg, anchors,
                                directions[name], scoring.drift_weight).mean(axis=0)
        out[name] = (adaptation, fixed_tau, pb)
    return out


def prepare(storage: Storage, prototypes: str, environments, scoring: ScoringOptions):
    """The prototype set, each environment's (adaptation, tau or None under a label-free rule,
    background profile), the label-free rule (or None), and each environment's stored background
    vectors of its adaptation (the exact bytes the profile came from; empty for none); raises for
    anything unknown or unavailable."""
    adapt, tau, prototype_norm = scoring.adapt, scoring.parsed_tau, scoring.prototype_norm
    auto_rule = tau if isinstance(tau, str) else None
    run_tau = None if isinstance(tau, str) else tau
    with storage.session() as s:
        row, names = classify_inputs(s, prototypes, environments)
        protos = prototype_set_view(s, row, with_neighbours=False)
        envs = {n: environment_view(get_environment(s, n), storage.identity.dim) for n in names}
    plans, sources = {}, {}
    for name, env in envs.items():
        try:
            adaptation = resolve_adaptation(adapt, len(env.audio_vectors) > 0, len(env.text_vectors) > 0)
        except ValueError as e:
            raise InvalidInput(f"environment {name!r}: {e}", hint=_ADD_BACKGROUND.get(adapt)) from None
        try:
            fixed_tau = None if auto_rule else resolve_tau(adaptation, run_tau, env.taus)
        except ValueError as e:
            raise InvalidInput(f"environment {name!r}: {e}; redefine the environment with a finite one with "
                               "`proto-index env add`, or give the run a tau", hint=REPLACE) from None
        plans[name] = (adaptation, fixed_tau, _background(env, adaptation, protos, prototype_norm))
        sources[name] = {"audio": env.audio_vectors, "text": env.text_vectors}.get(adaptation, np.zeros((0, 0), np.float32))
    return protos, plans, auto_rule, sources


def check_inputs(paths: Sequence[Path]) -> None:
    """Every input exists and is a regular file (NotFound / InvalidInput naming some that are not)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise NotFound(f"{len(missing)} input file(s) not found: {_some(missing)}")
    irregular = [str(p) for p in paths if not p.is_file()]
    if irregular:  # a FIFO would block the reader, a device such as /dev/zero never ends
        raise InvalidInput(f"{len(irregular)} input(s) not a regular file (a folder, FIFO, device or socket): "
                           f"{_some(irregular)}")


def _window_rows(items, windows: dict[Path, FileWindows | str]):
    """One row per window of each item (one row, the error, for a file that failed)."""
    rows: list[tuple[Path, str]] = []
    spans: list[tuple[float | None, float | None]] = []
    vectors: list[np.ndarray | str] = []
    for path, env in items:
        w = windows[path]
        if isinstance(w, str):
            rows.append((path, env))
            spans.append((None, None))
            vectors.append(w)
            continue
        for start, end, vector in zip(w.starts_s, w.ends_s, w.vectors):
            rows.append((path, env))
            spans.append((start, end))
            vectors.append(vector)
    return rows, spans, vectors


def _taus(items, profiles: dict[int, np.ndarray], plans: dict, auto_rule: str | None) -> dict[int, float]:
    """The tau each classified item uses: its environment's, or the label-free rule's estimate."""
    taus = {}
    for env, (adaptation, fixed_tau, pb) in plans.items():
        rows = [i for i, (_, e) in enumerate(items) if e == env and i in profiles]
        if not rows:
            continue
        if fixed_tau is not None or pb is None:
            values = np.full(len(rows), 0.0 if pb is None else fixed_tau)
        else:  # no fixed tau: the run names a label-free rule
            values = auto_tau(np.stack([profiles[i] for i in rows]), pb, auto_rule or DEFAULT_AUTO_RULE)
        taus.update({i: float(t) for i, t in zip(rows, values)})
    return taus


_ADD_BACKGROUND = {"audio": Hint("env_audio", "add some with {option}"), "text": Hint("env_text", "add one with {option}")}
"""The remedy when an environment lacks the background an explicit adaptation asks for."""


def _background(env: EnvironmentView, adaptation: str, protos: PrototypeSetView, prototype_norm: str = "l2") -> np.ndarray | None:
    if adaptation == "audio":
        return background_profile(env.audio_vectors, protos.matrix, prototype_norm)
    if adaptation == "text":
        return background_profile(env.text_vectors, protos.matrix, prototype_norm)
    return None
