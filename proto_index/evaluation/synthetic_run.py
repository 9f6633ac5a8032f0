"""The experiment on the synthetic CLAP-like space (``evaluate --synthetic``): no audio, no model. Pure."""
from __future__ import annotations

from proto_index.core.synthetic_space import SpaceConfig, SyntheticData, generate
from proto_index.evaluation.protocol import Condition, ExperimentData


def experiment_data(data: SyntheticData) -> ExperimentData:
    """The synthetic space's scenes, anchors and backgrounds as the protocol's input."""
    envs = data.space.config.environments
    return ExperimentData(
        labels=list(data.space.config.labels),
        anchors=data.space.anchors,
        text_backgrounds={e: data.space.env_text[j] for j, e in enumerate(envs)},
        audio_backgrounds=dict(data.backgrounds),
        conditions=[
            Condition(env, snr, s.vectors, s.labels, s.folds, s.background) for (env, snr), s in data.scenes.items()
        ],
        templates=data.space.templates,
        conditioned={} if data.space.conditioned is None else {e: data.space.conditioned[j] for j, e in enumerate(envs)},
    )


def synthetic_experiment(
    config: SpaceConfig, per_class: int, n_folds: int, backgrounds_per_env: int, snrs_db, seed: int
) -> ExperimentData:
    return experiment_data(generate(config, per_class, n_folds, backgrounds_per_env, tuple(snrs_db), seed))
