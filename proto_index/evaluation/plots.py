"""PNG plots of an evaluation (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from proto_index.atomic import output_path
from proto_index.evaluation.protocol import ADAPTATIONS, METHODS, Evaluation

_ADAPT_STYLE: dict[str, dict[str, Any]] = {
    "none": dict(color="0.35", linestyle="-", marker="o"),
    "text": dict(color="tab:orange", linestyle="-", marker="s"),
    "audio": dict(color="tab:blue", linestyle="-", marker="^"),
    "audio-oracle": dict(color="tab:blue", linestyle="--", marker="v", alpha=0.7),
}
_METHOD_COLOR = {"zero-shot": "tab:red", "tgap": "tab:green", "supervised": "tab:purple",
                 "zero-shot-transductive": "tab:orange", "tgap-transductive": "tab:olive"}
_SNR_STYLES = ("-", "--", ":", "-.")
_OTHER_COLORS = ("tab:brown", "tab:pink", "tab:cyan", "tab:gray", "gold", "navy", "teal", "maroon", "lime", "coral",
                 "indigo", "darkkhaki")


def _method_color(method: str) -> str:
    if method in _METHOD_COLOR:
        return _METHOD_COLOR[method]
    others = [m for m in METHODS if m not in _METHOD_COLOR]
    return _OTHER_COLORS[others.index(method) % len(_OTHER_COLORS)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(plt, rows: int, cols: int):
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False, sharey=True)
    return fig, axes


def accuracy_vs_snr(evaluation: Evaluation, path: Path) -> Path:
    """One panel per environment (rows) and method (columns): accuracy vs SNR, a line per
    adaptation with tau calibrated by nested cross-validation."""
    plt = _pyplot()
    envs = sorted({s.environment for s in evaluation.scores})
    methods = [m for m in METHODS if any(s.method == m for s in evaluation.scores)]
    fig, axes = _grid(plt, len(envs), len(methods))
    for i, env in enumerate(envs):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            for adaptation in ADAPTATIONS:
                rule = "none" if adaptation == "none" else "calibrated"
                pts = sorted(
                    (s.snr_db, 100 * s.accuracy)
                    for s in evaluation.scores
                    if (s.environment, s.method, s.adaptation, s.rule) == (env, method, adaptation, rule)
                )
                if pts:
                    x, y = zip(*pts)
                    ax.plot(x, y, label=adaptation, **_ADAPT_STYLE[adaptation])
            ax.set_title(f"{env} - {method}", fontsize=10)
            ax.set_xticks(sorted({s.snr_db for s in evaluation.scores}))
            ax.grid(alpha=0.3)
            if i == len(envs) - 1:
                ax.set_xlabel("SNR (dB)")
            if j == 0:
                ax.set_ylabel("accuracy (%)")
    axes[0][-1].legend(title="adaptation", fontsize=8, title_fontsize=8, loc="lower right")
    fig.suptitle("Accuracy vs SNR (tau calibrated on training folds, nested CV)", fontsize=11)
    return _save(fig, plt, path)


def accuracy_vs_tau(evaluation: Evaluation, path: Path) -> Path:
    """One panel per environment (rows) and adaptation (columns): mean test-fold accuracy vs tau,
    colour per method, line style per SNR; the dotted line is the paper's fixed tau.

    These curves look at the test folds (the reference code's sweep): their peaks are optimistic.
    """
    plt = _pyplot()
    grid = np.asarray(evaluation.settings.grid)
    envs = sorted({c.environment for c in evaluation.curves})
    adaptations = [a for a in ADAPTATIONS if any(c.adaptation == a for c in evaluation.curves)]
    snrs = sorted({c.snr_db for c in evaluation.curves})
    fig, axes = _grid(plt, max(1, len(envs)), max(1, len(adaptations)))
    for i, env in enumerate(envs):
        for j, adaptation in enumerate(adaptations):
            ax = axes[i][j]
            for c in evaluation.curves:
                if (c.environment, c.adaptation) != (env, adaptation):
                    continue
                style = _SNR_STYLES[snrs.index(c.snr_db) % len(_SNR_STYLES)]
                ax.plot(grid, 100 * np.asarray(c.accuracy), color=_method_color(c.method), linestyle=style,
                        label=f"{c.method}, {c.snr_db:g} dB")
            fixed = evaluation.settings.fixed_tau.get(adaptation)
            if fixed is not None:
                ax.axvline(fixed, color="0.4", linestyle=":", linewidth=1)
            ax.set_title(f"{env} - {adaptation}", fontsize=10)
            ax.grid(alpha=0.3)
            if i == len(envs) - 1:
                ax.set_xlabel("tau")
            if j == 0:
                ax.set_ylabel("mean test accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=8, loc="center right", title="method, SNR", title_fontsize=8)
    fig.suptitle("Accuracy vs tau on the test folds (dotted: the paper's fixed tau; peaks are optimistic)", fontsize=11)
    return _save(fig, plt, path, right=0.86 if handles else 1.0)


def methods_summary(evaluation: Evaluation, path: Path) -> Path:
    """Every method side by side: mean accuracy over environments and SNRs, one bar per column of
    :data:`proto_index.evaluation.tables.SUMMARY_CELLS` that it has (no tau peeks at the test folds)."""
    from proto_index.evaluation.tables import SUMMARY_CELLS, method_summary

    plt = _pyplot()
    methods, values = method_summary(evaluation)
    columns = [j for j in range(len(SUMMARY_CELLS)) if any(row[j] is not None for row in values)]
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(methods) * max(1, len(columns)) / 2 + 1.6))
    height = 0.8 / max(1, len(columns))
    y = np.arange(len(methods))
    for i, j in enumerate(columns):
        adaptation, rule = SUMMARY_CELLS[j]
        acc = [np.nan if (v := row[j]) is None else 100 * v for row in values]
        style = _ADAPT_STYLE[adaptation]
        ax.barh(y + (i - (len(columns) - 1) / 2) * height, acc, height, color=style["color"],
                alpha=0.45 if rule == "auto" or adaptation == "audio-oracle" else 0.9,
                hatch="//" if rule == "auto" else None, label=f"{adaptation} ({rule} tau)" if adaptation != "none" else "none")
    ax.set_yticks(y, methods, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean accuracy (%) over environments and SNRs")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06 * 17 / max(len(methods), 1)), ncol=3)
    ax.set_title("Every method side by side (tau calibrated on training folds, or label-free)", fontsize=11)
    return _save(fig, plt, path)


def _save(fig, plt, path: Path, right: float = 1.0) -> Path:
    path = Path(path)
    fig.tight_layout(rect=(0, 0, right, 1))
    with output_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
