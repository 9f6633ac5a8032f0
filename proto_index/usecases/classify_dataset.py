"""Classification of an archive too large to hold: chunks of inputs classified in turn, each chunk's
rows written at once as parts of a partitioned Parquet dataset (:mod:`proto_index.outputs.partitioned`).

Memory holds one chunk's results (``files_per_chunk`` inputs), never the run's. Every input's rows
are the ones ``classify`` gives it in one run, because each input is classified on its own vector
with its environment's fixed tau; so ``--tau auto`` (estimated over all of an environment's clips
in the run) and transductive adaptation are refused here, while ``auto-clip`` (per clip) is allowed. A rerun into the same
folder resumes: inputs that already have rows are skipped.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from proto_index.core.tau import TAU_KEYWORDS
from proto_index.errors import InvalidInput
from proto_index.outputs.exports import rows_of
from proto_index.filenames import as_text
from proto_index.options import DatasetOptions, EmbedOptions, ScoringOptions
from proto_index.outputs.partitioned import PartitionedWriter, partition_folder
from proto_index.usecases.classify import Classification, check_inputs, prepare
from proto_index.progress import Progress, SilentProgress
from proto_index.store.storage import Storage

RESULT_OPTIONS = ("adapt", "tau", "prototype_norm", "per_window")
"""The :class:`ScoringOptions` fields recorded in the run's settings (with the hop, they change
rows): a rerun into a dataset must give the same."""


@dataclass
class DatasetReport:
    out: Path
    inputs: int  # classified by this run
    resumed: int  # skipped: rows already in the dataset
    rows: int
    failed: int  # inputs whose row is an error
    parts: int


ClassifyChunk = Callable[[list[tuple[Path, str]], Progress], Classification]


def classify_dataset(storage: Storage, items: Sequence[tuple[str | Path, str]], prototypes: str,
                     scoring: ScoringOptions, options: EmbedOptions, classify_chunk: ClassifyChunk,
                     target: DatasetOptions, progress: Progress | None = None) -> DatasetReport:
    """Classify ``items`` chunk by chunk with ``classify_chunk`` (the store's classify with ``scoring``
    and ``options``, which the dataset records so that a rerun must match them)."""
    progress = progress or SilentProgress()
    pairs = [(Path(p).absolute(), env) for p, env in items]
    if not pairs:
        raise InvalidInput("nothing to classify")
    if scoring.parsed_tau == TAU_KEYWORDS["auto"]:
        raise InvalidInput("tau auto is estimated over all of an environment's clips in the run, which a dataset "
                           "written as results arrive never holds: give a number, each environment's own, or auto-clip")
    if scoring.transductive:
        raise InvalidInput("transductive adaptation works over all of an environment's clips in the run, which a "
                           "dataset written as results arrive never holds: write one file (csv, jsonl, parquet)")
    protos, plans, _, sources = prepare(storage, prototypes, [env for _, env in pairs], scoring)  # all before any work
    check_inputs([p for p, _ in pairs])
    for env in {env for _, env in pairs}:
        partition_folder(env)  # a name too long for a folder: refused now, not after hours of work
    settings = {"prototypes": prototypes, "labels": protos.labels, "prototype_vectors": _digest(protos.matrix),
                "model": storage.identity.to_json(),
                "all_scores": target.all_scores, **{k: getattr(scoring, k) for k in RESULT_OPTIONS},
                # only when on, so that a dataset begun before drift existed still resumes
                **({"drift_weight": scoring.drift_weight} if scoring.drift else {}),
                "hop_s": options.hop_s}  # the hop changes the windows
    report = DatasetReport(Path(target.out), 0, 0, 0, 0, 0)
    environments = {env: _digest(sources[env], adaptation, fixed_tau) for env, (adaptation, fixed_tau, _) in plans.items()}
    with PartitionedWriter.open(target.out, settings, protos.labels if target.all_scores else None,
                                target.rows_per_file, environments) as writer:
        todo = [(p, env) for p, env in pairs if (as_text(p), env) not in writer.done]  # as rows_of writes it
        report.resumed = len(pairs) - len(todo)
        if todo:
            writer.start()
        chunks = _OneBar(progress, len(dict.fromkeys(p for p, _ in todo)))
        for start in range(0, len(todo), target.files_per_chunk):
            result = classify_chunk(todo[start:start + target.files_per_chunk], chunks)
            rows = rows_of(result, result.prototypes)
            writer.write(rows)
            report.rows += len(rows)
            report.failed += len({(f.path, f.environment) for f in result.failed})
        report.inputs = len(todo)
        report.parts = writer.parts_written
        writer.finish()
    return report


def _digest(vectors: np.ndarray, *facts) -> str:
    """SHA-256 of stored vectors (their exact float32 bytes and shape) and JSON-able facts."""
    h = hashlib.sha256()
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    h.update(json.dumps([list(v.shape), *facts]).encode())
    h.update(v.tobytes())
    return h.hexdigest()


class _OneBar:
    """One progress bar over every chunk: the first ``start`` shows the run's total, later ones are ignored."""

    def __init__(self, progress: Progress, total: int):
        self._progress, self._total, self._started = progress, total, False

    def start(self, total: int, description: str) -> None:
        if not self._started:
            self._progress.start(self._total, description)
            self._started = True

    def advance(self, n: int = 1) -> None:
        self._progress.advance(n)

    def note(self, message: str) -> None:
        self._progress.note(message)

    def add_windows(self, n: int) -> None:
        add = getattr(self._progress, "add_windows", None)
        if add is not None:
            add(n)
