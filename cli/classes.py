"""`proto-index classes`: named lists of class labels."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from proto_index.cli.output import BadUsage
from proto_index.cli.common import DEFAULT_STORE_PATH, StoreOption, open_store
from proto_index.api import Store
from proto_index.cli.listing import add_list_command
from proto_index.cli.records import class_set_record
from proto_index.core.prototypes import DEFAULT_TEMPLATE
from proto_index.options import ClassSetOptions

app = typer.Typer(no_args_is_help=True, help="Class sets: the labels to classify into.")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Name of the class set.")],
    labels_file: Annotated[Optional[Path], typer.Option(help="Text file, one label per line.")] = None,
    label: Annotated[Optional[List[str]], typer.Option("--label", "-l", help="A label (repeat the option).")] = None,
    template: Annotated[str, typer.Option(help="Prompt template; {label} is replaced by each label.")] = DEFAULT_TEMPLATE,
    replace: Annotated[bool, typer.Option(help="Overwrite a class set of the same name.")] = False,
    drop_prototypes: Annotated[bool, typer.Option(
        "--drop-prototypes", help="With --replace: also delete the prototype sets built on the old class set.")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
):
    """Add a class set from --labels-file or repeated --label.

    \b
    Examples:
      proto-index classes add urban --labels-file urbansound8k.txt
      proto-index classes add birds -l "bird song" -l "crow" --template "A recording of {label}"
    """
    if (labels_file is None) == (not label):
        raise BadUsage("give either --labels-file FILE or one or more --label L")
    options = ClassSetOptions(template=template, labels_file=labels_file, replace=replace, drop_prototypes=drop_prototypes)
    cs = open_store(store).add_classes(name, label or (), options)
    typer.echo(f"class set {cs.name}: {len(cs.labels)} labels")
    if cs.dropped_prototypes:
        typer.echo(f"deleted the prototype sets built on the old class set: {', '.join(cs.dropped_prototypes)}")


add_list_command(app, "classes", "List class sets with their labels (tab-separated).", Store.class_sets, class_set_record,
                 lambda cs: f"{cs.name}\t{len(cs.labels)} labels\t{', '.join(cs.labels)}")
