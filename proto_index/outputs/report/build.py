"""Build a review report folder from a classification CSV: parse, sample, excerpt audio, write the pages.

The folder is built under a hidden temporary name next to ``out`` and renamed into place at the end, so an
interrupted build never leaves a half-written report at ``out``.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from proto_index.atomic import fsync_dir, refuse_stdout
from proto_index.errors import InvalidInput
from proto_index.options.outputs import DEFAULT_NEIGHBOURS, DEFAULT_PER_LABEL, ReportCatalog, ReportOptions  # noqa: F401
from proto_index.outputs.report import data as rdata
from proto_index.outputs.report import html as rhtml
from proto_index.outputs.report.media import MediaProblem, check_source, source_path, write_media


@dataclass
class ReportResult:
    out: Path
    rows: int
    shown: int
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, why), one per source


def _read_csv(path: Path) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidInput(f"classification CSV not found: {path}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{path} is not a regular file")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # newline="": a CR inside a quoted cell stays
            return f.read()
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text: expected a classification CSV") from None


def check_out(out: Path, own: Path | None = None) -> Path:
    """``out`` (absolute) can become the report folder: new, or an empty folder (but for ``own``, the
    run's temporary folder in it), in a folder this process can write; never standard output."""
    refuse_stdout(out, "a report (a folder)")
    out = Path(out).absolute()
    if out.is_symlink() or (out.exists() and (not out.is_dir() or any(p != own for p in out.iterdir()))):
        raise InvalidInput(f"{out} already exists and is not an empty folder; choose a new report folder (nothing was written)")
    holder = out
    while not holder.exists() and holder != holder.parent:  # the folder the report's folders are made in
        holder = holder.parent
    if not holder.is_dir():
        raise InvalidInput(f"cannot write the report folder {out}: {holder} is not a folder (nothing was written)")
    if not os.access(holder, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write the report folder {out}: {holder} is not writable (nothing was written)")
    return out


def build_report(options: ReportOptions, on_problem: Callable[[str, str], None] | None = None) -> ReportResult:
    """Write the report folder ``options.out`` (``index.html``, ``prototypes.html``, ``audio/``, ``spec/``).

    ``on_problem(path, why)`` is called once per source that cannot be shown (vanished, unreadable); its
    rows are listed in the report and the rest is shown.
    """
    table = rdata.parse_table(_read_csv(Path(options.csv)), str(options.csv))
    out = check_out(options.out)
    existing = out.is_dir()  # an empty folder (such as `.`): built inside it, then moved up
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".report.tmp-" if existing else f".{out.name}.tmp-",
                                    dir=out if existing else out.parent))
    except OSError as e:
        raise InvalidInput(f"cannot write the report folder {out}: {e.strerror} (nothing was written)") from None
    try:
        result = _build(options, table, tmp, on_problem or (lambda p, w: None))
        check_out(out, own=tmp)
        if existing:  # index.html last: once it is there, everything it links to is
            for p in sorted(tmp.iterdir(), key=lambda p: p.name == "index.html"):
                os.rename(p, out / p.name)
            tmp.rmdir()
            fsync_dir(out)
        else:
            os.rename(tmp, out)  # atomic
            fsync_dir(out.parent)
        result.out = out
        return result
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _build(options: ReportOptions, table: rdata.Table, folder: Path, on_problem) -> ReportResult:
    for sub in ("audio", "spec"):
        (folder / sub).mkdir()
    root = Path(options.audio_root) if options.audio_root else Path.cwd()
    problems: dict[str, str] = {}

    def problem(path: str, why: str) -> None:
        if path not in problems:
            problems[path] = why
            on_problem(path, why)

    for path in sorted({r.path for r in table.rows if not r.error}):
        try:
            check_source(source_path(path, root))
        except MediaProblem as e:
            problem(path, str(e))
    candidates = [r for r in table.rows if not r.error and r.path not in problems]
    selected = rdata.select_rows(candidates, options.per_label)

    media_of: dict[tuple, object] = {}
    shown = []
    for r in selected:
        if r.path in problems:
            continue
        src = source_path(r.path, root)
        key = (str(src), r.start_s, r.end_s)
        if key not in media_of:
            try:
                media_of[key] = write_media(src, r.start_s, r.end_s, folder, f"r{len(media_of):06d}")
            except MediaProblem as e:
                problem(r.path, str(e))
                continue
        shown.append((r, src.absolute(), media_of[key]))

    summary = rdata.summarise(table)
    rhtml.distribution_png(table.rows, folder / "distributions.png")
    store_info = _store_info(options)
    catalog = options.catalog
    proto_page = _prototype_page(catalog, options.neighbours, folder, problem) if catalog and catalog.prototypes else None
    failed = [r for r in table.rows if r.error]
    skipped = [r for r in table.rows if not r.error and r.path in problems]
    rhtml.write_index(folder / "index.html", rhtml.IndexPage(
        title=Path(options.csv).name, summary=summary, store=store_info, rows=shown,
        labels=table.score_labels or sorted({r.label for r in table.rows if r.label}),
        per_label=options.per_label, failed=failed, skipped=skipped, problems=problems,
        has_prototype_page=proto_page is not None,
    ))
    if proto_page is not None:
        rhtml.write_prototypes(folder / "prototypes.html", proto_page)
    return ReportResult(folder, len(table.rows), len(shown), sorted(problems.items()))


def _store_info(options: ReportOptions) -> dict | None:
    catalog = options.catalog
    if catalog is None:
        return None
    envs = {e.name: e for e in catalog.environments}
    return {
        "store": str(Path(catalog.store).absolute()),
        "model": catalog.model,
        "prototypes": catalog.prototypes.name if catalog.prototypes is not None else "",
        "environments": {
            name: {"description": e.description or "", "tau_audio": e.tau_audio, "tau_text": e.tau_text,
                   "audio_backgrounds": len(e.audio_sources), "text_backgrounds": len(e.text_sources)}
            for name, e in envs.items()
        },
    }


def _prototype_page(catalog: ReportCatalog, neighbours_shown: int, folder: Path, problem) -> rhtml.PrototypePage:
    view = catalog.prototypes
    if view is None:
        raise ValueError("a prototype page needs the prototype set")  # _build checks it first
    classes = []
    n = 0
    for label, prompt, neighbours in zip(view.labels, view.prompts, view.neighbours):
        shown = []
        for nb in neighbours[:neighbours_shown]:
            media = None
            if nb.path is not None:
                start = float(nb.start_s or 0.0)
                try:
                    media = write_media(Path(nb.path), start, start + catalog.window_s, folder, f"p{n:05d}")
                    n += 1
                except MediaProblem as e:
                    problem(nb.path, str(e))
            shown.append((nb, media))
        classes.append((label, prompt, shown, len(neighbours)))
    return rhtml.PrototypePage(view.name, view.method, view.n_neighbours, view.class_set, classes, catalog.gap,
                               catalog.gap_error)
