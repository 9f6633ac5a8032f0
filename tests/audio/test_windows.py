"""Window bounds against hand-worked cases and coverage properties."""
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proto_index.audio.windows import iter_windows, window_bounds

W = 480_000


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, [(0, 1)]),
        (47_999, [(0, 47_999)]),  # shorter than min_tail, but the only window
        (W - 1, [(0, W - 1)]),
        (W, [(0, W)]),
        (W + 1, [(0, W)]),  # 1-sample tail dropped
        (W + 47_999, [(0, W)]),  # tail one short of min_tail: dropped
        (W + 48_000, [(0, W), (W, W + 48_000)]),  # tail exactly min_tail: kept
        (2 * W, [(0, W), (W, 2 * W)]),
        (int(2.5 * W), [(0, W), (W, 2 * W), (2 * W, 1_200_000)]),
    ],
)
def test_default_bounds(n, expected):
    assert window_bounds(n) == expected


@pytest.mark.parametrize(
    ("n", "kwargs", "expected"),
    [
        # hop < window: stop at the first window that reaches the end
        (15, dict(window=10, hop=5, min_tail=0), [(0, 10), (5, 15)]),
        (17, dict(window=10, hop=5, min_tail=0), [(0, 10), (5, 15), (10, 17)]),
        (12, dict(window=10, hop=5, min_tail=7), [(0, 10), (5, 12)]),
        (12, dict(window=10, hop=5, min_tail=8), [(0, 10)]),
        (10, dict(window=10, hop=3, min_tail=0), [(0, 10)]),
        (11, dict(window=4, hop=4, min_tail=3), [(0, 4), (4, 8), (8, 11)]),
        (11, dict(window=4, hop=4, min_tail=4), [(0, 4), (4, 8)]),
        # min_tail larger than the window never drops a full window
        (8, dict(window=4, hop=4, min_tail=100), [(0, 4), (4, 8)]),
        # hop > window leaves gaps
        (20, dict(window=4, hop=7, min_tail=1), [(0, 4), (7, 11), (14, 18)]),
    ],
)
def test_custom_bounds(n, kwargs, expected):
    assert window_bounds(n, **kwargs) == expected


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_samples=0), dict(n_samples=-5), dict(n_samples=10, window=0), dict(n_samples=10, hop=0),
     dict(n_samples=10, min_tail=-1)],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        window_bounds(**kwargs)


def test_non_integer_rejected():
    with pytest.raises(TypeError):
        window_bounds(10.0)


@given(
    n=st.integers(1, 400),
    window=st.integers(1, 60),
    hop_fraction=st.floats(0.01, 1.0),
    min_tail=st.integers(0, 80),
)
def test_windows_cover_all_but_a_short_tail(n, window, hop_fraction, min_tail):
    hop = max(1, round(window * hop_fraction))
    bounds = window_bounds(n, window, hop, min_tail)
    assert bounds[0][0] == 0
    assert all(0 <= s < e <= n and e - s <= window for s, e in bounds)
    assert [s for s, _ in bounds] == [i * hop for i in range(len(bounds))]
    # consecutive windows touch or overlap, and none lies inside the one before
    for (_, e0), (s1, e1) in pairwise(bounds):
        assert s1 <= e0 and e1 > e0
    if n <= window:
        assert bounds == [(0, n)]
    last_end = bounds[-1][1]
    assert last_end == n or n - last_end < min(window, min_tail)
    # only the final window can be partial
    assert all(e - s == window for s, e in bounds[:-1])


def test_iter_windows_yields_views():
    wave = np.arange(2 * 25, dtype=np.float32).reshape(25, 2)
    got = list(iter_windows(wave, window=10, hop=10, min_tail=5))
    assert [s for s, _ in got] == [0, 10, 20]
    np.testing.assert_array_equal(got[2][1], wave[20:25])
    assert all(np.shares_memory(v, wave) for _, v in got)


def test_iter_windows_matches_bounds_on_mono():
    wave = np.zeros(W * 2 + 50_000, dtype=np.float32)
    assert [(s, s + len(v)) for s, v in iter_windows(wave)] == window_bounds(len(wave))
