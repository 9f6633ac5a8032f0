"""`proto-index verify | remove | reindex`: keeping a store healthy."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from proto_index.cli.output import BadUsage
from proto_index.core.index_plan import GiB
from proto_index.cli.common import DEFAULT_STORE_PATH, StoreOption, WaitOption, open_store
from proto_index.cli.output import say

EXIT_PROBLEMS = 4


def verify(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed (interrupted writes, stale index, broken rows).")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
    wait: WaitOption = 0.0,
):
    """Check that the catalog, the exact vector file and the index agree.

    Exit status 4 when problems remain (after --repair: when it could not fix them).

    \b
    Examples:
      proto-index verify
      proto-index verify --repair
    """
    report = open_store(store).verify(repair, wait)
    for line in report.problems:
        say(f"problem: {line}")
    for line in report.repaired:
        say(f"repaired: {line}")
    for line in report.remaining:
        say(f"still: {line}")
    for line in report.notes:
        say(line)
    if not report.ok:
        raise typer.Exit(EXIT_PROBLEMS)
    typer.echo("ok" if not report.problems else "ok after repair")


def remove(
    paths: Annotated[List[Path], typer.Argument(help="Files or folders as ingested (a file that still exists also matches by content).")],
    store: StoreOption = DEFAULT_STORE_PATH,
    wait: WaitOption = 0.0,
):
    """Remove recordings from the catalog and the index.

    Their vector rows stay in the vector file until `reindex --compact`.

    \b
    Example:
      proto-index remove recordings/2019/ recordings/bad_take.wav
    """
    n = open_store(store).remove(paths, wait)
    typer.echo(f"removed {n} recordings")


def reindex(
    index: Annotated[Optional[str], typer.Option("--index", help="auto (by size and memory budget), Flat, or a FAISS factory IVF<nlist>,PQ<m>; remembered.")] = None,
    memory_budget_gb: Annotated[Optional[float], typer.Option("--memory-budget-gb", help="Memory the index may use when chosen automatically (default 2).")] = None,
    compact: Annotated[bool, typer.Option("--compact", help="First drop the vector rows of removed recordings.")] = False,
    store: StoreOption = DEFAULT_STORE_PATH,
    wait: WaitOption = 0.0,
):
    """Rebuild the index from the exact vectors (e.g. to compress a grown corpus).

    \b
    Examples:
      proto-index reindex                       # the automatic choice for the corpus size
      proto-index reindex --index IVF4096,PQ64
      proto-index reindex --compact
    """
    if memory_budget_gb is not None and not (math.isfinite(memory_budget_gb) and memory_budget_gb * GiB >= 1):
        raise BadUsage(f"--memory-budget-gb must be a positive number of gigabytes, not {memory_budget_gb!r}")
    budget = None if memory_budget_gb is None else int(memory_budget_gb * GiB)
    built = open_store(store).reindex(index, budget, compact, wait)
    typer.echo(f"index: {built.description}, {built.ntotal} vectors")
