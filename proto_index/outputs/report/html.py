"""Write the report's pages: static HTML with the package's CSS and JavaScript inlined (no server, no network).

Every string from input is escaped (``html.escape``) or travels as JSON inside a ``<script type=
"application/json">`` block with ``<``, ``>`` and ``&`` escaped, and the JavaScript only ever sets it as text.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path

from proto_index.core.gap import GapReport
from proto_index.filenames import as_text

from proto_index.outputs.report.data import REVIEW_COLUMNS, VERDICTS, Row, Summary

MAX_LISTED = 500
"""At most this many failed / unavailable rows are listed by name (the counts are always complete)."""


@dataclass
class IndexPage:
    title: str
    summary: Summary
    store: dict | None
    rows: list  # (Row, absolute source Path, Media)
    labels: list[str]
    per_label: int
    failed: list[Row]
    skipped: list[Row]
    problems: dict[str, str]
    has_prototype_page: bool


@dataclass
class PrototypePage:
    name: str
    method: str
    n_neighbours: int | None
    class_set: str
    classes: list  # (label, prompt, [(Neighbour, Media | None)], total neighbours)
    gap: GapReport | None
    gap_error: str | None


def _asset(name: str) -> str:
    return resources.files("proto_index.outputs.report").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _json_script(element_id: str, value) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _seconds(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}".rstrip("0").rstrip(".")


def _num(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _page(title: str, body: str, script: bool) -> str:
    js = f"<script>{_asset('report.js')}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head>"
        f"<body>{body}{js}</body></html>\n"
    )


def _write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _row_json(r: Row, src: Path, media) -> dict:
    return {
        "i": r.index, "path": as_text(src), "href": src.as_uri() + (f"#t={_seconds(r.start_s)}" if r.start_s else ""),
        "start": _seconds(r.start_s), "end": _seconds(r.end_s), "env": r.environment, "label": r.label,
        "adaptation": r.adaptation, "tau": r.tau, "score": r.score, "margin": r.margin,
        "top": [[lab, v] for lab, v in r.top], "audio": media.audio, "spec": media.spectrogram,
        "cut": media.cut,
    }


def _summary_html(p: IndexPage) -> str:
    s = p.summary
    parts = ["<section id=\"summary\"><h2>Summary</h2><dl class=\"facts\">"]
    if p.store:
        parts += [f"<dt>store</dt><dd>{escape(p.store['store'])}</dd>",
                  f"<dt>model</dt><dd>{escape(p.store['model'])}</dd>"]
        if p.store["prototypes"]:
            link = " (<a href=\"prototypes.html\">prototype page</a>)" if p.has_prototype_page else ""
            parts.append(f"<dt>prototype set</dt><dd>{escape(p.store['prototypes'])}{link}</dd>")
    else:
        parts.append("<dt>store</dt><dd>not given (<code>report --store DIR -p SET</code> adds model, "
                     "prototype set and environments)</dd>")
    unit = "windows" if s.per_window else "clips"
    parts.append(f"<dt>rows</dt><dd>{s.rows} {unit}, {s.failed} failed in classification, "
                 f"{len(p.skipped)} whose audio is unavailable; {len(p.rows)} shown "
                 f"(at most {p.per_label} per environment and label: the least certain half and a spread of the rest)</dd>")
    if not s.has_all_scores:
        parts.append("<dt>scores</dt><dd>only the winner's score: run <code>classify --all-scores</code> "
                     "for the top three classes</dd>")
    parts.append("</dl><div class=\"panels\"><div><h3>Environments</h3><table class=\"plain\"><thead><tr><th>environment</th>"
                 "<th>rows</th><th>adaptation</th><th>tau used</th><th>stored tau (audio / text)</th>"
                 "<th>backgrounds (audio / text)</th></tr></thead><tbody>")
    envs = (p.store or {}).get("environments", {})
    for e in s.environments:
        ad = ", ".join(f"{escape(a or 'none')} ({n})" for a, n in sorted(e.adaptations.items()))
        taus = ", ".join(f"{t:g}" for t in e.taus[:6]) + (f" ... ({len(e.taus)} values)" if len(e.taus) > 6 else "")
        st = envs.get(e.name)
        stored = f"{_num(st['tau_audio'], 2) or '-'} / {_num(st['tau_text'], 2) or '-'}" if st else "-"
        bgs = f"{st['audio_backgrounds']} / {st['text_backgrounds']}" if st else "-"
        parts.append(f"<tr><td>{escape(e.name)}</td><td>{e.rows}</td><td>{ad}</td><td>{taus}</td>"
                     f"<td>{stored}</td><td>{bgs}</td></tr>")
    shown: dict = {}
    for r, _, _ in p.rows:
        shown[(r.environment, r.label)] = shown.get((r.environment, r.label), 0) + 1
    env_names = sorted({e for e, _ in s.label_counts})
    labels = sorted({lab for _, lab in s.label_counts})
    parts.append("</tbody></table></div><div><h3>Counts per label</h3><table class=\"plain\" id=\"counts\"><thead><tr>"
                 "<th>label</th>" + "".join(f"<th>{escape(e)}</th>" for e in env_names) + "</tr></thead><tbody>")
    top = max(s.label_counts.values(), default=1)
    for label in labels:
        cells = []
        for env in env_names:
            n = s.label_counts.get((env, label), 0)
            bar = f"<span class=\"bar\" style=\"width:{max(1, round(80 * n / top))}px\"></span> " if n else ""
            cells.append(f"<td title=\"{shown.get((env, label), 0)} shown\">{bar}{n}</td>")
        parts.append(f"<tr><td>{escape(label)}</td>{''.join(cells)}</tr>")
    parts.append("</tbody></table></div><div><h3>Distributions</h3><img class=\"dist\" src=\"distributions.png\" "
                 "alt=\"histograms of score and margin per environment\"></div></div></section>")
    return "".join(parts)


def _unavailable_html(p: IndexPage) -> str:
    if not p.failed and not p.skipped:
        return ""
    parts = ["<section id=\"unavailable\"><h2>Not shown</h2>"]
    if p.skipped:
        parts.append(f"<h3>Audio unavailable ({len(p.skipped)} rows, {len(p.problems)} files)</h3><ul class=\"problems\">")
        for path, why in list(p.problems.items())[:MAX_LISTED]:
            parts.append(f"<li><code>{escape(as_text(path))}</code>: {escape(why)}</li>")
        parts.append("</ul>")
    if p.failed:
        parts.append(f"<h3>Failed in classification ({len(p.failed)} rows)</h3><ul class=\"problems\">")
        for r in p.failed[:MAX_LISTED]:
            parts.append(f"<li><code>{escape(as_text(r.path))}</code>: {escape(r.error)}</li>")
        parts.append("</ul>")
    return "".join(parts) + "</section>"


def storage_key(meta: dict, rows: list[dict]) -> str:
    """The browser-storage key of a report's decisions: a hash of what the page reviews, so that two
    different reports opened in one browser (every ``file:`` page shares one storage) never mix."""
    text = json.dumps([meta, rows], ensure_ascii=False, allow_nan=False, sort_keys=True)
    return "proto-index-review:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def write_index(path: Path, p: IndexPage) -> None:
    rows = [_row_json(r, src, m) for r, src, m in p.rows]
    meta = {"labels": p.labels, "perWindow": p.summary.per_window, "columns": list(REVIEW_COLUMNS),
            "verdicts": list(VERDICTS)}
    meta["storageKey"] = storage_key(meta, rows)
    nav = "<nav><a href=\"prototypes.html\">prototype set</a></nav>" if p.has_prototype_page else ""
    body = (
        f"<header><h1>Review: {escape(p.title)}</h1>{nav}</header><main>{_summary_html(p)}"
        "<section id=\"review\"><h2>Rows</h2>"
        "<div class=\"controls\">"
        "<label>environment <select id=\"f-env\"><option value=\"\">all</option></select></label>"
        "<label>label <select id=\"f-label\"><option value=\"\">all</option></select></label>"
        "<label>path contains <input id=\"f-text\" type=\"search\"></label>"
        "<label>reviewed <select id=\"f-verdict\"><option value=\"\">all</option>"
        "<option value=\"none\">not yet</option><option value=\"any\">reviewed</option></select></label>"
        "<label>sort <select id=\"sort\"><option value=\"group\">environment, label, least certain</option>"
        "<option value=\"margin-asc\">least certain first (margin)</option>"
        "<option value=\"margin-desc\">most certain first</option>"
        "<option value=\"score-asc\">score, low to high</option>"
        "<option value=\"score-desc\">score, high to low</option>"
        "<option value=\"path\">path, time</option></select></label>"
        "<button id=\"download\" type=\"button\">Download decisions (CSV)</button>"
        "<span id=\"decided\">0 decisions</span>"
        "<button id=\"forget\" type=\"button\">Clear saved decisions</button>"
        "<span id=\"saved\" class=\"note\"></span></div>"
        "<div class=\"pager\"><button id=\"prev\" type=\"button\">&larr; previous</button>"
        "<span id=\"page-info\"></span><button id=\"next\" type=\"button\">next &rarr;</button></div>"
        "<table id=\"rows\"><thead><tr><th>#</th><th>environment</th><th>label</th><th>top 3 (refined score)</th>"
        "<th>margin</th><th>listen</th><th>spectrogram</th><th>source</th><th>review</th></tr></thead>"
        "<tbody></tbody></table></section>"
        f"{_unavailable_html(p)}</main>"
        + _json_script("report-meta", meta) + _json_script("report-rows", rows)
    )
    _write(path, _page(f"proto-index review: {p.title}", body, script=True))


def write_prototypes(path: Path, p: PrototypePage) -> None:
    n = f", N = {p.n_neighbours}" if p.n_neighbours else ""
    parts = [f"<header><h1>Prototype set {escape(p.name)}</h1><nav><a href=\"index.html\">back to the review</a>"
             f"</nav></header><main><p>{escape(p.method)} prototypes of class set {escape(p.class_set)}{n}.</p>"]
    parts.append(_gap_html(p))
    classifier = p.method == "classifier"
    if p.method == "examples":
        parts.append("<p>Each prototype is the centroid of its class's examples: no corpus windows to show.</p>")
    elif p.method not in ("tgap", "classifier"):
        parts.append("<p>Zero-shot prototypes are the text anchors themselves: no corpus neighbours to show.</p>")
    for label, prompt, shown, total in p.classes:
        if not shown:
            continue
        caption = (f"<q>{escape(prompt)}</q>; the {len(shown)} best of its {total} corpus windows by the model's own "
                   "score for those labels:" if classifier else
                   f"anchor: <q>{escape(prompt)}</q>; the {len(shown)} nearest of its {total} neighbours, cosine to the anchor:")
        parts.append(f"<section class=\"proto\"><h3>{escape(label)}</h3><p>{caption}</p>"
                     f"<table class=\"plain\"><thead><tr><th>#</th><th>{'score' if classifier else 'cosine'}</th><th>listen</th>"
                     "<th>spectrogram</th><th>source</th></tr></thead><tbody>")
        for rank, (nb, media) in enumerate(shown, start=1):
            if nb.path is None:
                parts.append(f"<tr><td>{rank}</td><td>{nb.score:.4f}</td><td colspan=\"3\">window {nb.window_id} "
                             "(removed from the corpus)</td></tr>")
                continue
            src = Path(nb.path)
            where = f"{escape(as_text(nb.path))} @ {float(nb.start_s or 0):g} s"
            if media is None:
                parts.append(f"<tr><td>{rank}</td><td>{nb.score:.4f}</td><td colspan=\"2\">audio unavailable</td>"
                             f"<td>{where}</td></tr>")
                continue
            parts.append(f"<tr><td>{rank}</td><td>{nb.score:.4f}</td><td><audio controls preload=\"metadata\" "
                         f"src=\"{escape(media.audio)}\"></audio></td><td><img class=\"spec\" src=\"{escape(media.spectrogram)}\" "
                         f"alt=\"spectrogram\"></td><td><a href=\"{escape(src.as_uri())}\">{where}</a></td></tr>")
        parts.append("</tbody></table></section>")
    parts.append("</main>")
    _write(path, _page(f"proto-index prototypes: {p.name}", "".join(parts), script=False))


def _gap_html(p: PrototypePage) -> str:
    if p.gap is None:
        return f"<section id=\"gap\"><h2>Modality gap</h2><p>not measured: {escape(p.gap_error or '')}</p></section>"
    g = p.gap
    parts = [f"<section id=\"gap\"><h2>Modality gap</h2><p>Mean cosine of each class's text anchor and prototype to "
             f"its {g.k} nearest corpus windows (of {g.corpus_size}); higher means closer to the audio.</p>"
             "<table class=\"plain\"><thead><tr><th>class</th><th>text anchor</th><th>prototype</th></tr></thead><tbody>"]
    for i, label in enumerate(g.labels):
        a, b = float(g.anchors.neighbour_cosine[i]), float(g.prototypes.neighbour_cosine[i])
        parts.append(f"<tr><td>{escape(label)}</td><td>{_bar(a)} {a:.3f}</td><td>{_bar(b)} {b:.3f}</td></tr>")
    parts.append(f"<tr class=\"mean\"><td>mean</td><td>{g.anchors.mean_neighbour_cosine:.3f}</td>"
                 f"<td>{g.prototypes.mean_neighbour_cosine:.3f}</td></tr>"
                 f"<tr><td>centroid distance to the corpus audio</td><td>{g.anchors.centroid_distance:.3f}</td>"
                 f"<td>{g.prototypes.centroid_distance:.3f}</td></tr></tbody></table></section>")
    return "".join(parts)


def _bar(x: float) -> str:
    return f"<span class=\"bar\" style=\"width:{max(1, round(120 * min(max(x, 0.0), 1.0)))}px\"></span>"


def distribution_png(rows: list[Row], out: Path) -> None:
    """Histograms of score and margin, one line per environment, as one small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from proto_index.outputs.report.data import histogram

    envs = sorted({r.environment for r in rows if not r.error})
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.6), dpi=80)
    for ax, field, title in ((axes[0], "score", "score (winner's Pf)"), (axes[1], "margin", "margin (winner - runner-up)")):
        for env in envs[:10]:
            counts, edges = histogram(getattr(r, field) for r in rows if r.environment == env and not r.error)
            if counts.size:
                ax.stairs(counts, edges, label=env[:30].replace("$", r"\$"))
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
    if envs:
        axes[1].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)
