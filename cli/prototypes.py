"""`proto-index prototypes`: build and inspect class prototypes."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from proto_index.cli.common import DEFAULT_STORE_PATH, DeviceOption, StoreOption, open_store
from proto_index.cli.output import BadUsage, echo_json, say
from proto_index.api import Store
from proto_index.cli.listing import add_list_command
from proto_index.cli.records import JsonOption, prototype_set_detail, prototype_set_record
from proto_index.core.prompt_weights import DEFAULT_TEMPLATES
from proto_index.core.prototypes import DEFAULT_TGAP_N
from proto_index.options import PrototypeInputs, PrototypeOptions
from proto_index.store.views import PrototypeSetView
from proto_index.options.prototypes import DEFAULT_MIN_CONFIRMED, TEXT_METHODS

app = typer.Typer(no_args_is_help=True, help="Prototypes: one vector per class, from text (zero-shot, TGAP), reviews, examples or the model's own classifier.")


@app.command("build")
def build(
    classes: Annotated[str, typer.Argument(help="Class set name.")],
    method: Annotated[str, typer.Option(help="zero-shot (text anchors), tgap (centroid of the N corpus clips nearest each anchor), supervised (centroid of the windows confirmed with `annotate`), blend (supervised, topped up with TGAP neighbours to --min-confirmed members); for any model, with or without a text tower: examples (centroid of each class's examples, --examples) or classifier (centroid of the N corpus windows the model's own classifier scores highest for the labels --mapping maps to the class).")] = "zero-shot",
    n: Annotated[int, typer.Option("--n", min=1, help="tgap and classifier: corpus windows per class.")] = DEFAULT_TGAP_N,
    min_confirmed: Annotated[int, typer.Option(min=1, help="blend: members per class; a class with fewer confirmations borrows the unannotated corpus windows nearest its text anchor.")] = DEFAULT_MIN_CONFIRMED,
    mapping: Annotated[Optional[Path], typer.Option(help="classifier: UTF-8 CSV with columns class,model_label (one row per model label mapped to a class; several per class allowed; the class score of a window is the highest of its labels' scores).", show_default=False)] = None,
    examples: Annotated[Optional[Path], typer.Option(help="examples: UTF-8 CSV with a class column and a path (audio file, relative to the CSV) or window (stored window id) column.", show_default=False)] = None,
    prompt_ensemble: Annotated[bool, typer.Option("--prompt-ensemble", help="zero-shot, tgap: text anchors from several prompt templates (the class set's own and --template, or a default list), weighted without labels by the entropy of the corpus audio's predictions; each prototype's prompt records the weights.")] = False,
    template: Annotated[Optional[list[str]], typer.Option("--template", help="With --prompt-ensemble: a template containing {label} (repeat for more; default: " + "; ".join(DEFAULT_TEMPLATES) + ").", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of the set (default CLASSES-zero-shot, CLASSES-tgapN, CLASSES-supervised, CLASSES-blendK, CLASSES-examples, CLASSES-classifierN; with -ensemble after it for --prompt-ensemble).")] = None,
    replace: Annotated[bool, typer.Option(help="Rebuild a set of the same name.")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
    device: DeviceOption = None,
):
    """Build a prototype set for a class set.

    \b
    Examples:
      proto-index prototypes build urban --method zero-shot
      proto-index prototypes build urban --method tgap --n 35
      proto-index prototypes build urban --method tgap --prompt-ensemble
      proto-index prototypes build urban --method supervised        # after `proto-index annotate`
      proto-index prototypes build urban --method blend --min-confirmed 5
      proto-index prototypes build birds --method classifier --mapping birds-to-birdnet.csv --n 35
      proto-index prototypes build birds --method examples --examples examples.csv
    """
    if template and not prompt_ensemble:
        raise BadUsage("--template adds a template to --prompt-ensemble; give that too")
    ensemble = (tuple(template) if template else DEFAULT_TEMPLATES) if prompt_ensemble else None
    inputs = PrototypeInputs(mapping=mapping, examples=examples, prompt_ensemble=ensemble)
    options = PrototypeOptions(method=method, n=n, name=name, replace=replace, min_confirmed=min_confirmed, inputs=inputs)
    ps = open_store(store, device).build_prototypes(classes, options)
    typer.echo(f"prototype set {ps.name}: {ps.method}, {len(ps.labels)} classes")


def _line(ps: PrototypeSetView) -> str:
    n = f"N={ps.n_neighbours}" if ps.n_neighbours else "-"
    return f"{ps.name}\t{ps.method}\t{n}\t{ps.class_set}\t{len(ps.labels)} classes"


add_list_command(app, "prototypes", "List prototype sets: name, method, N, class set, size (tab-separated).",
                 Store.prototype_sets, prototype_set_record, _line)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Prototype set name.")],
    top: Annotated[int, typer.Option(help="TGAP, classifier, blend: corpus windows to show per class (0 = all).")] = 5,
    store: StoreOption = DEFAULT_STORE_PATH,
    as_json: JsonOption = False,
):
    """Show a prototype set; for TGAP, each class's nearest corpus clips with their cosine to the text
    anchor; for classifier, the corpus windows with the best class scores (the model's own); for
    blend, the windows borrowed.

    \b
    Example:
      proto-index prototypes show urban-tgap35 --top 10
    """
    ps = open_store(store).prototype_set(name)
    if as_json:
        return echo_json(prototype_set_detail(ps, top))
    say(f"{ps.name}: {ps.method} prototypes of class set {ps.class_set}")
    for label, prompt, neighbours in zip(ps.labels, ps.prompts, ps.neighbours):
        say(f"{label}\t\"{prompt}\"" if ps.method in TEXT_METHODS else f"{label}\t{prompt}")
        shown = neighbours if top == 0 else neighbours[:top]
        for rank, nb in enumerate(shown, start=1):
            where = f"{nb.path} @ {nb.start_s:g}s" if nb.path else f"window {nb.window_id} (removed)"
            say(f"  {rank:>3}  {nb.score:.4f}  {where}")
        if len(shown) < len(neighbours):
            typer.echo(f"  ... {len(neighbours) - len(shown)} more (--top 0 shows all)")
