"""The `proto-index` command line: a thin layer over ``proto_index.Store``."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional


import typer
from typer.core import TyperGroup

from proto_index.cli import annotate as annotate_cmd
from proto_index.cli import classes as classes_cmd
from proto_index.cli import dataset as dataset_cmd
from proto_index.cli import env as env_cmd
from proto_index.cli import export as export_cmd
from proto_index.cli import maintenance as maintenance_cmd
from proto_index.cli import evaluate as evaluate_cmd
from proto_index.cli import hints
from proto_index.cli import prototypes as prototypes_cmd
from proto_index.cli import report as report_cmd
from proto_index.cli import serve as serve_cmd
from proto_index.cli.common import (
    DEFAULT_STORE_PATH,
    DEFAULT_DECODER,
    BatchOption,
    Decoder,
    Executor,
    DecoderOption,
    DeviceOption,
    ExecutorOption,
    HopOption,
    RayActorGpusOption,
    RayAddressOption,
    PrecisionOption,
    QuietOption,
    StoreOption,
    WaitOption,
    WorkersOption,
    executor_options,
    open_store,
)
from proto_index.core.drift import DEFAULT_WEIGHT as DEFAULT_DRIFT_WEIGHT
from proto_index.options import (
    DEFAULT_COMMIT_WINDOWS,
    DEFAULT_HOP_S,
    DEFAULT_PUBLISH_WINDOWS,
    EmbedOptions,
    IngestOptions,
    ScoringOptions,
)
from proto_index.cli.output import BadUsage, BarProgress, echo_beside, echo_json, error, say, shown
from proto_index.cli.listing import echo_items
from proto_index.cli.records import JsonOption, hit_record, info_record

from proto_index.api import Store
from proto_index.atomic import is_stdout
from proto_index.errors import InvalidInput, ProtoIndexError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FILES_FAILED = 3


class ErrorsAsMessages(TyperGroup):
    """Turns the library's domain errors into one line on stderr and exit status 1 (no traceback)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BadUsage as e:
            error(str(e))
            raise typer.Exit(EXIT_USAGE) from None
        except ProtoIndexError as e:
            error(hints.message(e))
            raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    cls=ErrorsAsMessages,
    no_args_is_help=True,
    add_completion=False,
    help="Classify environmental sound archives with LAION-CLAP prototypes (zero-shot or TGAP) "
    "and per-environment background subtraction.\n\n"
    "Exit status: 0 done, 1 error (nothing or part done, see message), 2 bad usage, "
    "3 done but some files could not be read, 4 verify found problems.",
)
app.add_typer(classes_cmd.app, name="classes")
app.add_typer(prototypes_cmd.app, name="prototypes")
app.add_typer(env_cmd.app, name="env")
app.command("verify")(maintenance_cmd.verify)
app.command("remove")(maintenance_cmd.remove)
app.command("reindex")(maintenance_cmd.reindex)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("calibrate")(evaluate_cmd.calibrate)
app.command("gap")(evaluate_cmd.gap)
app.command("report")(report_cmd.report)
app.command("annotate")(annotate_cmd.annotate)
app.command("export")(export_cmd.export)
app.command("serve")(serve_cmd.serve)


def _model_names() -> list[str]:
    from proto_index.embed.registry import MODEL_NAMES

    return list(MODEL_NAMES)


@app.command()
def init(
    store: StoreOption = DEFAULT_STORE_PATH,
    model: Annotated[Optional[str], typer.Option(help="clap-fusion (the paper's; the default, downloaded once), clap, clap-tiny-demo (offline, knows only generated sounds), clap-tiny-fair (offline, as clap-tiny-demo but heads trained on isolated sources, as CLAP was), clap-tiny-random (offline, random weights), clap-fusion-tiny-random, birdnet (BirdNET V2.4, offline, audio only: 3 s windows, no text prompts; needs proto-index[birdnet]).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="A LAION-CLAP checkpoint file (else downloaded once into the user cache).")] = None,
    tokenizer_dir: Annotated[Optional[Path], typer.Option(help="Folder with roberta-base vocab.json and merges.txt (clap, clap-fusion).")] = None,
    device: DeviceOption = None,
    vector_dtype: Annotated[str, typer.Option(help="How exact vectors are kept on disk: float32, or float16 (half the size).")] = "float32",
    discard_old_files: Annotated[bool, typer.Option("--discard-old-files", help="Delete the vector and index files of an earlier store whose catalog.sqlite is gone (else init refuses).")] = False,
):
    """Create a store bound to one embedding model.

    \b
    Examples:
      proto-index init                                     # clap-fusion, downloaded once (~2 GB)
      proto-index init --model clap-fusion --checkpoint 630k-audioset-fusion-best.pt --tokenizer-dir roberta-base/
      proto-index init --model clap-tiny-demo              # offline, trained on generated sounds only (demos)
      proto-index init --model birdnet                     # BirdNET V2.4, offline, audio only (pip install 'proto-index[birdnet]')
    """
    if model is None:
        from proto_index.embed.registry import DEFAULT_MODEL

        model = DEFAULT_MODEL
        if checkpoint is None:
            typer.echo(f"no --model given: using {model}, the paper's LAION-CLAP model; its checkpoint (about 2 GB) "
                       "and tokenizer files are downloaded once into the user cache unless already there. "
                       "Offline: pass --checkpoint FILE --tokenizer-dir DIR, or --model clap-tiny-demo for a demo.",
                       err=True)
    s = Store.init(store, model=model, checkpoint=checkpoint, tokenizer_dir=tokenizer_dir, device=device, vector_dtype=vector_dtype,
                   discard_old_files=discard_old_files)
    typer.echo(f"created store {s.path} bound to {s.identity.describe()}")


@app.command()
def ingest(
    paths: Annotated[List[Path], typer.Argument(help="Audio files and folders (walked recursively).")],
    store: StoreOption = DEFAULT_STORE_PATH,
    batch_size: BatchOption = None,
    device: DeviceOption = None,
    quiet: QuietOption = False,
    wait: WaitOption = 0.0,
    commit_windows: Annotated[int, typer.Option(min=1, hidden=True, help="Windows per catalog transaction.")] = DEFAULT_COMMIT_WINDOWS,
    publish_windows: Annotated[int, typer.Option(min=1, hidden=True, help="New windows between index publications.")] = DEFAULT_PUBLISH_WINDOWS,
    precision: PrecisionOption = None,
    hop: HopOption = DEFAULT_HOP_S,
    workers: WorkersOption = None,
    decoder: DecoderOption = Decoder(DEFAULT_DECODER),
    rehash: Annotated[bool, typer.Option("--rehash", help="Read and hash every file, even those whose path, size and mtime match a stored recording.")] = False,
    executor: ExecutorOption = Executor.local,
    ray_address: RayAddressOption = None,
    ray_actor_gpus: RayActorGpusOption = 0.0,
):
    """Embed audio files into the corpus index. Reruns skip files already stored (by content hash;
    a file whose path, size and mtime are unchanged since it was stored is skipped without reading it).

    Each recording becomes 10 s windows starting every --hop seconds, one vector each. Long
    recordings are decoded in a streaming way (memory stays bounded), while worker threads read,
    hash and decode the next files as the model runs. A file that cannot be read is reported on
    one line, recorded in the catalog (see `info`), and the rest goes on; the exit status is then 3.

    \b
    Examples:
      proto-index ingest recordings/ extra/clip.flac
      proto-index ingest /archive --precision bf16 --hop 5      # ~1.8x faster on CPU; overlapping windows
      proto-index ingest /shared/archive --executor ray --ray-address head:6379 --ray-actor-gpus 1
    """
    run = IngestOptions(wait_s=wait, rehash=rehash, commit_windows=commit_windows, publish_windows=publish_windows)
    s = open_store(store, device, precision)
    with BarProgress(quiet) as bar:
        options = EmbedOptions(hop_s=hop, batch_windows=batch_size, workers=workers, decoder=Decoder(decoder).value)
        report = s.ingest(paths, options=options, run=run,
                          executor=executor_options(executor, ray_address, ray_actor_gpus), progress=bar)
    typer.echo(
        f"added {report.added} files ({report.windows} windows), skipped {report.skipped} already stored, "
        f"{len(report.failed)} failed"
    )
    if report.failed:
        raise typer.Exit(EXIT_SOME_FILES_FAILED)


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What to look for, in words.")],
    k: Annotated[int, typer.Option("-k", min=1, help="How many results.")] = 10,
    store: StoreOption = DEFAULT_STORE_PATH,
    device: DeviceOption = None,
    precision: PrecisionOption = None,
    as_json: JsonOption = False,
):
    """Text-to-audio search over the corpus: prints score, path and window (seconds), tab-separated.

    \b
    Examples:
      proto-index search "a dog barking" -k 5
      proto-index search "a dog barking" --json
    """
    echo_items(open_store(store, device, precision).search(text, k), as_json, hit_record,
               lambda hit: f"{hit.score:.4f}\t{shown(hit.path)}\t{hit.start_s:g}-{hit.end_s:g}")


def _classify_inputs(paths: list[Path] | None, env: str | None, manifest: Path | None) -> Path | list[tuple[Path, str]]:
    """classify's inputs: the --manifest, or each PATH in --env (exactly one of the two ways)."""
    if manifest is not None:
        if env is not None:
            raise BadUsage("give exactly one of --env NAME (with PATHs) or --manifest CSV")
        if paths:
            raise BadUsage("PATHs and --manifest cannot be combined")
        return manifest
    if env is None:
        raise BadUsage("give exactly one of --env NAME (with PATHs) or --manifest CSV")
    if not paths:
        raise BadUsage("no PATH given to classify with --env")
    return [(p, env) for p in paths]


@app.command()
def classify(
    paths: Annotated[Optional[List[Path]], typer.Argument(help="Audio files to classify (or use --manifest).")] = None,
    *,  # the options are keywords, so the required ones need no placeholder default
    prototypes: Annotated[str, typer.Option("--prototypes", "-p", help="Prototype set name (see `prototypes list`).")],
    env: Annotated[Optional[str], typer.Option("--env", help="Environment of every PATH.")] = None,
    manifest: Annotated[Optional[Path], typer.Option(help="CSV with path and environment columns (paths relative to it allowed).")] = None,
    adapt: Annotated[str, typer.Option(help="auto (audio background if the environment has one, else text, else none), audio, text, none.")] = "auto",
    tau: Annotated[Optional[str], typer.Option(help="Subtraction weight in Pf = Ps - tau*Pb (default: per environment, else 0.7 audio / 0.2 text), or auto: estimated without labels from each environment's clips in this run (auto-clip: per clip).")] = None,
    prototype_norm: Annotated[str, typer.Option(help="l2: cosine similarity (the paper's definition); none: raw dot product with un-normalised prototypes (the paper's reference code).")] = "l2",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file, or - for standard output (audacity, parquet-dataset: a folder).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=export_cmd.FORMAT_HELP)] = "csv",
    all_scores: Annotated[bool, typer.Option("--all-scores", help="Add one column per class with its refined score.")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
    batch_size: BatchOption = None,
    device: DeviceOption = None,
    quiet: QuietOption = False,
    per_window: Annotated[bool, typer.Option("--per-window", help="One row per 10 s window (start_s, end_s after path) instead of per file.")] = False,
    transductive: Annotated[bool, typer.Option("--transductive", help="Label-free transductive adaptation (TransCLIP) over each environment's clips of this run, after the background subtraction; score and margin are then class probabilities. Not with parquet-dataset.")] = False,
    drift: Annotated[bool, typer.Option("--drift", help="Drift-augmented scoring (Vo et al. 2026): each class's cosine gains a text-derived bonus when the clip drifts from the class's prompt the way that prompt 'with' the environment's noise does; combines with the background subtraction and --transductive. Needs the model's text tower.")] = False,
    drift_weight: Annotated[float, typer.Option(help="--drift: the bonus's weight.")] = DEFAULT_DRIFT_WEIGHT,
    precision: PrecisionOption = None,
    hop: HopOption = DEFAULT_HOP_S,
    workers: WorkersOption = None,
    decoder: DecoderOption = Decoder(DEFAULT_DECODER),
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write a review report folder (see `report`).")] = None,
    report_per_label: Annotated[int, typer.Option("--report-per-label", min=1, help="With --report: rows shown per environment and label.")] = report_cmd.DEFAULT_PER_LABEL,
    executor: ExecutorOption = Executor.local,
    ray_address: RayAddressOption = None,
    ray_actor_gpus: RayActorGpusOption = 0.0,
    rows_per_file: Annotated[Optional[int], typer.Option("--rows-per-file", min=1, help="With --format parquet-dataset: at most this many rows a part file (default 100,000).", show_default=False)] = None,
):
    """Classify recordings by environment: argmax of Pf = Ps - tau * Pb.

    Writes one row per input: path, environment, adaptation, tau (the one used for that row),
    label, score (refined value of the winner), margin (winner minus runner-up), error. A file's
    vector is the mean of its 10 s window embeddings (windows every --hop seconds; files already
    in the corpus use their stored windows); --per-window instead writes one row per window, with
    its start_s and end_s. Unknown environments or prototype sets and missing files are reported
    before any embedding work starts.

    \b
    Examples:
      proto-index classify rec1.wav rec2.wav -p urban-tgap35 --env park --out labels.csv
      proto-index classify -p urban-tgap35 --manifest archive.csv --out labels.csv --all-scores
      proto-index classify -p urban-tgap35 --manifest archive.csv --tau auto --out labels.csv
      proto-index classify -p urban-zero-shot --manifest archive.csv --transductive --out labels.csv
      proto-index classify -p urban-tgap35 --manifest archive.csv --drift --out labels.csv
      proto-index classify long.flac -p urban-tgap35 --env park --per-window --hop 5 --out windows.csv
      proto-index classify -p urban-tgap35 --manifest archive.csv --per-window --all-scores --out w.csv --report review/
      proto-index classify long.flac -p urban-tgap35 --env park --per-window --format raven --out long.selections.txt
      proto-index classify -p urban-tgap35 --manifest archive.csv --executor ray --format parquet-dataset --out labels/

    --format parquet-dataset: --out is a folder of Parquet parts partitioned by environment, written
    as results arrive; rerun the same command to resume after a crash (see docs/cluster.md).
    """
    from proto_index.outputs.exports import FORMATS, check_format
    from proto_index.outputs.partitioned import DATASET_FORMAT

    if fmt not in (*FORMATS, DATASET_FORMAT):
        raise typer.BadParameter(f"choose one of {', '.join((*FORMATS, DATASET_FORMAT))}", param_hint="--format")
    check_format("parquet" if fmt == DATASET_FORMAT else fmt)
    inputs = _classify_inputs(paths, env, manifest)
    try:
        scoring = ScoringOptions(adapt=adapt, tau=tau, prototype_norm=prototype_norm, per_window=per_window,
                                 transductive=transductive, drift=drift, drift_weight=drift_weight)
    except InvalidInput as e:
        raise BadUsage(f"{e} (--adapt, --tau, --prototype-norm, --drift-weight)") from None
    if rows_per_file is not None and fmt != DATASET_FORMAT:
        raise BadUsage("--rows-per-file sizes the parts of --format parquet-dataset only")
    if report is not None and fmt != "csv":
        raise BadUsage("--report reads the classification CSV: use --format csv with it (then `proto-index export`)")
    summary = echo_beside(out)
    if report is not None and is_stdout(out):
        raise BadUsage("--report reads the classification CSV back: give --out a file, not standard output")
    from proto_index.outputs.exports import check_output

    if fmt != DATASET_FORMAT:
        check_output(out, fmt)  # before any model work (a dataset folder: checked before any too)
    if report is not None:
        report_cmd.check_out(report)  # before the model work, not after
    s = open_store(store, device, precision)
    if all_scores and fmt != DATASET_FORMAT:  # a store from before labels were checked: before the model work
        from proto_index.outputs.exports import check_score_labels

        check_score_labels(s.prototype_set(prototypes).labels)
    embedding = EmbedOptions(hop_s=hop, batch_windows=batch_size, workers=workers, decoder=Decoder(decoder).value)
    where = executor_options(executor, ray_address, ray_actor_gpus)
    if fmt == DATASET_FORMAT:
        if dataset_cmd.classify_into_dataset(s, inputs, prototypes, out, rows_per_file, all_scores, quiet,
                                             scoring=scoring, options=embedding, executor=where):
            raise typer.Exit(EXIT_SOME_FILES_FAILED)
        return
    with BarProgress(quiet) as bar:
        result = s.classify(inputs, prototypes, progress=bar, scoring=scoring, options=embedding, executor=where)
    from proto_index.outputs.exports import write_result

    write_result(result, out, fmt, all_scores)
    if per_window:
        failed = {(f.path, f.environment) for f in result.failed}
        done = {(f.path, f.environment) for f in result.files} - failed
        summary(f"classified {len(done)} files ({len(result.files) - len(result.failed)} windows), "
                f"{len(failed)} failed -> {out}")
    else:
        summary(f"classified {len(result.files) - len(result.failed)} files, {len(result.failed)} failed -> {out}")
    summary(f"model: {s.identity.describe()}, kind {s.model_kind}")
    unavailable = 0
    if report is not None:
        catalog = s.report_catalog(prototypes)
        unavailable = report_cmd.make_report(report_cmd.ReportOptions(out, report, report_per_label, catalog=catalog))
    if result.failed or unavailable:
        raise typer.Exit(EXIT_SOME_FILES_FAILED)


@app.command()
def info(store: StoreOption = DEFAULT_STORE_PATH, as_json: JsonOption = False):
    """Show the store's model, corpus counts, prototype sets, environments and failed files.

    \b
    Examples:
      proto-index info --store my-store
      proto-index info --json
    """
    data = open_store(store).info()
    if as_json:
        return echo_json(info_record(data))
    c = data["counts"]
    say(f"store:        {data['store']}")
    say(f"model:        {data['model'].describe()}, kind {data['model_kind']}")
    say(f"corpus:       {c['recordings']} recordings, {c['windows']} windows, {data['corpus_hours']:.2f} h")
    say(f"failed files: {c['failed_files']}")
    for path, why in data["failures"][:20]:
        say(f"  {path}: {why}")
    say(f"class sets:   {c['class_sets']}")
    say(f"prototypes:   {c['prototype_sets']}")
    for ps in data["prototype_sets"]:
        n = f", N={ps.n_neighbours}" if ps.n_neighbours else ""
        say(f"  {ps.name}: {ps.method}{n}, {len(ps.labels)} classes from {ps.class_set}")
    say(f"environments: {c['environments']}")
    for e in data["environments"]:
        say(f"  {env_cmd.describe(e)}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
