"""Choosing the FAISS index for a corpus: a pure function of (vector count, dimension, memory budget).

Exact search (``Flat``) while the vectors fit the budget; beyond it an inverted file with product
quantisation (``IVF{nlist},PQ{m}``) whose candidates are re-ranked with the exact vectors kept on
disk, so recall stays high while the index needs ``m + 8`` bytes per vector instead of ``4 * dim + 8``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

GiB = 1 << 30
DEFAULT_MEMORY_BUDGET = 2 * GiB
ID_BYTES = 8  # an int64 id per vector in the id map / inverted lists
TRAIN_POINTS_PER_CENTROID = 40  # FAISS warns below 39 points per k-means centroid
PQ_CENTROIDS = 256  # 8-bit codes


@dataclass(frozen=True)
class IndexPlan:
    """What to build: the factory string, its training sample size and its search settings.

    ``rerank`` is how many candidates per requested neighbour the compressed index returns before
    exact re-ranking (1 = the index is exact).
    """

    factory: str
    bytes_per_vector: int
    train_size: int
    nprobe: int
    rerank: int

    @property
    def exact(self) -> bool:
        return self.factory == "Flat"

    def memory_bytes(self, n_vectors: int) -> int:
        return n_vectors * self.bytes_per_vector


def nprobe_for(nlist: int) -> int:
    """Inverted lists an IVF index with ``nlist`` lists visits per query: 1/32 of them, at least 16."""
    return max(16, nlist // 32)


def flat_plan(dim: int) -> IndexPlan:
    return IndexPlan("Flat", 4 * dim + ID_BYTES, 0, 1, 1)


def ivfpq_plan(n_vectors: int, dim: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> IndexPlan:
    """IVF-PQ sized for ``n_vectors``: about 4*sqrt(n) lists, the widest PQ code that fits the budget."""
    nlist = 2 ** round(math.log2(max(4 * math.sqrt(max(n_vectors, 1)), 64)))
    nlist = int(min(max(nlist, 64), 65_536))
    m = _pq_width(dim, memory_budget, n_vectors)
    return IndexPlan(
        factory=f"IVF{nlist},PQ{m}",
        bytes_per_vector=m + ID_BYTES,
        train_size=_train_size(n_vectors, nlist),
        nprobe=nprobe_for(nlist),
        rerank=8,
    )


def plan_index(n_vectors: int, dim: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> IndexPlan:
    """Flat while ``n_vectors`` exact vectors fit ``memory_budget`` bytes, else IVF-PQ with re-ranking."""
    if n_vectors < 0 or dim < 1:
        raise ValueError("need n_vectors >= 0 and dim >= 1")
    flat = flat_plan(dim)
    if flat.memory_bytes(n_vectors) <= memory_budget:
        return flat
    ivfpq = ivfpq_plan(n_vectors, dim, memory_budget)
    return ivfpq if n_vectors >= min_train_vectors(ivfpq) else flat  # too few to train: small anyway


def choose_plan(factory: str | None, memory_budget: int | None, n_vectors: int, dim: int) -> IndexPlan:
    """The plan for a store's choice: its ``factory`` (else :func:`plan_index` with ``memory_budget``).

    A chosen factory that ``n_vectors`` cannot train (vectors removed since it was chosen) gives
    way to the automatic plan until the corpus grows: a rebuild never fails for want of vectors.
    """
    if factory:
        plan = plan_from_factory(factory, n_vectors, dim)
        if n_vectors >= min_train_vectors(plan):
            return plan
    return plan_index(n_vectors, dim, DEFAULT_MEMORY_BUDGET if memory_budget is None else memory_budget)


def min_train_vectors(plan: IndexPlan) -> int:
    """Vectors FAISS needs to train ``plan``: as many as the k-means clusters (IVF lists, 256 PQ centroids)."""
    match = _FACTORY.match(plan.factory)
    return 0 if plan.exact or match is None else max(int(match.group(2)), PQ_CENTROIDS)


_FACTORY = re.compile(r"^(Flat|IVF(\d+),PQ(\d+)(x8)?)$")


def plan_from_factory(factory: str, n_vectors: int, dim: int) -> IndexPlan:
    """The plan for a user-chosen factory string (``Flat`` or ``IVF{nlist},PQ{m}``)."""
    match = _FACTORY.match(factory.replace(" ", ""))
    if match is None:
        raise ValueError(f"unsupported index {factory!r}: use Flat or IVF<nlist>,PQ<m> (e.g. IVF4096,PQ64)")
    if match.group(1) == "Flat":
        return flat_plan(dim)
    nlist, m = int(match.group(2)), int(match.group(3))
    if nlist < 1 or m < 1:
        raise ValueError(f"unsupported index {factory!r}: IVF<nlist>,PQ<m> needs nlist and m of at least 1")
    if dim % m:
        raise ValueError(f"PQ{m} needs a dimension divisible by {m}; the model's is {dim}")
    return IndexPlan(f"IVF{nlist},PQ{m}", m + ID_BYTES, _train_size(n_vectors, nlist), nprobe_for(nlist), 8)


def _train_size(n_vectors: int, nlist: int) -> int:
    """Enough points for both k-means (nlist lists, 256 PQ centroids), capped at the corpus."""
    return min(n_vectors, TRAIN_POINTS_PER_CENTROID * max(nlist, PQ_CENTROIDS))


def _pq_width(dim: int, memory_budget: int, n_vectors: int) -> int:
    """The largest sub-quantiser count m (dividing dim, 8-bit codes, m <= dim/4) that fits the budget."""
    candidates = [m for m in (dim // 4, dim // 8, dim // 16, dim // 32) if m >= 1 and dim % m == 0]
    for m in candidates:
        if n_vectors * (m + ID_BYTES) <= memory_budget:
            return m
    return candidates[-1]
