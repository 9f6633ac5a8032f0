"""``proto-index calibrate`` as one call: labelled clips from a CSV or from the confirmed
annotations, the held-out choice of tau per environment and adaptation, and (``save``) each
chosen tau stored on its environment, where ``classify`` then uses it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from proto_index.core.tau import DEFAULT_GRID, as_grid
from proto_index.errors import InvalidInput
from proto_index.evaluation.tau_selection import Calibration

if TYPE_CHECKING:
    import numpy as np

    from proto_index.store.views import EnvironmentView
    from proto_index.store.storage import Storage


class CalibratingStore(Protocol):
    """What :func:`run_calibration` asks of a store (:class:`proto_index.Store` is one): the layer
    above evaluation hands it in, so evaluation never imports the API."""

    def calibrate(self, manifest: str | Path, prototypes: str, grid=None, folds: int = 5, seed: int = 0,
                  prototype_norm: str = "l2") -> list: ...

    def calibrate_from_annotations(self, prototypes: str, grid=None, folds: int = 5, seed: int = 0,
                                   prototype_norm: str = "l2") -> list: ...

    def set_environment_tau(self, name: str, audio: float | None = None,
                            text: float | None = None) -> EnvironmentView: ...


@dataclass(frozen=True)
class CalibrateOptions:
    prototypes: str
    grid: tuple[float, ...] = DEFAULT_GRID
    folds: int = 5
    seed: int = 0
    prototype_norm: str = "l2"
    save: bool = False  # store each chosen tau on its environment


def run_calibration(store: CalibratingStore, options: CalibrateOptions, manifest: str | Path | None = None) -> list[Calibration]:
    """Calibrate on ``manifest`` (CSV ``path,environment,label``) or, when it is None, on the
    confirmed annotations that name an environment; with ``options.save``, store every choice
    (``c.choice.tau`` on ``c.environment`` for ``c.adaptation``)."""
    o = options
    if manifest is None:
        results = store.calibrate_from_annotations(o.prototypes, o.grid, o.folds, o.seed, o.prototype_norm)
    else:
        results = store.calibrate(manifest, o.prototypes, o.grid, o.folds, o.seed, o.prototype_norm)
    if o.save:
        for c in results:
            store.set_environment_tau(c.environment, **{c.adaptation: c.choice.tau})
    return results


def calibrate_manifest(storage: "Storage", embed_audio: Callable[[Sequence[Path]], "np.ndarray"], manifest: Path,
                       prototypes: str, grid, folds: int, seed: int, prototype_norm: str) -> list:
    """``Store.calibrate``: the labelled clips of a CSV (``path,environment,label``), embedded now
    by ``embed_audio`` (one vector per file)."""
    from proto_index.evaluation.tau_selection import calibrate
    from proto_index.inputs.manifest import read_manifest

    grid = _grid(grid)  # before the clips are embedded
    rows = read_manifest(manifest)
    if any(not r.extra.get("label") for r in rows):
        raise InvalidInput(f"{manifest}: every row needs a label (columns path,environment,label)")
    protos = _prototypes(storage, prototypes)
    envs = _environments(storage, {r.environment for r in rows})
    vectors = embed_audio([r.path for r in rows])
    return calibrate(
        protos, envs, vectors, [r.environment for r in rows], [r.extra["label"] for r in rows],
        grid, folds, seed, prototype_norm,
    )


def calibrate_annotations(storage: "Storage", prototypes: str, grid, folds: int, seed: int,
                          prototype_norm: str) -> list:
    """``Store.calibrate_from_annotations``: the confirmed annotations that name an environment."""
    from proto_index.evaluation.tau_selection import calibrate
    from proto_index.usecases.annotations import confirmed

    grid = _grid(grid)
    conf = confirmed(storage)
    named = [(i, env) for i, env in enumerate(conf.environments) if env]
    keep = [i for i, _ in named]
    if not keep:
        raise InvalidInput("no confirmed annotation names an environment; annotate a decisions CSV with an environment column")
    protos = _prototypes(storage, prototypes)
    envs = _environments(storage, {env for _, env in named})
    return calibrate(
        protos, envs, conf.vectors[keep], [env for _, env in named], [conf.labels[i] for i in keep],
        grid, folds, seed, prototype_norm,
    )


def _grid(grid) -> tuple[float, ...]:
    """The tau grid (default :data:`DEFAULT_GRID`), finite and ascending, else :class:`InvalidInput`."""
    try:
        return DEFAULT_GRID if grid is None else tuple(float(t) for t in as_grid(grid))
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"tau grid: {e}") from None


def _prototypes(storage: "Storage", name: str):
    from proto_index.store.views import get_prototype_set, prototype_set_view

    with storage.session() as s:
        return prototype_set_view(s, get_prototype_set(s, name), with_neighbours=False)


def _environments(storage: "Storage", names) -> dict[str, "EnvironmentView"]:
    from proto_index.store.views import environment_view, get_environment

    with storage.session() as s:
        return {name: environment_view(get_environment(s, name), storage.identity.dim) for name in sorted(names)}
