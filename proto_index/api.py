"""The Python API: ``Store`` does everything the CLI does.

    from proto_index import EnvironmentOptions, PrototypeOptions, Store
    store = Store.init("my-store", model="clap-tiny-random")
    store.ingest(["corpus/"])
    store.add_classes("urban", ["siren", "dog bark", "drilling"])
    store.build_prototypes("urban", PrototypeOptions(method="tgap", n=35))
    store.add_environment("park", EnvironmentOptions(text="park"))
    result = store.classify([("clip.wav", "park")], prototypes="urban-tgap35")

Over ~350 lines because it is the one facade of the whole library: each method checks its
arguments and delegates to the use case, evaluation or store module that does the work.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from proto_index.embed.encoder import Encoder, ModelIdentity
from proto_index.errors import InvalidInput, ProtoIndexError
from proto_index.usecases import classify as classify_mod
from proto_index.usecases import environments, ingest, prototypes, search
from proto_index.store.views import (
    ClassSetView,
    EnvironmentView,
    PrototypeSetView,
    class_set_view,
    environment_view,
    get_environment,
    get_prototype_set,
    prototype_set_view,
)
from proto_index.options import (
    AudioOptions,
    CalibrateOptions,
    ClassSetOptions,
    DatasetOptions,
    EmbedOptions,
    EnvironmentOptions,
    ExecutorOptions,
    IngestOptions,
    PrototypeOptions,
    ReportCatalog,
    RunOptions,
    ScoringOptions,
    Settings,
)
from proto_index.options.evaluation import AUDIO_FOLDS, DEFAULT_SNRS_DB
from proto_index.engine.executors import ModelSpec
from proto_index.engine.model import LazyEncoder
from proto_index.inputs.manifest import read_manifest
from proto_index.progress import Progress
from proto_index.store import queries
from proto_index.store.storage import Storage

if TYPE_CHECKING:
    from proto_index.evaluation.experiment import ExperimentRun
    from proto_index.evaluation.tau_selection import Calibration
    from proto_index.usecases.classify_dataset import DatasetReport

DEFAULT_STORE = "proto-index-store"
STORE_ENV_VAR = "PROTO_INDEX_STORE"


def default_store_path() -> Path:
    """$PROTO_INDEX_STORE, else ./proto-index-store."""
    return Path(os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE)


def _pairs(items: Sequence[tuple[str | Path, str]] | str | os.PathLike[str]) -> list[tuple[Path, str]]:
    """What :meth:`Store.classify` takes as ``(path, environment)`` pairs: read from the CSV
    manifest when ``items`` is its path."""
    if isinstance(items, (str, os.PathLike)):
        return [(r.path, r.environment) for r in read_manifest(Path(items))]
    return [(Path(p), e) for p, e in items]


class Store:
    """A proto-index store: a corpus index, class sets, prototypes and environments bound to one model."""

    def __init__(self, storage: Storage, encoder: Encoder | None = None, device: str | None = None,
                 precision: str = "fp32"):
        self._storage = storage
        self._device = device
        self._precision = precision
        storage.gpu_search = device is None or device.startswith("cuda")
        if encoder is not None:
            storage.check_identity(encoder.identity)
        # the use cases check their inputs first and load the model only through this handle
        self._model = LazyEncoder(self._load_model) if encoder is None else LazyEncoder.of(encoder)

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | Path,
        model: str = "clap-fusion",
        checkpoint: str | Path | None = None,
        tokenizer_dir: str | Path | None = None,
        device: str | None = None,
        encoder: Encoder | None = None,
        vector_dtype: str = "float32",
        precision: str = "fp32",
        discard_old_files: bool = False,
    ) -> "Store":
        """Create a store bound to ``model`` (loaded now, so a bad checkpoint fails here, not later).

        The default, ``clap-fusion``, is the paper's model: its files are downloaded once unless
        ``checkpoint`` and ``tokenizer_dir`` are given. ``clap-tiny-demo`` works offline but knows
        only generated sounds (demos, tests).

        ``vector_dtype='float16'`` halves the disk taken by the exact vectors. ``precision``: the
        model's compute precision in this session (fp32 or bf16); the same weights,
        so the store's model identity is the same at every precision (bf16 vectors differ slightly).
        """
        options = {
            "model": model,
            "checkpoint": str(Path(checkpoint).absolute()) if checkpoint else None,
            "tokenizer_dir": str(Path(tokenizer_dir).absolute()) if tokenizer_dir else None,
        }
        Storage.check_new(Path(path), discard_old_files)  # before the model loads
        if encoder is None:
            encoder = _load_encoder(options, device, precision)
        storage = Storage.create(Path(path), encoder.identity, options, vector_dtype, discard_old_files)
        return cls(storage, encoder, device, precision)

    @classmethod
    def open(cls, path: str | Path | None = None, encoder: Encoder | None = None, device: str | None = None,
             precision: str = "fp32") -> "Store":
        """Open an existing store (its schema is upgraded in place if it is older than this version).

        ``precision`` (fp32 or bf16) is the compute precision of the model it loads.
        """
        return cls(Storage.open(Path(path) if path else default_store_path()), encoder, device, precision)

    def close(self) -> None:
        self._storage.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._storage.root

    @property
    def identity(self) -> ModelIdentity:
        return self._storage.identity

    @property
    def encoder(self) -> Encoder:
        """The store's model, loaded on first use and checked against the store's identity."""
        return self._model.get()

    def _load_model(self) -> Encoder:
        encoder = _load_encoder(self._storage.model_options, self._device, self._precision)
        self._storage.check_identity(encoder.identity)
        return encoder

    # -- corpus ------------------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], *, options: EmbedOptions = EmbedOptions(),
               run: IngestOptions = IngestOptions(), executor: ExecutorOptions | None = None,
               progress: Progress | None = None) -> ingest.IngestReport:
        """Add audio files and folders to the corpus (reruns skip stored content; one writer at a time).

        ``options`` (:class:`~proto_index.options.EmbedOptions`): the hop between 10 s windows, the
        model batch, the reader threads. ``run`` (:class:`~proto_index.options.IngestOptions`): how
        long to wait for another writer (``wait_s``), ``rehash=True`` to read and hash every file
        (else one whose path, size and mtime match a stored recording is skipped unread), and the
        windows per transaction and per index publication. ``executor``:
        ``ExecutorOptions(kind="ray", ...)`` embeds on Ray actors; this process still commits every
        result (see :mod:`proto_index.engine.executors`).
        """
        embed = self._remote_embedder(executor)
        return ingest.ingest(self._storage, self._model, [Path(p) for p in paths],
                             options=options, run=run, embed=embed, progress=progress)

    def _remote_embedder(self, executor: ExecutorOptions | None):
        """None for local work (with :attr:`encoder`), else the executor's embedder, which loads the model itself."""
        if executor is None or executor.kind == "local":
            return None
        from proto_index.distributed.ray_executor import RayEmbedder  # Ray is optional: imported only when asked for

        spec = ModelSpec(self._storage.model_options, self._device, self._precision, self.identity.to_json())
        return RayEmbedder(spec, executor)

    def search(self, text: str, k: int = 10) -> list[search.SearchHit]:
        return search.search(self._storage, self._model, text, k)

    def embed_audio(self, paths: Sequence[str | Path]) -> np.ndarray:
        """One vector per file (mean of its 10 s window embeddings); raises if a file cannot be decoded."""
        return classify_mod.embed_audio(self._storage, self.encoder, paths)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.encoder.embed_texts(list(texts)), dtype=np.float32)

    # -- classes and prototypes ------------------------------------------------------------------

    def add_classes(self, name: str, labels: Sequence[str] = (), options: ClassSetOptions = ClassSetOptions()) -> ClassSetView:
        """Add a class set of ``labels`` followed by the lines of ``options.labels_file`` when given (see
        :func:`~proto_index.inputs.labels_file.read_labels_file`); replacing one that has prototype sets
        needs ``options.drop_prototypes`` (deletes them, named in the view's ``dropped_prototypes``)."""
        if isinstance(labels, str):
            raise InvalidInput("labels must be a list of labels, not one string")
        if options.labels_file is not None:
            from proto_index.inputs.labels_file import read_labels_file

            labels = [*labels, *read_labels_file(options.labels_file)]
        return prototypes.add_class_set(self._storage, name, list(labels), options.template, options.replace,
                                        options.drop_prototypes)

    def class_sets(self) -> list[ClassSetView]:
        with self._storage.session() as s:
            return [class_set_view(c) for c in queries.class_sets(s)]

    def build_prototypes(self, class_set: str, options: PrototypeOptions = PrototypeOptions()) -> PrototypeSetView:
        """Build a prototype set for ``class_set`` by ``options.method``: zero-shot, tgap (``n``
        neighbours), supervised (centroids of the windows confirmed with :meth:`annotate`), blend
        (supervised, topped up with TGAP neighbours to ``min_confirmed`` members per class), and for a model with or without a text tower: examples
        (each class's centroid of the examples ``inputs.examples`` lists) or classifier (the centroid
        of the ``n`` corpus windows the model's own classifier scores highest for the model labels
        ``inputs.mapping`` maps to the class; the model must offer
        :class:`~proto_index.embed.encoder.LabelScorer`). ``inputs.prompt_ensemble`` (zero-shot,
        tgap): anchors from several prompt templates, weighted without labels over the corpus audio."""
        return prototypes.build_prototypes(self._storage, self._model, class_set, options)

    def annotate(self, decisions: str | Path, source: str | None = None, progress: Progress | None = None):
        """Store reviewed verdicts from a decisions CSV (``path,start_s,end_s,environment,label,verdict,
        corrected_label``); see ``proto_index.usecases.annotations``. Bad rows come back as problems
        (and each goes to ``progress.note`` as it is met)."""
        from proto_index.usecases.annotations import annotate

        return annotate(self._storage, Path(decisions), source, progress)

    def prototype_set(self, name: str) -> PrototypeSetView:
        """A prototype set's labels, matrix (one row per label), text anchors and TGAP neighbours."""
        with self._storage.session() as s:
            return prototype_set_view(s, get_prototype_set(s, name))

    def prototype_sets(self) -> list[PrototypeSetView]:
        with self._storage.session() as s:
            return [prototype_set_view(s, ps, with_neighbours=False) for ps in queries.prototype_sets(s)]

    # -- environments ----------------------------------------------------------------------------

    def add_environment(self, name: str, options: EnvironmentOptions = EnvironmentOptions()) -> EnvironmentView:
        """Add an environment: its text and/or audio backgrounds, taus and ``replace`` in ``options``."""
        return environments.add_environment(self._storage, self._model, name, options)

    def environment(self, name: str) -> EnvironmentView:
        """An environment's description, tau overrides and background vectors (text and audio)."""
        with self._storage.session() as s:
            return environment_view(get_environment(s, name), self.identity.dim)

    def environments(self) -> list[EnvironmentView]:
        return environments.list_environments(self._storage)

    def set_environment_tau(self, name: str, audio: float | None = None, text: float | None = None) -> EnvironmentView:
        """Store an environment's tau for audio and/or text backgrounds (None leaves one as it is)."""
        return environments.set_tau(self._storage, name, audio, text)

    # -- classification --------------------------------------------------------------------------

    def classify(
        self,
        items: Sequence[tuple[str | Path, str]] | str | os.PathLike[str],
        prototypes: str,
        *,
        scoring: ScoringOptions = ScoringOptions(),
        options: EmbedOptions = EmbedOptions(),
        executor: ExecutorOptions | None = None,
        progress: Progress | None = None,
    ) -> classify_mod.Classification:
        """Classify ``(path, environment)`` pairs, or the files of a CSV manifest when ``items`` is its
        path (``path`` and ``environment`` columns); see ``proto_index.usecases.classify.classify``.

        ``scoring`` (:class:`~proto_index.options.ScoringOptions`, checked when made): adaptation, tau
        (``"auto"``: estimated without labels), prototype norm (``"none"``: as the paper's code), and
        ``per_window=True`` for one result per 10 s window (``start_s``, ``end_s``) instead of one per
        pair on the mean of the file's windows; ``transductive`` and ``drift`` for the label-free
        adaptations. ``options``: how files are embedded (windows every ``options.hop_s`` seconds);
        ``executor``: as for :meth:`ingest` (files embedded on Ray; drift's prompts are embedded here)."""
        return classify_mod.classify(self._storage, self._model, _pairs(items), prototypes, scoring=scoring,
                                     options=options, progress=progress, embed=self._remote_embedder(executor))

    classify_manifest = classify
    """:meth:`classify` under the name it had for a manifest's path (``items`` may be one)."""

    def classify_dataset(
        self,
        items: Sequence[tuple[str | Path, str]] | str | os.PathLike[str],
        prototypes: str,
        target: DatasetOptions,
        *,
        scoring: ScoringOptions = ScoringOptions(),
        options: EmbedOptions = EmbedOptions(),
        executor: ExecutorOptions | None = None,
        progress: Progress | None = None,
    ) -> DatasetReport:
        """:meth:`classify` into a partitioned Parquet dataset (``target``: where and how), chunk by
        chunk; the rest as for :meth:`classify`. A rerun into the same folder with the same ``scoring``
        and hop resumes (see :mod:`proto_index.outputs.partitioned`)."""
        from proto_index.usecases.classify_dataset import classify_dataset

        def chunk(items, bar):
            return self.classify(items, prototypes, scoring=scoring, options=options, executor=executor, progress=bar)

        return classify_dataset(self._storage, _pairs(items), prototypes, scoring, options, chunk, target, progress)

    # -- evaluation ------------------------------------------------------------------------------

    def calibrate(self, manifest: str | Path | None, options: CalibrateOptions) -> list[Calibration]:
        """Choose tau per environment and adaptation for ``options.prototypes`` by held-out search over
        ``options.grid``, from a labelled CSV (``path,environment,label``; its clips embedded now) or,
        when ``manifest`` is None, from the confirmed annotations that name an environment (their stored
        window vectors); see ``proto_index.evaluation.tau_selection``. Stores each chosen tau on its
        environment only with ``options.save``."""
        from proto_index.evaluation.calibrate import run_calibration

        return run_calibration(self._storage, self._model, options, manifest)

    def calibrate_from_annotations(self, options: CalibrateOptions) -> list[Calibration]:
        """:meth:`calibrate` on the confirmed annotations (that name an environment) as the labelled clips."""
        return self.calibrate(None, options)

    def report_catalog(self, prototypes: str | None = None, gap_k: int = 10) -> ReportCatalog:
        """What a review report shows of this store (:class:`~proto_index.options.ReportCatalog`): its
        model and environments and, with ``prototypes``, that set and its modality gap over ``gap_k``
        neighbours (or why the gap could not be measured)."""
        view = gap = gap_error = None
        if prototypes is not None:
            view = self.prototype_set(prototypes)
            try:
                _, gap = self.modality_gap(prototypes, gap_k)
            except ProtoIndexError as e:
                gap_error = str(e)
        return ReportCatalog(self.path, self.identity.describe(), self.identity.window_s, tuple(self.environments()),
                             view, gap, gap_error)

    def modality_gap(self, prototypes: str, k: int = 10):
        """``(method, GapReport)``: the set's anchors and prototypes against the corpus; see ``proto_index.core.gap``."""
        from proto_index.evaluation.corpus_gap import prototype_gap

        return prototype_gap(self._storage, prototypes, k)

    def evaluate_audio(
        self,
        audio: AudioOptions,
        settings: Settings | None = None,
        *,
        snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
        folds: int = AUDIO_FOLDS,
        seed: int = 0,
        progress: Progress | None = None,
    ):
        """The paper's experiment from audio with this store's model: ``(Evaluation, description)``.

        Scenes of ``audio``'s foregrounds over its backgrounds are mixed in ``audio.work`` (required
        here) at each of ``snrs_db`` and embedded (``proto_index.evaluation.audio_run``); nothing is
        added to the store. ``settings``: the protocol's :class:`~proto_index.evaluation.protocol.Settings`;
        ``folds`` folds of the foreground clips (unless the CSV has a fold column), shuffled with
        ``seed``. :meth:`evaluate` is the same run with its results written to a folder.
        """
        from proto_index.evaluation.audio_run import evaluate_audio

        return evaluate_audio(self._storage, self._model, audio, settings, snrs_db=tuple(snrs_db), n_folds=folds,
                              seed=seed, progress=progress)

    def evaluate(self, run: RunOptions, audio: AudioOptions, progress: Progress | None = None) -> ExperimentRun:
        """``proto-index evaluate`` from audio as one call: :meth:`evaluate_audio` with ``run``'s settings,
        SNRs, seed and folds on ``audio``'s inputs, and the results files written to ``run.out``."""
        from proto_index.evaluation.experiment import run_audio

        return run_audio(self._storage, self._model, run, audio, progress)

    # -- maintenance -----------------------------------------------------------------------------

    def remove(self, paths: Iterable[str | Path], wait_s: float = 0.0) -> int:
        """Remove recordings (files, folders, or the same content elsewhere) from catalog and index."""
        from proto_index.usecases.maintenance import remove

        return remove(self._storage, [Path(p) for p in paths], wait_s)

    def verify(self, repair: bool = False, wait_s: float = 0.0):
        """Check catalog, vector file and index agree; ``repair`` fixes what it can. See VerifyReport."""
        from proto_index.usecases.maintenance import verify

        return verify(self._storage, repair, wait_s)

    def reindex(self, index: str | None = None, memory_budget: int | None = None, compact: bool = False, wait_s: float = 0.0):
        """Rebuild the index ('auto', 'Flat' or 'IVF<nlist>,PQ<m>'); ``compact`` drops removed rows first."""
        from proto_index.usecases.maintenance import reindex

        return reindex(self._storage, index, memory_budget, compact, wait_s)

    # -- overview --------------------------------------------------------------------------------

    @property
    def model_kind(self) -> str:
        """The kind of this store's model: checkpoint, demo, random or custom."""
        return model_kind(self.identity.name)

    def info(self) -> dict:
        with self._storage.session() as s:
            counts = queries.counts(s)
            hours = queries.corpus_seconds(s) / 3600
            failures = queries.ingest_failures(s)
        return {
            "store": str(self.path.absolute()),
            "model": self.identity,
            "model_kind": self.model_kind,
            "counts": counts,
            "corpus_hours": hours,
            "failures": failures,
            "prototype_sets": self.prototype_sets(),
            "environments": self.environments(),
        }


def model_kind(name: str) -> str:
    """The kind of the model called ``name``: checkpoint, demo, random or custom (see the registry)."""
    from proto_index.embed.registry import model_kind as kind

    return kind(name)


def _load_encoder(options: dict, device: str | None, precision: str = "fp32") -> Encoder:
    from proto_index.engine.embedding import load_encoder_for

    return load_encoder_for(options, device, precision)
