"""What the synthetic space must show (issue 3): the claims, at stated margins, on three seeds."""
import numpy as np
import pytest

from proto_index.core.synthetic_space import SpaceConfig, generate
from proto_index.evaluation.protocol import evaluate
from proto_index.options import Settings
from proto_index.evaluation.synthetic_run import experiment_data

SEEDS = (0, 1, 2)


def run(seed, config=SpaceConfig(), methods=("zero-shot", "tgap", "supervised"), adaptations=("none", "text", "audio", "audio-oracle")):
    data = experiment_data(generate(config, per_class=40, n_folds=5, backgrounds_per_env=40, seed=seed))
    return evaluate(data, Settings(methods=methods, adaptations=adaptations))


@pytest.fixture(scope="module")
def default_runs():
    return {seed: run(seed) for seed in SEEDS}


def acc(ev, env, snr, method, adaptation, rule):
    return 100 * ev.score(env, snr, method, adaptation, rule).accuracy


def cells(ev):
    return sorted({(s.environment, s.snr_db, s.method, s.adaptation) for s in ev.scores if s.adaptation != "none"})


@pytest.mark.parametrize("seed", SEEDS)
def test_audio_adaptation_beats_none_at_6_db(default_runs, seed):
    ev = default_runs[seed]
    for env in ("park", "airport"):
        none = acc(ev, env, 6.0, "zero-shot", "none", "none")
        assert acc(ev, env, 6.0, "zero-shot", "audio", "calibrated") > none + 10
        assert acc(ev, env, 6.0, "zero-shot", "audio", "fixed") > none + 10
        # the per-scene oracle is at least as good as the realistic mean profile
        assert acc(ev, env, 6.0, "zero-shot", "audio-oracle", "calibrated") >= acc(ev, env, 6.0, "zero-shot", "audio", "calibrated") - 1


@pytest.mark.parametrize("seed", SEEDS)
def test_held_out_tau_is_within_a_stated_margin_of_the_optimistic_oracle(default_runs, seed):
    """Stated margin: 1.5 points on average over every cell, 4 points in any one (measured: 0.5-0.7, 2.5)."""
    ev = default_runs[seed]
    gaps = [acc(ev, *c, "optimistic") - acc(ev, *c, "calibrated") for c in cells(ev)]
    assert np.mean(gaps) < 1.5
    assert max(gaps) < 4.0


@pytest.mark.parametrize("seed", SEEDS)
def test_label_free_tau_beats_no_adaptation(default_runs, seed):
    ev = default_runs[seed]
    for env in ("park", "airport"):
        for snr in (6.0, 8.0, 10.0):
            none = acc(ev, env, snr, "zero-shot", "none", "none")
            assert acc(ev, env, snr, "zero-shot", "audio", "auto") > none + 10
    # and on average over every cell it is close to the calibrated tau, with no labels at all
    diffs = [acc(ev, *c, "calibrated") - acc(ev, *c, "auto") for c in cells(ev)]
    assert np.mean(diffs) < 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_tgap_beats_text_anchors_when_the_gap_is_large(seed):
    kw = dict(methods=("zero-shot", "tgap"), adaptations=("none", "audio"))
    near, far = run(seed, SpaceConfig(gap=0.0), **kw), run(seed, SpaceConfig(gap=2.0), **kw)

    def advantage(ev, adaptation, rule):
        return np.mean([
            acc(ev, env, snr, "tgap", adaptation, rule) - acc(ev, env, snr, "zero-shot", adaptation, rule)
            for env in ("park", "airport") for snr in (6.0, 8.0, 10.0)
        ])  # fmt: skip

    assert advantage(far, "none", "none") > 15
    assert advantage(far, "audio", "calibrated") > 0
    # with no gap, text anchors are the class centres: TGAP (built from noisy scenes) has nothing to fix
    assert advantage(near, "audio", "calibrated") < 0
    assert advantage(far, "audio", "calibrated") > advantage(near, "audio", "calibrated") + 5
