"""``proto-index calibrate`` as one call: labelled clips from a CSV or from the confirmed
annotations, the held-out choice of tau per environment and adaptation, and (``save``) each
chosen tau stored on its environment, where ``classify`` then uses it."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from proto_index.core.tau import DEFAULT_GRID, as_grid
from proto_index.errors import InvalidInput
from proto_index.evaluation.tau_selection import Calibration
from proto_index.options.evaluation import CalibrateOptions

if TYPE_CHECKING:
    from proto_index.engine.model import LazyEncoder
    from proto_index.store.views import EnvironmentView
    from proto_index.store.storage import Storage


def run_calibration(storage: "Storage", model: "LazyEncoder", options: CalibrateOptions,
                    manifest: str | Path | None = None) -> list[Calibration]:
    """Calibrate on ``manifest`` (CSV ``path,environment,label``, its clips embedded now with
    ``model``) or, when it is None, on the stored window vectors of the confirmed annotations that
    name an environment; with ``options.save``, store every choice (``c.choice.tau`` on
    ``c.environment`` for ``c.adaptation``). Every input is checked before the model loads."""
    from proto_index.evaluation.tau_selection import calibrate

    o = options
    grid = _grid(o.grid)  # before the clips are embedded
    if manifest is None:
        vectors, environment_of, labels = _annotated(storage)
        protos, envs = _views(storage, o.prototypes, environment_of)
    else:
        from proto_index.inputs.manifest import read_manifest
        from proto_index.usecases.classify import embed_audio

        rows = read_manifest(Path(manifest))
        if any(not r.extra.get("label") for r in rows):
            raise InvalidInput(f"{manifest}: every row needs a label (columns path,environment,label)")
        environment_of, labels = [r.environment for r in rows], [r.extra["label"] for r in rows]
        protos, envs = _views(storage, o.prototypes, environment_of)
        vectors = embed_audio(storage, model.get(), [r.path for r in rows])
    results = calibrate(protos, envs, vectors, environment_of, labels, grid, o.folds, o.seed, o.prototype_norm)
    if o.save:
        from proto_index.usecases.environments import set_tau

        for c in results:
            set_tau(storage, c.environment, **{c.adaptation: c.choice.tau})
    return results


def _annotated(storage: "Storage"):
    """The confirmed annotations that name an environment: their vectors, environments and labels."""
    from proto_index.usecases.annotations import confirmed

    conf = confirmed(storage)
    keep = [i for i, env in enumerate(conf.environments) if env]
    if not keep:
        raise InvalidInput("no confirmed annotation names an environment; annotate a decisions CSV with an environment column")
    return conf.vectors[keep], [conf.environments[i] for i in keep], [conf.labels[i] for i in keep]


def _grid(grid) -> tuple[float, ...]:
    """The tau grid (default :data:`DEFAULT_GRID`), finite and ascending, else :class:`InvalidInput`."""
    try:
        return DEFAULT_GRID if grid is None else tuple(float(t) for t in as_grid(grid))
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"tau grid: {e}") from None


def _views(storage: "Storage", prototypes: str, environments) -> tuple:
    """The prototype set's view and each named environment's (:class:`NotFound` for an unknown one)."""
    from proto_index.store.views import environment_view, get_environment, get_prototype_set, prototype_set_view

    with storage.session() as s:
        protos = prototype_set_view(s, get_prototype_set(s, prototypes), with_neighbours=False)
        envs: dict[str, EnvironmentView] = {
            name: environment_view(get_environment(s, name), storage.identity.dim) for name in sorted(set(environments))}
    return protos, envs
