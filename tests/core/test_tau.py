"""Choosing tau: accuracy curves, the choice from a curve, held-out search, the label-free rules."""
import numpy as np
import pytest

from proto_index.core.profiles import refine
from proto_index.core.tau import (
    DEFAULT_GRID,
    TAU_KEYWORDS,
    accuracy_curve,
    auto_tau,
    grid_from_spec,
    held_out_choice,
    parse_tau,
    pick_tau,
    predictions_over_grid,
    tau_projection,
    tau_projection_batch,
)


def naive_winner(row):
    best = 0
    for j, v in enumerate(row):
        if v > row[best]:
            best = j
    return best


def test_accuracy_curve_hand_computed():
    # clip 0 (label 1): Ps (0.6, 0.5), Pb (1, 0): wins class 1 once tau > 0.1
    # clip 1 (label 0): Ps (0.7, 0.2): wins class 0 while 0.7 - tau > 0.2, i.e. tau < 0.5
    ps = np.array([[0.6, 0.5], [0.7, 0.2]])
    pb = np.array([1.0, 0.0])
    curve = accuracy_curve(ps, pb, np.array([1, 0]), [0.0, 0.2, 0.6])
    np.testing.assert_allclose(curve, [0.5, 1.0, 0.5])


def test_curve_matches_naive_loop_with_per_clip_backgrounds():
    rng = np.random.default_rng(3)
    ps, pb, labels = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)), rng.integers(0, 5, 30)
    grid = [0.0, 0.3, 0.9, 1.4]
    preds = predictions_over_grid(ps, pb, grid)
    for t, tau in enumerate(grid):
        expected = [naive_winner([ps[i][j] - tau * pb[i][j] for j in range(5)]) for i in range(30)]
        assert preds[t].tolist() == expected
    curve = accuracy_curve(ps, pb, labels, grid)
    np.testing.assert_allclose(curve, [np.mean(preds[t] == labels) for t in range(4)])


def test_pick_tau_takes_the_middle_of_a_plateau():
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert pick_tau(grid, [0.1, 0.9, 0.9, 0.9, 0.2, 0.1]) == 0.2
    assert pick_tau(grid, [0.1, 0.9, 0.9, 0.9, 0.9, 0.1]) == 0.2  # even count: lower middle
    assert pick_tau(grid, [0.5, 0.4, 0.3, 0.2, 0.1, 0.6]) == 0.5
    with pytest.raises(ValueError, match="one accuracy per tau"):
        pick_tau(grid, [0.1, 0.2])


def test_grid_from_spec():
    assert grid_from_spec("0:1:0.25") == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert grid_from_spec("0:1.5:0.05") == DEFAULT_GRID
    assert grid_from_spec("0.2, 0.7") == (0.2, 0.7)
    for bad in ("0:1:0", "a,b", "0.5,0.2", "0.3,0.3", ""):
        with pytest.raises(ValueError):
            grid_from_spec(bad)


def test_parse_tau():
    assert parse_tau(None) is None
    assert parse_tau("0.35") == 0.35 and parse_tau(0.5) == 0.5
    assert parse_tau("AUTO") == TAU_KEYWORDS["auto"] == "projection-batch"
    assert parse_tau("auto-clip") == "projection"
    for bad in ("often", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_tau(bad)


def test_refine_takes_one_tau_per_clip():
    ps = np.array([[0.9, 0.5], [0.4, 0.6]])
    pb = np.array([0.5, 0.1])
    np.testing.assert_allclose(refine(ps, pb, np.array([0.0, 1.0])), [[0.9, 0.5], [-0.1, 0.5]])


def test_projection_recovers_the_background_weight_exactly():
    pb = np.array([0.30, 0.10, 0.50, 0.20])
    pb_c = pb - pb.mean()
    fg = np.array([1.0, 0.0, 0.0, 0.0])
    fg_c = fg - fg.mean()
    fg_orth = fg_c - (fg_c @ pb_c) / (pb_c @ pb_c) * pb_c  # a foreground the background does not explain
    ps = 0.8 * fg_orth + 0.65 * pb + 0.2  # plus the constant offset every class shares
    assert tau_projection(ps, pb) == pytest.approx(0.65, abs=1e-12)
    # hand-computed: the plain projection of the centred profiles when the foreground is not orthogonal
    ps2 = np.array([0.5, 0.2, 0.4, 0.1])
    num = sum((a - 0.3) * (b - 0.275) for a, b in zip(ps2, pb))
    den = sum((b - 0.275) ** 2 for b in pb)
    assert tau_projection(ps2, pb) == pytest.approx(num / den, abs=1e-12)


def test_projection_is_clipped_and_flat_background_gives_zero():
    pb = np.array([0.0, 1.0, 0.0])
    assert tau_projection(np.array([0.0, -2.0, 0.0]), pb) == 0.0
    assert tau_projection(np.array([0.0, 9.0, 0.0]), pb) == 1.5
    assert tau_projection(np.array([0.2, 0.9, 0.1]), np.array([0.4, 0.4, 0.4])) == 0.0


def test_batch_projection_is_the_projection_of_the_mean_profile():
    rng = np.random.default_rng(4)
    ps, pb = rng.normal(size=(12, 6)), rng.normal(size=6)
    taus = tau_projection_batch(ps, pb)
    assert taus.shape == (12,) and np.all(taus == taus[0])
    assert taus[0] == pytest.approx(np.clip(tau_projection(ps.mean(axis=0), pb), 0, 1.5))
    per_clip_pb = rng.normal(size=(12, 6))
    assert tau_projection_batch(ps, per_clip_pb)[0] == pytest.approx(tau_projection(ps.mean(axis=0), per_clip_pb.mean(axis=0)))
    np.testing.assert_allclose(auto_tau(ps, pb, "projection"), tau_projection(ps, pb))
    with pytest.raises(ValueError, match="unknown tau rule"):
        auto_tau(ps, pb, "guess")


def test_held_out_choice_matches_naive_folds():
    rng = np.random.default_rng(5)
    n, k = 60, 4
    labels = rng.integers(0, k, n)
    pb = rng.normal(size=k)
    ps = np.eye(k)[labels] * 0.3 + 0.8 * pb + rng.normal(scale=0.2, size=(n, k))
    folds = np.arange(n) % 3
    grid = [0.0, 0.4, 0.8, 1.2]
    choice = held_out_choice(ps, pb, labels, folds, grid)
    accs, taus = [], []
    for f in range(3):
        tr, te = folds != f, folds == f
        curve = [np.mean(np.argmax(ps[tr] - t * pb, axis=1) == labels[tr]) for t in grid]
        best = [t for t, a in zip(grid, curve) if a == max(curve)]
        tau = best[(len(best) - 1) // 2]
        taus.append(tau)
        accs.append(np.mean(np.argmax(ps[te] - tau * pb, axis=1) == labels[te]))
    assert choice.fold_taus == tuple(taus)
    assert choice.held_out_accuracy == pytest.approx(np.mean(accs))
    np.testing.assert_allclose(choice.curve, accuracy_curve(ps, pb, labels, grid))
    assert choice.tau == pick_tau(grid, choice.curve)
    assert choice.tau > 0  # the background pulls towards its own classes: subtracting it must help
