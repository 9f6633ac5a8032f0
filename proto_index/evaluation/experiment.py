"""Running the paper's experiment end to end, as ``proto-index evaluate`` does: the settings from
plain options, the data (the synthetic space, or audio through a store's model), the protocol, and
the results files with the parameters that produced them."""
from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from proto_index import __version__
from proto_index.core.adaptation import DEFAULT_TAU
from proto_index.core.prototypes import DEFAULT_TGAP_N
from proto_index.core.synthetic_space import SpaceConfig
from proto_index.core.tau import DEFAULT_AUTO_RULE, DEFAULT_GRID
from proto_index.errors import InvalidInput
from proto_index.evaluation import outputs
from proto_index.evaluation.protocol import ADAPTATIONS, DRIFT_WEIGHT, METHODS, Evaluation, Settings, evaluate
from proto_index.options.evaluation import (  # noqa: F401
    AUDIO_FOLDS,
    DEFAULT_SNRS_DB,
    SYNTHETIC_FOLDS,
    AudioOptions,
    RunOptions,
    SyntheticOptions,
)
from proto_index.evaluation.synthetic_run import synthetic_experiment
from proto_index.progress import Progress

if TYPE_CHECKING:
    from proto_index.engine.model import LazyEncoder
    from proto_index.store.storage import Storage


"""Folds when the data name none: the synthetic space, and foreground CSVs without a fold column."""


def fixed_taus(audio: float = DEFAULT_TAU["audio"], text: float = DEFAULT_TAU["text"]) -> dict[str, float]:
    """The fixed tau of each adaptation: ``audio-oracle`` subtracts an audio background, so it uses the audio tau."""
    return {"text": text, "audio": audio, "audio-oracle": audio}


def make_settings(
    methods: Sequence[str] | None = None,
    adaptations: Sequence[str] | None = None,
    tgap_n: int = DEFAULT_TGAP_N,
    grid: Sequence[float] = DEFAULT_GRID,
    tau_audio: float = DEFAULT_TAU["audio"],
    tau_text: float = DEFAULT_TAU["text"],
    auto_rule: str = DEFAULT_AUTO_RULE,
    prototype_norm: str = "l2",
) -> Settings:
    """Checked :class:`Settings` (None or empty ``methods``/``adaptations``: all); :class:`InvalidInput` if unusable."""
    settings = Settings(
        methods=tuple(methods or METHODS),
        adaptations=tuple(adaptations or ADAPTATIONS),
        tgap_n=tgap_n,
        grid=tuple(grid),
        fixed_tau=fixed_taus(tau_audio, tau_text),
        auto_rule=auto_rule,
        prototype_norm=prototype_norm,
    )
    try:
        settings.check()
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    return settings


@dataclass(frozen=True)
class ExperimentRun:
    evaluation: Evaluation
    parameters: dict  # as written into results.json
    written: list[Path]


def _parameters(run: RunOptions) -> dict:
    return {"proto_index_version": __version__, "snrs_db": list(run.snrs_db), "seed": run.seed, "drift_weight": DRIFT_WEIGHT}


def run_synthetic(run: RunOptions, synthetic: SyntheticOptions = SyntheticOptions()) -> ExperimentRun:
    """The experiment on the synthetic CLAP-like space (no audio, no model, no store); writes the results."""
    config = SpaceConfig(gap=synthetic.gap)
    n_folds = run.folds or SYNTHETIC_FOLDS
    try:
        data = synthetic_experiment(config, synthetic.per_class, n_folds, synthetic.backgrounds_per_env, run.snrs_db, run.seed)
        evaluation = evaluate(data, run.settings)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    parameters = _parameters(run)
    parameters["data"] = {
        "synthetic": {**config.to_dict(), "labels": list(config.labels)},
        "per_class": synthetic.per_class,
        "folds": n_folds,
        "backgrounds_per_env": synthetic.backgrounds_per_env,
    }
    return ExperimentRun(evaluation, parameters, outputs.write_all(evaluation, run.out, parameters, with_plots=run.plots))


def run_audio(storage: "Storage", model: "LazyEncoder", run: RunOptions, audio: AudioOptions,
              progress: Progress | None = None) -> ExperimentRun:
    """The experiment from audio with a store's model (nothing is added to the store); writes the results."""
    from proto_index.evaluation.audio_run import evaluate_audio

    audio = dataclasses.replace(audio, work=audio.work or Path(run.out) / "work")
    evaluation, description = evaluate_audio(storage, model, audio, run.settings, snrs_db=run.snrs_db,
                                              n_folds=run.folds or AUDIO_FOLDS, seed=run.seed, progress=progress)
    parameters = {**_parameters(run), "data": description, "model": storage.identity.describe()}
    return ExperimentRun(evaluation, parameters, outputs.write_all(evaluation, run.out, parameters, with_plots=run.plots))
