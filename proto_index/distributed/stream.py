"""A Ray Data run's output pulled through a watchdog, so losing nodes never leaves the driver waiting forever.

Ray retries the tasks of a lost node elsewhere (and rebuilds the output blocks that were stored on
it), so losing a node is survivable as long as another live node has the resources of one task.
When none has (e.g. the only GPU node, or a head that runs no tasks plus its one worker), Ray Data
waits for resources indefinitely, as an autoscaler might add a node. :func:`watched` waits too, but
only ``capacity_wait_s`` seconds from the moment no live node could run a task, then raises
:class:`~proto_index.errors.ClusterError`; whatever the caller committed before stays committed.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from proto_index.errors import ClusterError

POLL_S = 1.0
"""How often the driver checks the cluster while no output arrives."""


def can_run_a_task(nodes: list[dict], cpus: float, gpus: float) -> bool:
    """Whether a live node among ``nodes`` (as :func:`ray.nodes` lists them) has ``cpus`` CPUs and ``gpus`` GPUs."""
    for node in nodes:
        have = node.get("Resources") or {}
        if node.get("Alive") and have.get("CPU", 0.0) >= cpus and have.get("GPU", 0.0) >= gpus:
            return True
    return False


def watched(source: Iterable, capacity: Callable[[], bool], capacity_wait_s: float,
            need: str, clock: Callable[[], float] = time.monotonic, poll_s: float = POLL_S) -> Iterator:
    """The items of ``source`` (consumed in a thread), failing once ``capacity()`` has been False
    for ``capacity_wait_s`` seconds without an item arriving. ``need`` says what a task needs."""
    items: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    pump = threading.Thread(target=_pump, args=(source, items, stop), daemon=True, name="proto-index-ray-output")
    pump.start()
    lost_since = None
    try:
        while True:
            try:
                kind, value = items.get(timeout=poll_s)
            except queue.Empty:
                if capacity():
                    lost_since = None
                    continue
                now = clock()
                lost_since = now if lost_since is None else lost_since
                if now - lost_since >= capacity_wait_s:
                    raise ClusterError(
                        f"no live Ray node has the resources of one task ({need}) since {capacity_wait_s:g} s "
                        "(its nodes were lost); what was committed stays: rerun when nodes are back") from None
                continue
            lost_since = None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _pump(source: Iterable, items: queue.Queue, stop: threading.Event) -> None:
    """Move ``source``'s items into ``items`` until it ends, fails, or the consumer has stopped."""
    def put(entry) -> bool:
        while not stop.is_set():
            try:
                items.put(entry, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    it = iter(source)
    try:
        for item in it:
            if not put(("item", item)):
                return  # the consumer gave up
    except BaseException as e:  # noqa: BLE001  handed to the consumer, who raises it
        put(("error", e))
    else:
        put(("end", None))
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a generator's close ends its work (Ray Data stops the run)
