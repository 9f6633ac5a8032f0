"""--executor ray on a simulated two-node cluster (ray.cluster_utils.Cluster: a head and a second node
with its own resources, as separate raylets on this machine). A node removed mid-ingest: the ingest
ends with every file stored exactly once, as a local ingest stores them; the only node able to run
the tasks removed: ClusterError after capacity_wait_s (not a hang), and a rerun once a node is back
completes the store with nothing twice."""
import os

import pytest
from fakes import BandEncoder
from ray_fakes import NODE_LOG_ENV
from ray_local import OBJECT_STORE, corpus, stored_vectors, worker_env  # noqa: F401  (worker_env: autouse)
from store_checks import invariants

from proto_index import Store
from proto_index.errors import ClusterError
from proto_index.options import EmbedOptions, IngestOptions
from proto_index.options import ExecutorOptions
from proto_index.progress import SilentProgress

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.cluster
from ray.cluster_utils import Cluster  # noqa: E402

# A removed node is declared dead after ~1 s of missed health checks (the default is ~15 s).
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
                   "health_check_timeout_ms": 300, "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster(worker_env, tmp_path_factory):  # noqa: F811
    """A head node with one CPU; each test adds (and removes) the second node it needs. The nodes
    start from this process's environment, so their workers take 0.3 s a window and log the node
    each batch ran on (no flag file shared with other runs on the machine)."""
    if ray.is_initialized():
        ray.shutdown()
    log = tmp_path_factory.mktemp("nodes") / "nodes.log"
    env = {"PROTO_INDEX_TEST_SLOW_S": "0.3", NODE_LOG_ENV: str(log)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": OBJECT_STORE, "include_dashboard": False,
        "_system_config": FAST_NODE_DEATH})
    ray.init(address=c.address, log_to_driver=False)
    c.node_log = log
    yield c
    ray.shutdown()
    c.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class RemoveNodeAfter(SilentProgress):
    """Removes ``node`` from ``cluster`` (as if it crashed) when the ``n``-th file's result arrives, or,
    with ``once_it_worked``, at the first result from then on by which the node has done some work
    (on a loaded machine the other node may take the first tasks)."""

    def __init__(self, cluster, node, n: int, once_it_worked: bool = False):
        super().__init__()
        self.cluster, self.node, self.n, self.seen = cluster, node, n, 0
        self.once_it_worked, self.removed_at = once_it_worked, None

    def advance(self, n: int = 1) -> None:
        self.seen += n
        if self.removed_at is not None or self.seen < self.n:
            return
        log = self.cluster.node_log
        if self.once_it_worked and (not log.exists() or self.node.node_id not in log.read_text().split()):
            return
        self.cluster.remove_node(self.node, allow_graceful=False)
        self.removed_at = self.seen


def test_a_node_removed_mid_ingest_still_stores_every_file_once(tmp_path, cluster):
    n = 16
    files = corpus(tmp_path / "c", n, seconds=1.0)
    second = cluster.add_node(num_cpus=2, object_store_memory=OBJECT_STORE, resources={"second_node": 2})
    cluster.wait_for_nodes()
    with Store.init(tmp_path / "local", model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([files])
    with Store.init(tmp_path / "ray", model="fake-bands-slow", encoder=BandEncoder()) as s:
        report = s.ingest([files], executor=ExecutorOptions(kind="ray", files_per_task=2),
                          options=EmbedOptions(batch_windows=1), run=IngestOptions(commit_windows=1),
                          progress=(removal := RemoveNodeAfter(cluster, second, 3, once_it_worked=True)))
    assert removal.removed_at is not None and removal.removed_at < n  # mid ingest, files still to come
    assert second.node_id not in {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert second.node_id in cluster.node_log.read_text().split()  # it did work before it went
    assert (report.added, report.windows, report.skipped, report.failed) == (n, n, 0, [])
    assert invariants(tmp_path / "ray") == n  # verify clean, one vector row and index entry per window
    local, remote = stored_vectors(tmp_path / "local"), stored_vectors(tmp_path / "ray")
    assert remote.keys() == local.keys() and len(remote) == n
    for path in local:
        assert remote[path].shape == local[path].shape == (1, BandEncoder().dim)
        assert abs(remote[path] - local[path]).max() < 1e-6


def test_losing_the_only_node_that_can_run_the_tasks_stops_then_a_rerun_completes(tmp_path, cluster):
    n = 12
    files = corpus(tmp_path / "c", n, seconds=1.0)
    gpu_node = cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=OBJECT_STORE)  # the head has no GPU
    cluster.wait_for_nodes()
    store = tmp_path / "s"
    on_gpus = ExecutorOptions(kind="ray", files_per_task=2, gpus_per_actor=1, capacity_wait_s=2)
    with Store.init(store, model="fake-bands-slow", encoder=BandEncoder()) as s:
        with pytest.raises(ClusterError, match=r"no live Ray node has the resources of one task \(1 CPU, 1 GPU\)"):
            s.ingest([files], executor=on_gpus, options=EmbedOptions(batch_windows=1), run=IngestOptions(commit_windows=1),
                     progress=RemoveNodeAfter(cluster, gpu_node, 2))
    before = invariants(store)
    assert 2 <= before < n
    cluster.add_node(num_cpus=1, num_gpus=1, object_store_memory=OBJECT_STORE)
    cluster.wait_for_nodes()
    with Store.open(store, encoder=BandEncoder()) as s:
        again = s.ingest([files], executor=on_gpus, options=EmbedOptions(batch_windows=1))
    assert (again.added, again.skipped) == (n - before, before)
    assert invariants(store) == n
