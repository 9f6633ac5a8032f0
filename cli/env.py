"""`proto-index env`: environments and their background data."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from proto_index.cli.common import DEFAULT_STORE_PATH, DeviceOption, StoreOption, open_store
from proto_index.api import Store
from proto_index.cli.listing import add_list_command
from proto_index.cli.output import BadUsage, say
from proto_index.cli.records import environment_record
from proto_index.core.tau import finite_tau
from proto_index.store.views import EnvironmentView
from proto_index.options import EnvironmentOptions

app = typer.Typer(no_args_is_help=True, help="Environments (park, airport, ...) and their background profiles.")


def describe(e: EnvironmentView) -> str:
    parts = []
    if len(e.audio_vectors):
        parts.append(f"{len(e.audio_vectors)} background recordings")
    if len(e.text_vectors):
        parts.append(f"text \"{e.description}\"")
    taus = [f"tau {k}={v:g}" for k, v in e.taus.items() if v is not None]
    return f"{e.name}: " + (", ".join(parts + taus) or "no background")


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Environment name, as used in manifests.")],
    text: Annotated[Optional[str], typer.Option(help="Words describing the background, e.g. 'metro station' (default: the name).")] = None,
    audio: Annotated[Optional[List[Path]], typer.Option(help="Background recording or folder (repeat the option).")] = None,
    tau_audio: Annotated[Optional[float], typer.Option(help="This environment's tau with audio backgrounds (default 0.7).")] = None,
    tau_text: Annotated[Optional[float], typer.Option(help="This environment's tau with text backgrounds (default 0.2).")] = None,
    replace: Annotated[bool, typer.Option(help="Redefine an environment of the same name.")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
    device: DeviceOption = None,
):
    """Add an environment. The text background averages the profiles of three prompts about TEXT; the
    audio background averages those of the recordings.

    \b
    Examples:
      proto-index env add park --text "park"
      proto-index env add metro --text "metro station" --audio backgrounds/metro/ --tau-audio 0.6
    """
    for flag, tau in (("--tau-audio", tau_audio), ("--tau-text", tau_text)):
        if tau is not None:
            try:
                finite_tau(tau, flag)
            except ValueError as err:
                raise BadUsage(str(err)) from None
    options = EnvironmentOptions(text=text, audio=tuple(audio or ()), tau_audio=tau_audio, tau_text=tau_text, replace=replace)
    e = open_store(store, device).add_environment(name, options)
    say(describe(e))


add_list_command(app, "env", "List environments with their background data and tau overrides.", Store.environments,
                 environment_record, describe)
