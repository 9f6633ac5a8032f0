"""The watchdog between Ray Data's output and the driver (no Ray needed): items pass through in order,
a source's error reaches the caller, and a cluster left without a node able to run a task stops the
run with ClusterError once capacity_wait_s has passed, rather than waiting forever."""
import threading

import pytest

from proto_index.distributed.stream import can_run_a_task, watched
from proto_index.errors import ClusterError

NODES = [
    {"Alive": False, "Resources": {"CPU": 8.0, "GPU": 1.0}},  # lost
    {"Alive": True, "Resources": {"CPU": 2.0}},
    {"Alive": True, "Resources": {"CPU": 0.5, "GPU": 4.0}},
]


@pytest.mark.parametrize("cpus, gpus, expected", [(1, 0, True), (2, 0, True), (3, 0, False), (0.5, 1, True),
                                                  (1, 1, False), (0, 0, True)])
def test_a_task_fits_only_on_a_live_node_with_its_cpus_and_gpus(cpus, gpus, expected):
    assert can_run_a_task(NODES, cpus, gpus) is expected


def test_no_live_node_fits_nothing():
    assert can_run_a_task([], 0, 0) is False
    assert can_run_a_task([{"Alive": True}], 1, 0) is False


def test_items_pass_through_in_order_and_the_run_ends():
    assert list(watched(iter(range(5)), lambda: False, 0.0, "1 CPU", poll_s=0.01)) == [0, 1, 2, 3, 4]


def test_an_error_of_the_source_reaches_the_caller_after_its_items():
    def source():
        yield "a"
        raise RuntimeError("task failed")

    got = []
    with pytest.raises(RuntimeError, match="task failed"):
        for item in watched(source(), lambda: True, 0.0, "1 CPU", poll_s=0.01):
            got.append(item)
    assert got == ["a"]


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0  # each look at the clock: one second later
        return self.t


def blocked(release: threading.Event, first=None):
    """A source that yields ``first`` (if any), then waits like a Ray run with no node to run on."""
    if first is not None:
        yield first
    release.wait(10)


def test_lost_capacity_stops_the_run_after_the_wait_not_before():
    release = threading.Event()
    looks = []

    def capacity():
        looks.append(1)
        return False

    got = []
    try:
        with pytest.raises(ClusterError, match=r"no live Ray node has the resources of one task \(1 CPU, 1 GPU\) "
                                               r"since 5 s"):
            for item in watched(blocked(release, "x"), capacity, 5.0, "1 CPU, 1 GPU", clock=Clock(), poll_s=0.01):
                got.append(item)
    finally:
        release.set()
    assert got == ["x"]
    assert len(looks) == 6  # lost at t=1; t=2..5 still waiting; t=6: 5 s without a node -> stop


def test_capacity_that_comes_back_restarts_the_wait():
    release = threading.Event()
    answers = iter([False, False, True] + [False] * 20)
    seen = []

    def capacity():
        seen.append(1)
        return next(answers)

    try:
        with pytest.raises(ClusterError):
            list(watched(blocked(release), capacity, 4.0, "1 CPU", clock=Clock(), poll_s=0.01))
    finally:
        release.set()
    assert len(seen) == 8  # lost at t=1, t=2; back (the wait restarts); lost at t=3 ... t=7: 4 s -> stop


def test_a_source_that_keeps_delivering_is_never_stopped():
    def source():
        for i in range(3):
            threading.Event().wait(0.05)  # slower than a poll: the watchdog looks at the cluster meanwhile
            yield i

    assert list(watched(source(), lambda: True, 0.0, "1 CPU", poll_s=0.01)) == [0, 1, 2]


def test_a_failure_of_the_ray_run_itself_becomes_one_cluster_error_line():
    from types import SimpleNamespace

    from proto_index.distributed.ray_executor import _ray_errors_told

    class RayError(Exception):
        pass

    class NodeDiedError(RayError):
        pass

    fake_ray = SimpleNamespace(exceptions=SimpleNamespace(RayError=RayError))

    def tables():
        yield "t1"
        raise NodeDiedError("node 7 died\n  with a long story")

    got = []
    with pytest.raises(ClusterError, match=r"^the Ray run failed: NodeDiedError: node 7 died$"):
        for t in _ray_errors_told(fake_ray, tables()):
            got.append(t)
    assert got == ["t1"]

    def other():
        raise ValueError("not Ray's")
        yield

    with pytest.raises(ValueError, match="not Ray's"):
        list(_ray_errors_told(fake_ray, other()))
