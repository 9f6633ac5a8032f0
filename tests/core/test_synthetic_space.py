"""The synthetic CLAP-like space: deterministic, unit-norm, and shaped the way its docstring says."""
import numpy as np
import pytest

from proto_index.core.gap import modality_gap
from proto_index.core.synthetic_space import (
    SpaceConfig,
    foreground_weight,
    generate,
    make_space,
    mix_scenes,
    sample_backgrounds,
    sample_clips,
)


def cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_seeded_and_unit_norm():
    a, b, c = (generate(per_class=6, n_folds=3, backgrounds_per_env=5, seed=s) for s in (1, 1, 2))
    key = ("park", 6.0)
    np.testing.assert_array_equal(a.scenes[key].vectors, b.scenes[key].vectors)
    np.testing.assert_array_equal(a.space.anchors, b.space.anchors)
    assert not np.allclose(a.scenes[key].vectors, c.scenes[key].vectors)
    for arr in (a.clips.vectors, a.space.anchors, a.space.class_centres, a.backgrounds["airport"], a.scenes[key].vectors):
        np.testing.assert_allclose(np.linalg.norm(arr, axis=-1), 1.0, atol=1e-12)
    assert a.space.env_text.shape == (2, 3, 64)
    assert set(a.scenes) == {(e, s) for e in ("park", "airport") for s in (6.0, 8.0, 10.0)}


def test_folds_are_balanced_per_class():
    space = make_space(SpaceConfig(), 0)
    clips = sample_clips(space, per_class=7, n_folds=3)
    for c in range(10):
        counts = np.bincount(clips.folds[clips.labels == c], minlength=3)
        assert sorted(counts.tolist()) == [2, 2, 3]


def test_the_gap_moves_anchors_off_their_class_centres():
    near = make_space(SpaceConfig(gap=0.0), 0)
    far = make_space(SpaceConfig(gap=2.0), 0)
    np.testing.assert_allclose(near.anchors, near.class_centres, atol=1e-12)
    assert max(cos(a, c) for a, c in zip(far.anchors, far.class_centres)) < 0.6
    # the gap direction is orthogonal to the audio cone, and every anchor leans along it
    assert all(cos(a, far.gap_vector) > 0.5 for a in far.anchors)


def test_environments_resemble_their_confusor_class():
    space = make_space(SpaceConfig(), 0)
    for j, k in enumerate(space.confusors):
        sims = space.class_centres @ space.env_centres[j]
        assert int(np.argmax(sims)) == k


def test_snr_sets_the_foreground_weight():
    assert foreground_weight(10.0, 10.0) == 1.0
    assert foreground_weight(16.0, 10.0) == pytest.approx(10 ** 0.3)
    space = make_space(SpaceConfig(scene_noise=0.0), 0)
    clips = sample_clips(space, per_class=2, n_folds=2)
    bgs = sample_backgrounds(space, 0, 3)
    loud = mix_scenes(space, clips, bgs, snr_db=60.0)
    quiet = mix_scenes(space, clips, bgs, snr_db=-60.0)
    assert min(cos(s, c) for s, c in zip(loud.vectors, clips.vectors)) > 0.999
    assert min(cos(s, bgs[b]) for s, b in zip(quiet.vectors, quiet.background)) > 0.999


def test_tgap_like_centroids_close_the_gap_the_anchors_leave():
    data = generate(SpaceConfig(gap=1.5), per_class=20, n_folds=4, backgrounds_per_env=10, snrs_db=(10.0,))
    scenes = data.scenes[("park", 10.0)].vectors
    from proto_index.core.prototypes import tgap_reference

    protos, _ = tgap_reference(data.space.anchors, scenes, 10)
    report = modality_gap(list(data.space.config.labels), data.space.anchors, protos, scenes, k=10)
    assert report.prototypes.mean_neighbour_cosine > report.anchors.mean_neighbour_cosine + 0.3
    assert report.prototypes.centroid_distance < 0.5 * report.anchors.centroid_distance


def test_templates_and_conditioned_prompts_leave_the_rest_of_the_space_alone():
    import dataclasses

    config = SpaceConfig()
    space = make_space(config, seed=4)
    fewer = make_space(dataclasses.replace(config, templates=2, text_mix=0.3), seed=4)
    for field in ("class_centres", "anchors", "env_centres", "env_text", "confusors", "gap_vector"):
        np.testing.assert_array_equal(getattr(space, field), getattr(fewer, field))  # their own random stream
    k, d = space.anchors.shape
    assert space.templates.shape == (6, k, d) and fewer.templates.shape == (2, k, d)
    np.testing.assert_array_equal(space.templates[0], space.anchors)  # the first template is the one of old
    np.testing.assert_allclose(np.linalg.norm(space.templates, axis=-1), 1.0)
    # "<class> with <environment prompt>": the unit sum of the class anchor and text_mix times the prompt
    e = 1
    expected = space.anchors[2] + 0.7 * space.env_text[e, 1]
    np.testing.assert_allclose(space.conditioned[e, 2, 1], expected / np.linalg.norm(expected), atol=1e-12)
