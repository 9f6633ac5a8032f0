"""A classification run as a Hive-partitioned Parquet dataset, written part by part as results arrive.

Layout of the output folder ``OUT``::

    OUT/_proto_index_run.json                      the run's settings (a rerun must match them)
    OUT/environment=<name>/_proto_index_environment.json  what the environment's rows were scored
                                                   with (its background and tau, as a digest)
    OUT/environment=<name>/part-000000-<run>.parquet  complete parts, at most ``rows_per_file`` rows
    OUT/_SUCCESS                                   written last, once every input has its rows

``<name>`` is the environment, percent-encoded (``pyarrow.dataset``'s Hive partitioning decodes it);
the part files also hold the ``environment`` column, so one file read alone says where it belongs.
All rows of one input (one per file, or one per window) land in the same part, and a part holds one
environment's rows in the order they arrived (one input's rows can exceed ``rows_per_file``).

Crash safety: each part is written to a hidden ``.part-*.tmp`` file in its folder and renamed when
complete, so a reader never sees a half-written part (``pyarrow.dataset`` skips names starting with
``.`` or ``_``); a run that dies leaves complete parts, perhaps a hidden temp file, and no
``_SUCCESS``. A rerun with the same settings into ``OUT`` skips the inputs (path, environment) that
already have rows and writes the rest; one with other settings, other prototype vectors (a set
rebuilt under the same name) or another background or tau for an environment that has rows is
refused, saying what changed. A run that has inputs to add removes ``_SUCCESS`` before its first
part. One run writes at a time.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from proto_index.atomic import refuse_stdout
from proto_index.errors import InvalidInput, NotFound, StoreLocked
from proto_index.options.outputs import DEFAULT_ROWS_PER_FILE
from proto_index.outputs.exports import ExportRow, atomic, parquet_table

if TYPE_CHECKING:
    import pyarrow

DATASET_FORMAT = "parquet-dataset"
PARTITION = "environment"
RUN_FILE = "_proto_index_run.json"
DONE_FILE = "_SUCCESS"
ENV_FILE = "_proto_index_environment.json"
MAX_SEGMENT_BYTES = 200
KIND = "proto-index classification dataset"
VERSION = 2  # 2: the prototype vectors' digest in the settings, each environment's in its folder
SETTING_NAMES = {"prototypes": "the prototype set's name", "labels": "the labels",
                 "prototype_vectors": "the prototype vectors (the set was rebuilt)", "model": "the model",
                 "all_scores": "all-scores", "adapt": "the adaptation", "tau": "tau",
                 "prototype_norm": "the prototype norm", "per_window": "per-window", "hop_s": "the hop"}
"""How a refusal names a setting that differs from the dataset's (any other key: by its own name)."""


def partition_folder(environment: str) -> str:
    """``environment=<percent-encoded name>``: one path segment whatever the name holds."""
    segment = f"{PARTITION}={quote(environment, safe='')}"
    if len(segment.encode()) > MAX_SEGMENT_BYTES:
        raise InvalidInput(f"environment name too long for a partition folder ({len(segment)} bytes encoded, "
                           f"at most {MAX_SEGMENT_BYTES}): {environment[:40]!r}...")
    return segment


class PartitionedWriter:
    """Writes parts into ``out`` (see the module); :meth:`open` it, :meth:`write` rows, :meth:`finish`, :meth:`close`."""

    def __init__(self, out: Path, labels: list[str] | None, rows_per_file: int, lock_fd: int, done: set, next_part: int,
                 environments: dict[str, str] | None = None):
        self.out, self.labels, self.rows_per_file = out, labels, rows_per_file
        self._lock_fd, self.done, self._next = lock_fd, done, next_part
        self._environments, self._recorded = dict(environments or {}), set[str]()
        self._run = secrets.token_hex(4)
        self.parts_written = 0

    @classmethod
    def open(cls, out: Path, settings: dict, labels: list[str] | None = None,
             rows_per_file: int = DEFAULT_ROWS_PER_FILE, environments: dict[str, str] | None = None) -> PartitionedWriter:
        """Start or resume the dataset at ``out`` for a run with ``settings`` (JSON-able);
        ``environments``: each environment's content digest (its rows already written must match it)."""
        if rows_per_file < 1:
            raise InvalidInput("rows per file must be positive")
        out = Path(out)
        refuse_stdout(out, "a parquet dataset (a folder)")
        if out.is_symlink() or (out.exists() and not out.is_dir()):
            raise InvalidInput(f"{out} exists and is not a folder (a parquet dataset is a folder)")
        if not out.absolute().parent.is_dir():
            raise NotFound(f"the folder that would hold {out.name} does not exist: {out.absolute().parent}")
        out.mkdir(exist_ok=True)
        run_file = out / RUN_FILE
        record = {"kind": KIND, "version": VERSION, "settings": settings}
        if not run_file.exists():
            if any(out.iterdir()):
                raise InvalidInput(f"{out} is not empty and holds no earlier classification dataset ({RUN_FILE}); "
                                   "choose an empty or new folder")
            with atomic(run_file) as f:
                json.dump(record, f, indent=1, sort_keys=True)
        fd = _lock(run_file)
        try:
            earlier = _read_record(run_file)
            if earlier != json.loads(json.dumps(record)):
                raise InvalidInput(f"{out} holds a dataset of another classification run ({_changes(earlier, record)}); "
                                   "its rows would mix two runs: start over in a new folder (or remove this one)")
            for env, digest in (environments or {}).items():
                _check_environment(out, env, digest)
            done, next_part = _existing(out)
        except BaseException:
            os.close(fd)
            raise
        return cls(out, labels, rows_per_file, fd, done, next_part, environments)

    def start(self) -> None:
        """Mark the dataset incomplete (no ``_SUCCESS``) before this run adds rows to it."""
        (self.out / DONE_FILE).unlink(missing_ok=True)

    def write(self, rows: Iterable[ExportRow]) -> None:
        """Write ``rows`` (each input's rows together) as complete parts, per environment."""
        by_env: dict[str, list[list[ExportRow]]] = {}
        for row in rows:
            inputs = by_env.setdefault(row.environment, [])
            if not inputs or (inputs[-1][0].path, inputs[-1][0].environment) != (row.path, row.environment):
                inputs.append([])
            inputs[-1].append(row)
        for env, inputs in by_env.items():
            part: list[ExportRow] = []
            for one in inputs:
                if part and len(part) + len(one) > self.rows_per_file:
                    self._write_part(env, part)
                    part = []
                part.extend(one)
            if part:
                self._write_part(env, part)

    def _write_part(self, environment: str, rows: list[ExportRow]) -> None:
        import pyarrow.parquet as pq

        folder = self.out / partition_folder(environment)
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise InvalidInput(f"{folder} is not a real folder; parts are written only into real folders")
        folder.mkdir(exist_ok=True)
        if environment in self._environments and environment not in self._recorded:
            record = folder / ENV_FILE
            if not record.exists():  # one that exists was checked by open
                with atomic(record) as f:
                    json.dump({"kind": KIND, "environment": environment, "content": self._environments[environment]},
                              f, indent=1, sort_keys=True)
            self._recorded.add(environment)
        name = f"part-{self._next:06d}-{self._run}.parquet"
        with atomic(folder / name, "wb") as f:
            pq.write_table(parquet_table(rows, self.labels), f)
        self._next += 1
        self.parts_written += 1
        self.done.update((r.path, r.environment) for r in rows)

    def finish(self) -> None:
        """Mark the dataset complete (``_SUCCESS``)."""
        with atomic(self.out / DONE_FILE) as f:
            f.write("")

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> PartitionedWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lock(run_file: Path) -> int:
    try:
        fd = os.open(run_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:  # e.g. a symbolic link planted in its place
        raise InvalidInput(f"{run_file}: cannot be opened as this dataset's run record ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLocked(f"another classification run is writing {run_file.parent}") from None
    return fd


def _read_record(run_file: Path) -> dict:
    try:
        return json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(f"{run_file}: not a readable run record ({e})") from None


def _changes(earlier: dict, record: dict) -> str:
    """What differs between a dataset's run record and this run's, in words."""
    if not isinstance(earlier, dict) or earlier.get("kind") != KIND or earlier.get("version") != VERSION:
        return "written by another version of proto-index"
    before, now = earlier.get("settings"), record["settings"]
    if not isinstance(before, dict):
        return "an unreadable run record"
    keys = [k for k in dict.fromkeys([*now, *before]) if before.get(k) != now.get(k)]
    return ", ".join(SETTING_NAMES.get(k, k) for k in keys) + (" differ" if len(keys) > 1 else " differs")


def _check_environment(out: Path, environment: str, digest: str) -> None:
    """Refuse when ``environment``'s rows in the dataset were scored with another background or tau."""
    record = out / partition_folder(environment) / ENV_FILE
    if not record.exists() and not record.is_symlink():
        return
    earlier = _read_record(record)
    if not isinstance(earlier, dict) or earlier.get("content") != digest:
        raise InvalidInput(f"{out} holds rows of environment {environment!r} scored with another background or tau "
                           "(it was changed since); its rows would mix two runs: start over in a new folder "
                           "(or remove this one)")


def _existing(out: Path) -> tuple[set, int]:
    """The (path, environment) inputs the dataset's complete parts hold, and the next part number."""
    import pyarrow.parquet as pq

    done: set = set()
    next_part = 0
    for part in sorted(out.glob(f"{PARTITION}=*/part-*.parquet")):
        try:
            table = pq.read_table(part, columns=["path", "environment"])
            next_part = max(next_part, int(part.name.split("-")[1]) + 1)
        except (OSError, ValueError, IndexError) as e:
            raise InvalidInput(f"{part}: not a part this tool wrote ({e})") from None
        done.update(zip(table.column("path").to_pylist(), table.column("environment").to_pylist()))
    return done, next_part


def read_dataset(out: Path) -> "pyarrow.Table":
    """The dataset's rows (the ``environment`` partition read as a string, whatever the names look like)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(pa.schema([(PARTITION, pa.string())]), flavor="hive")
    return ds.dataset(out, format="parquet", partitioning=partitioning).to_table()
