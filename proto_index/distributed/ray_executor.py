"""Ray Data as the embedding engine: Ray tasks read, hash, decode, window and embed files; results stream to the driver.

The files become a Ray Dataset of paths; ``map_batches`` runs :func:`embed_batch` as Ray tasks, each
worker process loading the store's model once (on its first task) and running the same
:func:`~proto_index.engine.embedding.embed_files` as a local ingest, so vectors are the same. The driver iterates the output as it streams in and
turns each row back into an EmbeddedFile / SkippedFile / FailedFile; the caller (ingest) stays the
store's only writer. Ray retries a task that failed for a system reason, such as its node being lost
(Ray Data's default: max_retries=-1), on the nodes left; a file that arrives twice (a retried task's
copy), or whose content another task already delivered, is handed on once / as skipped, never twice.
When no live node is left that can run a task, the run stops with ClusterError after
``capacity_wait_s`` rather than waiting forever (:mod:`proto_index.distributed.stream`).

Every node must see the input paths under the same names (a shared file system).
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from proto_index.embed.registry import PLUGINS_ENV
from proto_index.distributed.stream import can_run_a_task, watched
from proto_index.errors import ClusterError, InvalidInput, ModelError, ModelMismatch
from proto_index.options import EmbedOptions
from proto_index.engine.embedding import EmbeddedFile, FailedFile, SkippedFile, embed_files, load_encoder_for
from proto_index.engine.executors import ModelSpec, Result
from proto_index.options import ExecutorOptions

if TYPE_CHECKING:
    import pyarrow

MAX_BLOCKS = 1000


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise InvalidInput(f"the ray executor needs Ray: pip install 'proto-index[ray]' ({e})") from None
    return ray


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("kind", pa.string()), ("error", pa.string()), ("sha256", pa.string()),
        ("duration_s", pa.float64()), ("sample_rate", pa.int64()), ("channels", pa.int64()),
        ("size_bytes", pa.int64()), ("mtime_ns", pa.int64()),
        ("starts_s", pa.list_(pa.float64())), ("ends_s", pa.list_(pa.float64())),
        ("dim", pa.int64()), ("vectors", pa.binary()),
    ])


def _row(result: Result) -> dict:
    row: dict[str, object] = {"path": str(result.path), "kind": "", "error": None, "sha256": None, "duration_s": None,
           "sample_rate": None, "channels": None, "size_bytes": None, "mtime_ns": None,
           "starts_s": None, "ends_s": None, "dim": None, "vectors": None}
    if isinstance(result, FailedFile):
        row.update(kind="failed", error=result.error)
    elif isinstance(result, SkippedFile):
        row.update(kind="skipped", sha256=result.sha256, size_bytes=result.size_bytes, mtime_ns=result.mtime_ns)
    else:
        vectors = np.ascontiguousarray(result.vectors, dtype="<f4")
        row.update(kind="embedded", sha256=result.sha256, duration_s=result.duration_s,
                   sample_rate=result.sample_rate, channels=result.channels, size_bytes=result.size_bytes,
                   mtime_ns=result.mtime_ns, starts_s=list(result.starts_s), ends_s=list(result.ends_s),
                   dim=int(vectors.shape[1]), vectors=vectors.tobytes())
    return row


def _result(row: dict) -> Result:
    path = Path(row["path"])
    if row["kind"] == "failed":
        return FailedFile(path, row["error"])
    if row["kind"] == "skipped":
        return SkippedFile(path, row["sha256"], row["size_bytes"], row["mtime_ns"])
    vectors = np.frombuffer(row["vectors"], dtype="<f4").reshape(-1, row["dim"]).astype(np.float32)
    return EmbeddedFile(path, row["duration_s"], row["sample_rate"], row["channels"], list(row["starts_s"]),
                        list(row["ends_s"]), vectors, row["sha256"], row["size_bytes"], row["mtime_ns"])


_LOADED: dict[str, tuple] = {}
"""Per Ray worker process: the model loaded for a spec, or why it could not be."""
_KNOWN: dict[str, frozenset] = {}
"""Per Ray worker process: the stored-hash set of the current run, by object ref (one kept)."""


def _encoder_for(spec: ModelSpec):
    """The model for ``spec``, loaded once per worker process; ``(encoder, None)`` or ``(None, (kind, message))``."""
    key = f"{spec.identity_json}|{spec.device}|{spec.precision}"
    if key not in _LOADED:
        try:
            encoder = load_encoder_for(spec.options, spec.device, spec.precision)
        except Exception as e:  # noqa: BLE001  a model that cannot load on a worker: told to the driver
            _LOADED[key] = (None, ("fatal", f"the model could not be loaded on a Ray worker: {e}"))
        else:
            problem = None
            if encoder.identity.to_json() != spec.identity_json:
                problem = ("mismatch", "a Ray worker loaded a model whose identity differs from the store's: "
                           f"{encoder.identity.describe()}")
            _LOADED[key] = (encoder, problem)
    return _LOADED[key]


def _known(ref) -> frozenset:
    import ray

    key = ref.hex()
    if key not in _KNOWN:
        _KNOWN.clear()
        _KNOWN[key] = ray.get(ref)
    return _KNOWN[key]


def embed_batch(batch: dict, *, spec: ModelSpec, options: EmbedOptions, known_ref) -> "pyarrow.Table":
    """A Ray Data task: embed a batch of paths with the worker's model (loaded on its first task), as ``options`` say."""
    import pyarrow as pa

    paths = [Path(str(p)) for p in batch["path"]]
    encoder, problem = _encoder_for(spec)
    if problem is not None:
        rows = [{**_row(FailedFile(p, problem[1])), "kind": problem[0]} for p in paths]
    else:
        rows = [_row(r) for r in embed_files(paths, encoder, options=options, known_hashes=_known(known_ref))]
    return pa.Table.from_pylist(rows, schema=_schema())


def connect(options: ExecutorOptions) -> None:
    """Join the cluster at ``options.ray_address()``, else start a private Ray on this machine, unless
    this process already has.

    Without an address, Ray is asked for ``"local"``: a new instance, never one found through its temp
    folder (``/tmp/ray``, writable by others) or Ray's own $RAY_ADDRESS, which would hand the run to
    whatever cluster they name. Model plugins named in $PROTO_INDEX_PLUGINS are passed on, so workers
    can load the same models.
    """
    ray = _ray()
    if ray.is_initialized():
        return
    env = {PLUGINS_ENV: os.environ[PLUGINS_ENV]} if os.environ.get(PLUGINS_ENV) else {}
    address = options.ray_address()
    try:
        ray.init(address=address or "local", runtime_env={"env_vars": env} if env else None,
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    except ConnectionError as e:
        where = f"reach the Ray cluster at {address}" if address else "start Ray on this machine"
        raise InvalidInput(f"cannot {where}: {e}") from None


class RayEmbedder:
    """The ``Embed`` of :mod:`proto_index.engine.executors`, on Ray Data tasks."""

    def __init__(self, spec: ModelSpec, executor: ExecutorOptions):
        self.spec, self.executor = spec, executor

    def __call__(self, paths, *, options=EmbedOptions(), known_hashes=None, on_windows=None) -> Iterator[Result]:
        paths = [Path(p) for p in paths]
        if not paths:
            return iter(())
        return self._stream(paths, options, frozenset(known_hashes or ()), on_windows)

    def _stream(self, paths, options: EmbedOptions, known, on_windows) -> Iterator[Result]:
        ray = _ray()
        connect(self.executor)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        opts = self.executor
        blocks = max(1, min(math.ceil(len(paths) / opts.files_per_task), MAX_BLOCKS))
        ds = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=blocks)
        # Stateless tasks (the model cached per worker process), which Ray retries on a system failure.
        ds = ds.map_batches(
            embed_batch,
            fn_kwargs={"spec": self.spec, "options": options, "known_ref": ray.put(known)},
            batch_size=opts.files_per_task, batch_format="numpy", concurrency=opts.actors,
            num_cpus=opts.cpus_per_actor, num_gpus=opts.gpus_per_actor or None,
        )
        need = f"{opts.cpus_per_actor:g} CPU" + (f", {opts.gpus_per_actor:g} GPU" if opts.gpus_per_actor else "")
        tables = watched(ds.iter_batches(batch_size=None, batch_format="pyarrow"),
                         lambda: can_run_a_task(ray.nodes(), opts.cpus_per_actor, opts.gpus_per_actor),
                         opts.capacity_wait_s, need)
        delivered: set[str] = set()
        claimed: set[str] = set()
        for table in _ray_errors_told(ray, tables):
            for row in table.to_pylist():
                if row["kind"] == "mismatch":
                    raise ModelMismatch(row["error"])
                if row["kind"] == "fatal":
                    raise ModelError(row["error"])
                if row["path"] in delivered:
                    continue  # a retried task's copy of a file already handed on
                delivered.add(row["path"])
                result = _result(row)
                if isinstance(result, EmbeddedFile):
                    sha = result.sha256
                    assert sha is not None  # workers dedupe against the stored hashes, so they hash every file
                    if sha in known or sha in claimed:
                        result = SkippedFile(result.path, sha, result.size_bytes, result.mtime_ns)
                    else:
                        claimed.add(sha)
                        if on_windows is not None:
                            on_windows(len(result.starts_s))
                yield result


def _ray_errors_told(ray, tables: Iterator) -> Iterator:
    """``tables``, with a failure of the Ray run itself turned into one ClusterError line."""
    try:
        yield from tables
    except ray.exceptions.RayError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClusterError(f"the Ray run failed: {type(e).__name__}: {first}") from None
