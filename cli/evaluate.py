"""`proto-index evaluate`, `calibrate` and `gap`: the paper's experiment, tau calibration, the modality gap."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from proto_index.cli.common import DEFAULT_STORE_PATH, DeviceOption, QuietOption, StoreOption, open_store
from proto_index.cli.output import BarProgress, echo_json
from proto_index.cli.records import JsonOption, gap_record
from proto_index.core.adaptation import DEFAULT_TAU
from proto_index.core.prototypes import DEFAULT_TGAP_N
from proto_index.core.tau import AUTO_RULES, DEFAULT_AUTO_RULE, grid_from_spec
from proto_index.errors import InvalidInput

GRID_HELP = "Tau grid: START:STOP:STEP or comma-separated values."


def _grid(spec: str) -> tuple[float, ...]:
    try:
        return grid_from_spec(spec)
    except ValueError as e:
        raise InvalidInput(f"--tau-grid: {e}") from None


def evaluate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for results.csv/.md/.json and the PNG plots.")],
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Use the synthetic CLAP-like embedding space (no audio, no model, no store).")] = False,
    foreground: Annotated[Optional[Path], typer.Option(help="CSV path,label[,fold] of labelled foreground clips.")] = None,
    backgrounds: Annotated[Optional[Path], typer.Option(help="CSV path,environment, or a folder with one subfolder per environment.")] = None,
    snr: Annotated[Optional[List[float]], typer.Option("--snr", help="SNR in dB (LUFS difference, as scaper); repeat. Default 6, 8, 10.")] = None,
    method: Annotated[Optional[List[str]], typer.Option("--method", help="zero-shot, tgap, supervised, or zero-shot/tgap followed by any of -ensemble (entropy-weighted prompt templates), -drift (drift-augmented scoring), -transductive (transductive EM over each test fold), in that order, e.g. tgap-ensemble-transductive; repeat. Default all 17.")] = None,
    adapt: Annotated[Optional[List[str]], typer.Option("--adapt", help="none, text, audio, audio-oracle; repeat. Default all.")] = None,
    tgap_n: Annotated[int, typer.Option(help="TGAP: training-fold scenes averaged per class.")] = DEFAULT_TGAP_N,
    tau_grid: Annotated[str, typer.Option(help=GRID_HELP)] = "0:1.5:0.05",
    tau_audio: Annotated[float, typer.Option(help="The fixed tau for audio backgrounds.")] = DEFAULT_TAU["audio"],
    tau_text: Annotated[float, typer.Option(help="The fixed tau for text backgrounds.")] = DEFAULT_TAU["text"],
    auto_rule: Annotated[str, typer.Option(help=f"Label-free tau rule: {', '.join(AUTO_RULES)}.")] = DEFAULT_AUTO_RULE,
    prototype_norm: Annotated[str, typer.Option(help="l2 (cosine, the paper's definition) or none (raw dot product, as its reference code).")] = "l2",
    folds: Annotated[Optional[int], typer.Option(help="Folds when the data have none (default 10 for audio, 5 synthetic).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the scenes (or of the synthetic space).")] = 0,
    per_class: Annotated[int, typer.Option(help="Synthetic: clips per class.")] = 40,
    backgrounds_per_env: Annotated[int, typer.Option(help="Synthetic: background recordings per environment.")] = 40,
    gap: Annotated[float, typer.Option(help="Synthetic: modality-gap norm.")] = 1.0,
    work: Annotated[Optional[Path], typer.Option(help="Audio: folder for scenes and cached embeddings (default OUT/work).")] = None,
    keep_scenes: Annotated[bool, typer.Option(help="Audio: keep the scene WAVs (about 1 MB each).")] = False,
    ref_db: Annotated[float, typer.Option(help="Audio: background loudness in LUFS (scaper's ref_db).")] = -36.0,
    plots: Annotated[bool, typer.Option(help="Write the PNG plots.")] = True,
    store: StoreOption = DEFAULT_STORE_PATH,
    device: DeviceOption = None,
    quiet: QuietOption = False,
):
    """Reproduce the paper's experiment: accuracy per environment x SNR x method x adaptation x tau rule.

    Audio: each foreground is mixed over a background recording of each environment (10 s scenes,
    onset ~ truncated normal(3 s, 1.5 s) in [0, 6] s, loudness-based SNR), embedded with the
    store's model (nothing is added to the store), and scored with k-fold cross-validation. tau is
    reported fixed, calibrated on training folds only (nested CV), label-free ("auto"), and the
    optimistic best-on-test figure of the paper's reference code, labelled as such.

    \b
    Examples:
      proto-index evaluate --synthetic --out eval-synthetic/
      proto-index evaluate --foreground us8k.csv --backgrounds tau2019/ --out eval/ --store clap-store
    """
    from proto_index.evaluation import experiment
    from proto_index.evaluation.tables import format_text
    from proto_index.options import AudioOptions, RunOptions, SyntheticOptions
    from proto_index.options.evaluation import DEFAULT_SNRS_DB

    settings = experiment.make_settings(method, adapt, tgap_n, _grid(tau_grid), tau_audio, tau_text, auto_rule, prototype_norm)
    run = RunOptions(out, settings, tuple(snr or DEFAULT_SNRS_DB), seed, folds, plots)
    if synthetic:
        if foreground or backgrounds:
            raise InvalidInput("--synthetic takes no --foreground/--backgrounds")
        done = experiment.run_synthetic(run, SyntheticOptions(per_class, backgrounds_per_env, gap))
    else:
        if not (foreground and backgrounds):
            raise InvalidInput("give --foreground CSV and --backgrounds (CSV or folder), or --synthetic")
        audio = AudioOptions(foreground, backgrounds, work, keep_scenes, ref_db)
        with BarProgress(quiet) as bar:
            done = open_store(store, device).evaluate(run, audio, progress=bar)
    typer.echo(format_text(done.evaluation))
    typer.echo("")
    typer.echo("wrote " + ", ".join(p.name for p in done.written) + f" to {out}")


def calibrate(
    manifest: Annotated[Optional[Path], typer.Argument(help="CSV with path, environment and label columns (paths relative to it allowed).")] = None,
    *,  # the options are keywords, so the required ones need no placeholder default
    from_annotations: Annotated[bool, typer.Option("--from-annotations", help="Use the confirmed annotations (`proto-index annotate`) as the labelled clips instead of a CSV.")] = False,
    prototypes: Annotated[str, typer.Option("--prototypes", "-p", help="Prototype set to calibrate for.")],
    tau_grid: Annotated[str, typer.Option(help=GRID_HELP)] = "0:1.5:0.05",
    folds: Annotated[int, typer.Option(min=2, help="Held-out folds (stratified by label, seeded).")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the folds.")] = 0,
    prototype_norm: Annotated[str, typer.Option(help="l2 (cosine) or none (raw dot product).")] = "l2",
    save: Annotated[bool, typer.Option("--save", help="Store each chosen tau on its environment (classify then uses it).")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
    device: DeviceOption = None,
):
    """Choose tau per environment and adaptation from labelled clips, by held-out search over a grid.

    Prints each accuracy-vs-tau curve, the chosen tau, its held-out accuracy (tau chosen on the
    other folds), and the accuracy with the tau in use today and without adaptation.

    \b
    Example:
      proto-index calibrate labelled.csv -p urban-tgap35 --save
      proto-index calibrate --from-annotations -p urban-supervised
    """
    if (manifest is None) == (not from_annotations):
        raise typer.BadParameter("give exactly one of MANIFEST or --from-annotations")
    from proto_index.evaluation.tau_selection import format_calibration
    from proto_index.options import CalibrateOptions

    options = CalibrateOptions(prototypes, _grid(tau_grid), folds, seed, prototype_norm, save)
    results = open_store(store, device).calibrate(None if from_annotations else manifest, options)
    for c in results:
        typer.echo(format_calibration(c))
        typer.echo("")
    for c in results if save else ():
        typer.echo(f"saved tau {c.adaptation}={c.choice.tau:g} on environment {c.environment}")


def gap(
    prototypes: Annotated[str, typer.Argument(help="Prototype set name.")],
    k: Annotated[int, typer.Option("-k", min=1, help="Nearest corpus vectors per class.")] = 10,
    store: StoreOption = DEFAULT_STORE_PATH,
    as_json: JsonOption = False,
):
    """The modality gap of a prototype set against the corpus: text anchors vs prototypes.

    Per class: mean cosine to the K nearest corpus windows, for the text anchor and for the
    prototype; then the means, and the distance from the centroid of each to the corpus audio
    centroid. For a TGAP set the prototypes close the gap the anchors leave.

    \b
    Examples:
      proto-index gap urban-tgap35 -k 10
      proto-index gap urban-tgap35 --json
    """
    method, r = open_store(store).modality_gap(prototypes, k)
    if as_json:
        return echo_json(gap_record(prototypes, method, r))
    typer.echo(f"{prototypes} ({method}) against {r.corpus_size} corpus windows, K={r.k}")
    width = max(len(lbl) for lbl in r.labels + ["class"])
    typer.echo(f"{'class'.ljust(width)}  anchor  prototype")
    for i, label in enumerate(r.labels):
        typer.echo(f"{label.ljust(width)}  {r.anchors.neighbour_cosine[i]:6.3f}  {r.prototypes.neighbour_cosine[i]:9.3f}")
    typer.echo(f"{'mean'.ljust(width)}  {r.anchors.mean_neighbour_cosine:6.3f}  {r.prototypes.mean_neighbour_cosine:9.3f}")
    typer.echo(
        f"centroid distance to the corpus audio centroid: anchors {r.anchors.centroid_distance:.3f}, "
        f"prototypes {r.prototypes.centroid_distance:.3f}"
    )
