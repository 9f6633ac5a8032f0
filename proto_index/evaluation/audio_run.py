"""The experiment from audio: plan and write soundscapes, embed them with the store's model, hand the
protocol its arrays. Embeddings are cached per (environment, SNR) in the work folder, keyed by
everything that determines them, so a rerun (or a run resumed after a crash) does not embed again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from proto_index.atomic import atomic_write
from proto_index.core.adaptation import background_prompts
from proto_index.core.drift import DEFAULT_WEIGHT as DEFAULT_DRIFT_WEIGHT, ENVIRONMENT_PHRASES, conditioned_prompts
from proto_index.core.prompt_weights import DEFAULT_TEMPLATES
from proto_index.core.prototypes import DEFAULT_TEMPLATE, render_prompts
from proto_index.evaluation import mixing, soundscapes
from proto_index.evaluation.inputs import read_backgrounds, read_foregrounds
from proto_index.errors import InvalidInput
from proto_index.evaluation.protocol import Condition, ExperimentData, Settings, check_folds
from proto_index.options.evaluation import AudioOptions
from proto_index.progress import Progress, SilentProgress

if TYPE_CHECKING:
    from proto_index.engine.model import LazyEncoder
    from proto_index.store.storage import Storage


EmbedAudio = Callable[[Sequence[Path]], np.ndarray]
"""Files to one vector each, ``(n, d)``."""
EmbedText = Callable[[Sequence[str]], np.ndarray]
"""Texts to one vector each, ``(n, d)``."""


@dataclass(frozen=True)
class AudioExperiment:
    data: ExperimentData
    description: dict  # inputs and counts, for the JSON report


def _file_key(p: Path) -> list:
    st = Path(p).stat()
    return [str(Path(p).absolute()), st.st_size, st.st_mtime_ns]


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones this call created, deepest first."""
    created = []
    for d in [folder, *folder.parents]:
        if d.exists():
            break
        created.append(d)
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_created(files: Sequence[Path], dirs: Sequence[Path]) -> None:
    """Delete the files this run wrote, then the folders it created if they are now empty; nothing else."""
    for p in files:
        Path(p).unlink(missing_ok=True)
    for d in dirs:
        try:
            d.rmdir()
        except OSError:  # not empty (something else lives there) or already gone: leave it
            pass


def _cached(path: Path, compute) -> np.ndarray:
    if path.exists():
        return np.load(path)
    vectors = np.asarray(compute(), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb", durable=False) as f:  # a cache: a lost file is computed again
        np.save(f, vectors)
    return vectors


def audio_experiment(
    embed_audio: EmbedAudio,
    embed_text: EmbedText,
    model_identity: str,
    foreground_csv: Path,
    backgrounds: Path,
    snrs_db: Sequence[float],
    work_dir: Path,
    *,
    n_folds: int = 10,
    seed: int = 0,
    ref_db: float = mixing.REF_DB,
    keep_scenes: bool = False,
    batch: int = 64,
    progress: Progress | None = None,
    settings: Settings | None = None,
) -> AudioExperiment:
    """Mix, write and embed every scene (environment x SNR x clip) with ``embed_audio``, the prompts
with ``embed_text``; returns the protocol's input.

    Scene WAVs go to ``work_dir/scenes/ENV/SNRdB/`` (background segments to
    ``work_dir/backgrounds/ENV/``), ENV being :func:`~proto_index.evaluation.soundscapes.safe_name` of the environment, and are
    deleted once embedded unless ``keep_scenes`` (UrbanSound8K over two environments at three SNRs is
    ~50 GB of WAV). Only the files and folders the run itself created are ever deleted.
    With ``settings``, folds too few for them are refused before any audio work.
    """
    progress = progress or SilentProgress()
    work_dir = Path(work_dir)
    fg = read_foregrounds(Path(foreground_csv), n_folds, seed)
    if settings is not None:
        try:
            check_folds(fg.folds, settings)
        except ValueError as e:
            raise InvalidInput(f"{foreground_csv}: {e}") from None
    bgs = read_backgrounds(Path(backgrounds))
    plans = soundscapes.plan_scenes(len(fg.paths), {e: len(files) for e, files in bgs.items()}, seed)
    fg_keys = [_file_key(p) for p in fg.paths]

    prompts = render_prompts(fg.labels, DEFAULT_TEMPLATE)
    anchors = embed_text(prompts)
    k = len(fg.labels)
    templates = np.stack([np.asarray(anchors)] + [  # DEFAULT_TEMPLATES[0] is DEFAULT_TEMPLATE
        np.asarray(embed_text(render_prompts(fg.labels, t))) for t in DEFAULT_TEMPLATES[1:]])
    conditioned = {}
    for env in bgs:
        phrases = [p.replace("{bg}", env.replace("_", " ")) for p in ENVIRONMENT_PHRASES]
        texts = [t for row in conditioned_prompts(prompts, fg.labels, phrases) for t in row]
        conditioned[env] = np.asarray(embed_text(texts)).reshape(k, len(phrases), -1)
    text_bg = {env: embed_text(background_prompts(env.replace("_", " "))) for env in bgs}
    audio_bg = {}
    for env, files in bgs.items():
        key = _digest([model_identity, ref_db, [_file_key(p) for p in files]])

        def embed_segments(env=env, files=files):
            seg_dir = work_dir / "backgrounds" / soundscapes.safe_name(env)
            created = _make_dirs(seg_dir)
            written = soundscapes.write_background_segments(files, seg_dir, ref_db)
            vectors = embed_audio(written)
            if not keep_scenes:
                _remove_created(written, created)
            return vectors

        audio_bg[env] = _cached(work_dir / "embeddings" / f"backgrounds-{soundscapes.safe_name(env)}-{key}.npy",
                                embed_segments)

    conditions = []
    total = len(bgs) * len(snrs_db) * len(fg.paths)
    progress.start(total, "scenes")
    for env, env_plans in plans.items():
        for snr in snrs_db:
            key = _digest([model_identity, ref_db, float(snr), fg_keys, [_file_key(p) for p in bgs[env]],
                           [(p.foreground, p.background, p.onset_s) for p in env_plans]])  # fmt: skip
            folder = work_dir / "scenes" / soundscapes.safe_name(env) / f"{snr:g}dB"

            def embed_scenes(env=env, env_plans=env_plans, snr=snr, folder=folder):
                created = _make_dirs(folder)
                parts = []
                for i in range(0, len(env_plans), batch):
                    paths = soundscapes.write_scenes(env_plans[i : i + batch], snr, fg.paths, bgs[env], folder, ref_db)
                    parts.append(embed_audio(paths))
                    if not keep_scenes:
                        _remove_created(paths, [])
                    progress.advance(len(paths))
                if not keep_scenes:
                    _remove_created([], created)
                return np.concatenate(parts)

            path = work_dir / "embeddings" / f"scenes-{soundscapes.safe_name(env)}-{snr:g}dB-{key}.npy"
            if path.exists():
                progress.advance(len(env_plans))
            vectors = _cached(path, embed_scenes)
            bg_index = np.array([p.background for p in env_plans], dtype=np.int64)
            conditions.append(Condition(env, float(snr), vectors, fg.classes, fg.folds, bg_index))

    data = ExperimentData(fg.labels, np.asarray(anchors), text_bg, audio_bg, conditions, templates, conditioned)
    description = {
        "foreground_csv": str(Path(foreground_csv).absolute()),
        "backgrounds": str(Path(backgrounds).absolute()),
        "clips": len(fg.paths),
        "labels": fg.labels,
        "folds": sorted(int(f) for f in np.unique(fg.folds)),
        "background_recordings": {e: len(f) for e, f in bgs.items()},
        "scene_seconds": mixing.SCENE_SECONDS,
        "max_event_seconds": mixing.MAX_EVENT_SECONDS,
        "onset_truncated_normal": list(soundscapes.ONSET),
        "ref_db_lufs": ref_db,
        "snr_definition": "LUFS(event) - LUFS(background), BS.1770 integrated loudness via pyloudnorm (scaper's definition)",
        "work_dir": str(work_dir.absolute()),
        "ensemble_templates": list(DEFAULT_TEMPLATES),
        "drift_phrases": list(ENVIRONMENT_PHRASES),
        "drift_weight": DEFAULT_DRIFT_WEIGHT,
    }
    return AudioExperiment(data, description)


def evaluate_audio(storage: "Storage", model: "LazyEncoder", audio: AudioOptions, settings: Settings | None, *,
                   snrs_db: tuple, n_folds: int, seed: int, progress: Progress | None) -> tuple:
    """``Store.evaluate_audio``: the run checked, mixed (in ``audio.work``) and embedded with the store's
    ``model`` (loaded once the inputs are read), then evaluated; ``(Evaluation, description)``."""
    from proto_index.evaluation.protocol import evaluate
    from proto_index.usecases.classify import embed_audio

    if audio.work is None:
        raise InvalidInput("evaluating from audio needs a work folder for the mixed scenes (AudioOptions.work)")
    settings = settings or Settings()
    try:
        settings.check()
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    run = audio_experiment(
        lambda paths: embed_audio(storage, model.get(), paths),
        lambda texts: np.asarray(model.get().embed_texts(list(texts)), dtype=np.float32),
        storage.identity.to_json(), audio.foreground, audio.backgrounds, snrs_db, audio.work,
        n_folds=n_folds, seed=seed, ref_db=audio.ref_db, keep_scenes=audio.keep_scenes, progress=progress, settings=settings,
    )
    try:
        return evaluate(run.data, settings), run.description
    except ValueError as e:
        raise InvalidInput(str(e)) from None
