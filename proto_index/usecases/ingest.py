"""Ingest a corpus: find audio files, skip what is stored (by content hash), embed the rest, commit in batches.

Order of writes per batch: exact vectors appended and fsynced, then one catalog transaction for the
recordings and windows pointing at them, then the in-memory index; the index file is published at
the end. A crash at any point loses at most the batch in flight: reopening the store drops vector
rows no window points at and rebuilds a stale index, and the rerun skips every committed file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from sqlalchemy import delete, select

from proto_index.audio.discover import find_audio_files
from proto_index.engine.model import LazyEncoder
from proto_index.options import EmbedOptions, IngestOptions
from proto_index.engine.embedding import EmbeddedFile, FailedFile, SkippedFile
from proto_index.engine.executors import Embed, local_embedder
from proto_index.engine.resume import refresh_stats, split_unchanged, stored_stats
from proto_index.progress import Progress, SilentProgress
from proto_index.store.index import VectorIndex
from proto_index.store.schema import IngestFailure, Recording, StoreMeta, Window
from proto_index.store.storage import Storage


@dataclass
class IngestReport:
    added: int = 0
    windows: int = 0
    skipped: int = 0
    failed: list[FailedFile] = field(default_factory=list)


def ingest(storage: Storage, model: LazyEncoder | None, paths: Iterable[Path], *, options: EmbedOptions = EmbedOptions(),
           run: IngestOptions = IngestOptions(), embed: Embed | None = None, progress: Progress | None = None) -> IngestReport:
    """Add the audio files under ``paths`` to the corpus, embedded as ``options`` say; a file that
    fails is recorded and skipped.

    ``run`` (:class:`~proto_index.options.IngestOptions`): a file whose path, size and mtime match a
    stored recording is skipped without being read (:mod:`proto_index.engine.resume`) unless
    ``run.rehash``; the store's writer lock is awaited up to ``run.wait_s`` seconds; every
    ``run.commit_windows`` windows are one catalog transaction, and the index is republished every
    ``run.publish_windows`` new windows and at the end, when it is also rebuilt if the grown corpus
    calls for another index type (see :func:`proto_index.core.index_plan.plan_index`).
    ``embed``: where the files are embedded (:mod:`proto_index.engine.executors`; default: here,
    with ``model``, loaded only once the writer lock is held and some file needs reading: a rerun
    over unchanged files never loads it); whatever embeds them, this process commits the results.
    """
    progress = progress or SilentProgress()
    if embed is None:
        if model is None:
            raise ValueError("ingest embeds with a model here, or through embed")
        embed = _local(storage, model)
    discovery = find_audio_files(paths)
    with storage.writer(run.wait_s):
        return _ingest(storage, embed, discovery, progress, options, run)


def _local(storage: Storage, model: LazyEncoder) -> Embed:
    """Embedding here with ``model``, which loads on the first call that has files to read."""

    def embed(paths, *, options=EmbedOptions(), known_hashes=None, on_windows=None):
        paths = list(paths)
        if not paths:
            return iter(())
        encoder = model.get()
        storage.check_identity(encoder.identity)
        return local_embedder(encoder)(paths, options=options, known_hashes=known_hashes, on_windows=on_windows)

    return embed


def _ingest(storage, embed, discovery, progress, options: EmbedOptions, run: IngestOptions) -> IngestReport:
    report = IngestReport()
    to_read, unchanged = (discovery.files, []) if run.rehash else split_unchanged(discovery.files, stored_stats(storage))
    report.skipped = len(unchanged)
    for path, problem in discovery.problems:
        report.failed.append(FailedFile(Path(path), problem))

    with storage.session() as s:
        known = set(s.scalars(select(Recording.sha256)))

    # Worker threads hash each file from the same read that decodes it; a file whose hash is stored,
    # or equals an earlier file's in this run, is skipped before decoding (embed_files' known_hashes).
    progress.start(len(discovery.files), "embedding")
    progress.advance(len(unchanged))
    for failure in report.failed:
        progress.note(f"{failure.path}: {failure.error}")
    index = storage.index()
    batch: list[EmbeddedFile] = []
    published_at = 0
    restat: list[SkippedFile] = []
    results = embed(to_read, options=options, known_hashes=known, on_windows=getattr(progress, "add_windows", None))
    for result in results:
        progress.advance()
        if isinstance(result, SkippedFile):
            report.skipped += 1
            restat.append(result)
            continue
        if isinstance(result, FailedFile):
            report.failed.append(result)
            progress.note(f"{result.path}: {result.error}")
            continue
        batch.append(result)
        if sum(len(f.starts_s) for f in batch) >= run.commit_windows:
            _commit(storage, index, batch, report)
            batch = []
            if report.windows - published_at >= run.publish_windows:
                storage.publish_index(index)
                published_at = report.windows
    _commit(storage, index, batch, report)
    refresh_stats(storage, restat)
    _record_failures(storage, report.failed)
    plan = storage.index_plan()
    if plan.factory != index.factory:
        progress.note(f"rebuilding the index as {plan.factory} for {storage.count_live_rows()} vectors")
        index = VectorIndex.build(storage.identity.dim, storage.live_rows(), storage.vectors.read, plan)
    storage.publish_index(index)
    return report


def _commit(storage: Storage, index: VectorIndex, batch: list[EmbeddedFile], report: IngestReport) -> None:
    if not batch:
        return
    vectors = np.concatenate([f.vectors for f in batch])
    first_row = row = storage.vectors.append(vectors)
    with storage.session() as s:
        for f in batch:
            rec = Recording(
                path=str(f.path),
                sha256=f.sha256,
                duration_s=f.duration_s,
                sample_rate=f.sample_rate,
                channels=f.channels,
                size_bytes=f.size_bytes,
                mtime_ns=f.mtime_ns,
            )
            for start, end in zip(f.starts_s, f.ends_s):
                rec.windows.append(Window(start_s=start, end_s=end, vector_row=row))
                row += 1
            s.add(rec)
        s.execute(delete(IngestFailure).where(IngestFailure.path.in_([str(f.path) for f in batch])))
        s.merge(StoreMeta(key="vector_rows", value=str(row)))
    index.add(np.arange(first_row, row, dtype=np.int64), vectors)
    report.added += len(batch)
    report.windows += row - first_row


def _record_failures(storage: Storage, failures: list[FailedFile]) -> None:
    if not failures:
        return
    with storage.session() as s:
        for f in failures:
            existing = s.scalar(select(IngestFailure).where(IngestFailure.path == str(f.path)))
            if existing is None:
                s.add(IngestFailure(path=str(f.path), error=f.error))
            else:
                existing.error = f.error
