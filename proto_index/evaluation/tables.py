"""An evaluation as tables: long rows (CSV), a pivoted table (terminal, Markdown) and a JSON-ready dict. Pure."""
from __future__ import annotations

import numpy as np

from proto_index.evaluation.protocol import TAU_RULES, Evaluation, Score

LONG_COLUMNS = (
    "environment", "snr_db", "method", "adaptation", "tau_rule",
    "accuracy_pct", "accuracy_std_pct", "tau", "tau_std", "folds",
)  # fmt: skip

TABLE_COLUMNS = ("environment", "SNR dB", "method", "adaptation") + tuple(
    f"{r}*" if r == "optimistic" else r for r in TAU_RULES
)

NOTES = (
    "Accuracy in % (mean over test folds); tau in parentheses (mean over folds).",
    "fixed: the paper's working tau (0.7 audio, 0.2 text). calibrated: chosen on the training folds only "
    "(nested cross-validation). auto: label-free rule '{auto_rule}' applied to each test fold.",
    "* optimistic: the one tau that maximises mean test-fold accuracy, as a tau sweep of the paper's "
    "reference code reports. It looks at the test folds: an upper bound, not an estimate.",
    "audio: the realistic per-environment mean background profile. audio-oracle: each scene's own "
    "background recording (the paper's experiment), which no user has.",
)


def long_rows(evaluation: Evaluation) -> list[dict]:
    """One row per score, accuracy in percent (see :data:`LONG_COLUMNS`)."""
    rows = []
    for s in evaluation.scores:
        rows.append(
            {
                "environment": s.environment,
                "snr_db": s.snr_db,
                "method": s.method,
                "adaptation": s.adaptation,
                "tau_rule": s.rule,
                "accuracy_pct": 100.0 * s.accuracy,
                "accuracy_std_pct": 100.0 * float(np.std(s.fold_accuracies)),
                "tau": s.tau,
                "tau_std": float(np.std(s.fold_taus)),
                "folds": len(s.fold_accuracies),
            }
        )
    return rows


def _cell(s: Score | None) -> str:
    if s is None:
        return "-"
    if s.rule == "none":
        return f"{100 * s.accuracy:.1f}"
    return f"{100 * s.accuracy:.1f} ({s.tau:.2f})"


def table_rows(evaluation: Evaluation) -> list[list[str]]:
    """The pivoted table: one row per environment x SNR x method x adaptation, one column per tau rule.

    The unadapted baseline has a single accuracy, shown under ``fixed``.
    """
    cells: dict[tuple, dict[str, Score]] = {}
    for s in evaluation.scores:
        cells.setdefault((s.environment, s.snr_db, s.method, s.adaptation), {})[s.rule] = s
    rows = []
    for (env, snr, method, adaptation), by_rule in cells.items():
        if adaptation == "none":
            values = [_cell(by_rule.get("none"))] + ["-"] * (len(TAU_RULES) - 1)
        else:
            values = [_cell(by_rule.get(r)) for r in TAU_RULES]
        rows.append([env, f"{snr:g}", method, adaptation] + values)
    return rows


def _widths(header, rows) -> list[int]:
    return [max(len(str(x)) for x in col) for col in zip(header, *rows)]


def format_text(evaluation: Evaluation) -> str:
    """The pivoted table in fixed-width columns with its notes, for the terminal."""
    header, rows = list(TABLE_COLUMNS), table_rows(evaluation)
    w = _widths(header, rows)
    numeric = {i for i in range(4, len(header))}

    def line(cells):
        return "  ".join(str(c).rjust(w[i]) if i in numeric or i == 1 else str(c).ljust(w[i]) for i, c in enumerate(cells)).rstrip()

    out = [line(header), line(["-" * x for x in w])]
    previous = None
    for r in rows:
        if previous is not None and r[:3] != previous[:3]:
            out.append("")
        out.append(line(r))
        previous = r
    return "\n".join(out + [""] + [n.format(auto_rule=evaluation.settings.auto_rule) for n in NOTES])


SUMMARY_CELLS = (("none", "none"), ("text", "calibrated"), ("audio", "calibrated"), ("audio", "auto"),
                 ("audio-oracle", "calibrated"))
"""The summary's columns: (adaptation, tau rule), none of them peeking at the test folds."""


def method_summary(evaluation: Evaluation) -> tuple[list[str], list[list[float | None]]]:
    """Every method's mean accuracy over environments and SNRs per :data:`SUMMARY_CELLS` column
    (None where it has no such rows): ``(methods, values)`` in the methods' order."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    for s in evaluation.scores:
        cells.setdefault((s.method, s.adaptation, s.rule), []).append(s.accuracy)
    methods = [m for m in evaluation.settings.methods if any(k[0] == m for k in cells)]
    return methods, [[float(np.mean(cells[(m, a, r)])) if (m, a, r) in cells else None for a, r in SUMMARY_CELLS]
                     for m in methods]


def format_summary_markdown(evaluation: Evaluation) -> str:
    """:func:`method_summary` as a Markdown table, accuracies in percent."""
    methods, values = method_summary(evaluation)
    header = ["method"] + [a if a == "none" else f"{a}, {'tau calibrated' if r == 'calibrated' else r + ' tau'}"
                           for a, r in SUMMARY_CELLS]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(SUMMARY_CELLS) + "|"]
    lines += ["| " + " | ".join([m] + ["-" if v is None else f"{100 * v:.1f}" for v in row]) + " |"
              for m, row in zip(methods, values)]
    return "\n".join(lines) + "\n"


def format_markdown(evaluation: Evaluation) -> str:
    """The pivoted table as GitHub Markdown with its notes, then every method's mean over
    environments and SNRs (:func:`format_summary_markdown`)."""
    header, rows = list(TABLE_COLUMNS), table_rows(evaluation)
    align = ["---"] * 4 + ["---:"] * (len(header) - 4)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = [n.format(auto_rule=evaluation.settings.auto_rule) for n in NOTES]
    summary = ["", "Every method, mean accuracy (%) over environments and SNRs:", "", format_summary_markdown(evaluation)]
    return "\n".join(lines + [""] + notes + summary)


def as_dict(evaluation: Evaluation, parameters: dict) -> dict:
    """Every number of the evaluation and the parameters that produced it (JSON-ready)."""
    return {
        "parameters": parameters,
        "settings": evaluation.settings.to_dict(),
        "folds": list(evaluation.folds),
        "tau_grid": list(evaluation.settings.grid),
        "scores": [
            {
                "environment": s.environment,
                "snr_db": s.snr_db,
                "method": s.method,
                "adaptation": s.adaptation,
                "tau_rule": s.rule,
                "accuracy": s.accuracy,
                "fold_accuracies": list(s.fold_accuracies),
                "fold_taus": list(s.fold_taus),
            }
            for s in evaluation.scores
        ],
        "tau_curves": [
            {
                "environment": c.environment,
                "snr_db": c.snr_db,
                "method": c.method,
                "adaptation": c.adaptation,
                "mean_test_accuracy": list(c.accuracy),
            }
            for c in evaluation.curves
        ],
        "notes": [n.format(auto_rule=evaluation.settings.auto_rule) for n in NOTES],
    }
