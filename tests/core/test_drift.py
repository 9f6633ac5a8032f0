"""Drift-augmented scoring (proto_index.core.drift): directions, the bonus's geometry, a decision it
flips, and the noise-conditioned prompts."""
from __future__ import annotations

import numpy as np
import pytest

from proto_index.core.drift import conditioned_prompts, drift_bonus, drift_directions, drift_profiles
from proto_index.core.profiles import cosine_profiles, l2_normalize

E = np.eye(4)


def test_direction_is_the_unit_mean_of_the_conditioned_displacements():
    conditioned = np.stack([[E[0] + E[1], E[0] + E[2]]])  # normalised inside
    expected = l2_normalize(((E[0] + E[1]) / np.sqrt(2) - E[0] + (E[0] + E[2]) / np.sqrt(2) - E[0]) / 2)
    np.testing.assert_allclose(drift_directions(E[:1], conditioned)[0], expected, atol=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        drift_directions(E[:2], conditioned)


def test_bonus_is_the_cosine_of_the_displacement_with_the_direction():
    # z at 45 degrees from the anchor towards the drift direction: z - C makes 22.5 degrees with it
    z = l2_normalize(E[0] + E[1])
    assert drift_bonus(z, E[:1], E[1:2])[0, 0] == pytest.approx(np.cos(np.pi / 8), abs=1e-12)
    assert drift_bonus(z, E[:1], -E[1:2])[0, 0] == pytest.approx(-np.cos(np.pi / 8), abs=1e-12)
    assert drift_bonus(E[0], E[:1], E[1:2])[0, 0] == 0.0  # on the anchor: no displacement, no bonus


def test_bonus_breaks_a_tie_towards_the_class_whose_drift_the_clip_follows():
    anchors = np.stack([E[0], E[1]])
    z = l2_normalize(E[0] + E[1] + 0.5 * E[2])  # equally close to both classes, moved along e2
    directions = np.stack([E[2], E[3]])         # class 0 drifts along e2 in this noise, class 1 along e3
    ps = cosine_profiles(z[None], anchors)
    assert ps[0, 0] == pytest.approx(ps[0, 1])
    s = drift_profiles(ps, z[None], anchors, directions, weight=0.1)
    assert s[0, 0] > s[0, 1]
    np.testing.assert_allclose(s - ps, 0.1 * drift_bonus(z, anchors, directions), atol=1e-15)
    assert drift_profiles(ps[0], z, anchors, directions).shape == (2,)


def test_conditioned_prompts_put_the_phrase_after_the_label():
    out = conditioned_prompts(["This is a sound of dog bark", "siren"], ["dog bark", "siren"], ["rain", "traffic"])
    assert out == [["This is a sound of dog bark with rain", "This is a sound of dog bark with traffic"],
                   ["siren with rain", "siren with traffic"]]
    with pytest.raises(ValueError, match="does not contain its label"):
        conditioned_prompts(["a sound"], ["dog"], ["rain"])
    with pytest.raises(ValueError, match="at least one noise phrase"):
        conditioned_prompts(["dog"], ["dog"], [])
