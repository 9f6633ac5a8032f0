"""The audio side of the evaluation: loudness, mixing at an SNR, the scene plan, and reading inputs."""
import math

import numpy as np
import pytest
import soundfile as sf

from proto_index.errors import InvalidInput, NotFound
from proto_index.evaluation import mixing
from proto_index.evaluation.inputs import read_backgrounds, read_foregrounds, stratified_folds
from proto_index.evaluation.soundscapes import ONSET, plan_scenes, safe_name, truncated_normal, write_scenes

SR = 48_000


def sine(freq, amp, seconds, sr=SR):
    t = np.arange(int(round(seconds * sr))) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def test_loudness_of_the_bs1770_reference_tone():
    # BS.1770: a 0 dBFS 997 Hz sine on one channel reads -3.01 LKFS, so amplitude 0.1 reads -23.01
    assert mixing.integrated_loudness(sine(997, 0.1, 2.0), SR) == pytest.approx(-23.01, abs=0.1)
    assert mixing.integrated_loudness(sine(997, 0.2, 2.0), SR) == pytest.approx(-23.01 + 20 * math.log10(2), abs=0.1)


@pytest.mark.parametrize("seconds", [1.0, 0.3, 0.05])
def test_short_clips_are_tiled_to_one_gating_block(seconds):
    # shorter than BS.1770's 400 ms block, pyloudnorm alone refuses; tiled, the level is that of the clip
    long = mixing.integrated_loudness(sine(997, 0.1, 2.0), SR)
    assert mixing.integrated_loudness(sine(997, 0.1, seconds), SR) == pytest.approx(long, abs=0.05)


def test_silence_has_no_loudness():
    with pytest.raises(InvalidInput, match="silent"):
        mixing.integrated_loudness(np.zeros(SR), SR)
    with pytest.raises(InvalidInput, match="empty"):
        mixing.integrated_loudness(np.zeros(0), SR)


def test_mix_places_the_event_at_the_loudness_snr():
    rng = np.random.default_rng(0)
    fg = sine(1500, 0.3, 1.0) * np.hanning(SR)
    bg = rng.normal(scale=0.05, size=int(4.0 * SR))  # shorter than the scene: looped
    m = mixing.mix(fg, bg, SR, snr_db=6.0, onset_s=2.5)
    assert len(m.scene) == 10 * SR and m.peak_gain == 1.0
    placed = m.scene - m.background
    start = int(2.5 * SR)
    np.testing.assert_allclose(placed[:start], 0.0, atol=1e-12)
    np.testing.assert_allclose(placed[start : start + SR], fg * m.foreground_gain, atol=1e-12)
    np.testing.assert_allclose(placed[start + SR :], 0.0, atol=1e-12)
    assert mixing.integrated_loudness(m.background, SR) == pytest.approx(mixing.REF_DB, abs=0.01)
    snr = mixing.integrated_loudness(fg * m.foreground_gain, SR) - mixing.integrated_loudness(m.background, SR)
    assert snr == pytest.approx(6.0, abs=0.01)
    np.testing.assert_array_equal(m.background[: 4 * SR], m.background[4 * SR : 8 * SR])  # the loop


def test_mix_cuts_long_events_and_keeps_the_snr_when_it_avoids_clipping():
    fg = sine(700, 0.5, 6.0)
    bg = sine(150, 0.5, 10.0)
    m = mixing.mix(fg, bg, SR, snr_db=40.0, onset_s=0.0, ref_db=-10.0)
    assert m.peak_gain < 1.0 and np.max(np.abs(m.scene)) <= mixing.PEAK + 1e-12
    event = (m.scene - m.background)[: int(mixing.MAX_EVENT_SECONDS * SR)]
    np.testing.assert_allclose((m.scene - m.background)[int(mixing.MAX_EVENT_SECONDS * SR) :], 0.0, atol=1e-12)
    snr = mixing.integrated_loudness(event, SR) - mixing.integrated_loudness(m.background, SR)
    assert snr == pytest.approx(40.0, abs=0.01)
    with pytest.raises(InvalidInput, match="outside"):
        mixing.mix(fg, bg, SR, 6.0, onset_s=10.0)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


@pytest.mark.parametrize(("snr_db", "onset_s", "seconds"), [(-10.0, 0.0, None), (6.5, 2.0, None), (40.0, 0.3, None),
                                                            (3.0, 7.5, 10.0)])
def test_mix_rms_mode_places_the_event_at_the_rms_snr(snr_db, onset_s, seconds):
    """The generated audio's mode: SNR in RMS over the samples the event covers; the background keeps its
    level (looped to ``seconds``, or its own length); only a peak limit scales the whole scene."""
    rng = np.random.default_rng(3)
    fg = sine(1000, 0.3, 5.0) * np.hanning(5 * SR)  # 5 s: longer than the paper's 4 s cut, kept whole
    bg = rng.normal(scale=0.05, size=int(6.0 * SR))
    m = mixing.mix(fg, bg, SR, snr_db, onset_s, seconds=seconds, max_event_s=None, snr_measure="rms")
    n = len(bg) if seconds is None else int(seconds * SR)
    start = int(round(onset_s * SR))
    assert len(m.scene) == n and m.background_gain == m.peak_gain
    np.testing.assert_array_equal(m.background, mixing.fit_length(bg, n) * m.peak_gain)
    placed = (m.scene - m.background)[start:]
    event = fg[: n - start]  # at onset 2.0 s only 4 s of the 5 s event fit, and only they count
    np.testing.assert_allclose(placed[: len(event)], event * m.foreground_gain, atol=1e-12)
    np.testing.assert_allclose((m.scene - m.background)[:start], 0.0, atol=1e-12)
    measured = 20 * math.log10(rms(event * m.foreground_gain) / rms(m.background[start : start + len(event)]))
    assert measured == pytest.approx(snr_db, abs=1e-9)
    if snr_db == 40.0:  # limited: one gain on both keeps the SNR, the peak is exactly PEAK
        assert m.peak_gain < 1.0 and np.max(np.abs(m.scene)) == pytest.approx(mixing.PEAK, abs=1e-15)
    else:
        assert m.peak_gain == 1.0


def test_mix_modes_differ_only_in_how_the_snr_is_measured():
    """The same event and background at the same SNR: LUFS normalises the background, RMS keeps it."""
    fg = sine(700, 0.2, 2.0)
    bg = sine(150, 0.1, 10.0)
    lufs = mixing.mix(fg, bg, SR, 6.0, 1.0, snr_measure="lufs")
    by_rms = mixing.mix(fg, bg, SR, 6.0, 1.0, snr_measure="rms")
    np.testing.assert_array_equal(by_rms.background, bg)
    assert mixing.integrated_loudness(lufs.background, SR) == pytest.approx(mixing.REF_DB, abs=0.01)
    # pure tones: the RMS SNR is their amplitude ratio
    assert 20 * math.log10(by_rms.foreground_gain * 0.2 / 0.1) == pytest.approx(6.0, abs=1e-9)
    lufs_snr = mixing.integrated_loudness(fg * lufs.foreground_gain, SR) - mixing.integrated_loudness(lufs.background, SR)
    assert lufs_snr == pytest.approx(6.0, abs=0.01)
    # BS.1770's K-weighting hears 700 Hz ~0.7 dB louder than 150 Hz: 6 LUFS dB are ~5.3 RMS dB here
    lufs_as_rms = 20 * math.log10(lufs.foreground_gain * 0.2 / (lufs.background_gain * 0.1))
    assert lufs_as_rms == pytest.approx(5.30, abs=0.05)


def test_mix_rejects_an_unknown_measure_and_undefined_rms_snrs():
    bg = sine(150, 0.1, 2.0)
    with pytest.raises(InvalidInput, match="unknown SNR measure 'peak'; known: lufs, rms"):
        mixing.mix(sine(700, 0.2, 1.0), bg, SR, 6.0, 0.0, snr_measure="peak")
    with pytest.raises(InvalidInput, match="SNR is undefined"):
        mixing.mix(np.zeros(SR), bg, SR, 6.0, 0.0, seconds=None, snr_measure="rms")
    with pytest.raises(InvalidInput, match="SNR is undefined"):  # silent where the event lies
        mixing.mix(sine(700, 0.2, 0.5), np.concatenate([bg, np.zeros(SR)]), SR, 6.0, 2.2, seconds=None,
                   snr_measure="rms")
    with pytest.raises(InvalidInput, match="outside the 2 s scene"):
        mixing.mix(sine(700, 0.2, 1.0), bg, SR, 6.0, 2.0, seconds=None, snr_measure="rms")


def test_limit_peak():
    x = np.array([0.5, -1.98, 0.99])
    y, gain = mixing.limit_peak(x)
    assert gain == pytest.approx(0.5) and np.max(np.abs(y)) <= mixing.PEAK
    np.testing.assert_allclose(y, x * 0.5)
    quiet = np.array([0.2, -0.99])
    same, gain = mixing.limit_peak(quiet)
    assert gain == 1.0 and same is quiet


def test_truncated_normal_moments():
    rng = np.random.default_rng(1)
    x = truncated_normal(rng, *ONSET, 40_000)
    assert x.min() >= 0.0 and x.max() <= 6.0
    # N(3, 1.5) cut at +-2 sd: mean 3, sd 1.5 * sqrt(1 - 2 * 2 * phi(2) / (Phi(2) - Phi(-2)))
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert x.mean() == pytest.approx(3.0, abs=0.03)
    assert x.std() == pytest.approx(1.5 * math.sqrt(1 - 4 * phi2 / mass), abs=0.02)
    np.testing.assert_array_equal(truncated_normal(np.random.default_rng(2), *ONSET, 5), truncated_normal(np.random.default_rng(2), *ONSET, 5))


def test_plan_is_seeded_and_environments_are_independent():
    a = plan_scenes(20, {"park": 5, "airport": 3}, seed=4)
    b = plan_scenes(20, {"airport": 3}, seed=4)
    c = plan_scenes(20, {"park": 5, "airport": 3}, seed=5)
    assert a["airport"] == b["airport"]
    assert a["park"] != c["park"]
    assert [p.foreground for p in a["park"]] == list(range(20))
    assert all(0 <= p.background < 5 and 0 <= p.onset_s <= 6 for p in a["park"])
    assert len({p.background for p in a["park"]}) > 1


def test_write_scenes_are_48k_mono_10s(tmp_path):
    fg = tmp_path / "fg.wav"
    bg = tmp_path / "bg.wav"
    sf.write(fg, sine(1000, 0.3, 1.0, 44_100), 44_100)
    sf.write(bg, np.random.default_rng(0).normal(scale=0.05, size=(3 * 16_000, 2)), 16_000)
    plan = plan_scenes(1, {"park": 1}, seed=0)["park"]
    (path,) = write_scenes(plan, 8.0, [fg], [bg], tmp_path / "scenes")
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames) == (48_000, 1, 480_000)
    assert path.name == f"00000-fg-{safe_name('park')}-8dB.wav" and safe_name("park").startswith("park-")


def test_read_foregrounds(tmp_path):
    for name in ("a.wav", "b.wav", "c.wav", "d.wav"):
        sf.write(tmp_path / name, sine(500, 0.1, 0.5), SR)
    (tmp_path / "with_folds.csv").write_text("path,label,fold\na.wav,siren,1\nb.wav,dog,2\nc.wav,siren,3\nd.wav,dog,3\n")
    fg = read_foregrounds(tmp_path / "with_folds.csv")
    assert fg.labels == ["dog", "siren"] and fg.classes.tolist() == [1, 0, 1, 0] and fg.folds.tolist() == [1, 2, 3, 3]
    assert fg.paths[0] == tmp_path / "a.wav"
    (tmp_path / "one_class.csv").write_text("path,label\na.wav,siren\nb.wav,siren\n")
    with pytest.raises(InvalidInput, match="two classes"):
        read_foregrounds(tmp_path / "one_class.csv")
    (tmp_path / "missing.csv").write_text("path,label\nnope.wav,siren\nb.wav,dog\n")
    with pytest.raises(NotFound, match="1 foreground file"):
        read_foregrounds(tmp_path / "missing.csv")
    (tmp_path / "bad_fold.csv").write_text("path,label,fold\na.wav,siren,x\n")
    with pytest.raises(InvalidInput, match="line 2"):
        read_foregrounds(tmp_path / "bad_fold.csv")


def test_stratified_folds_deal_each_class_evenly():
    classes = np.array([0] * 10 + [1] * 7)
    folds = stratified_folds(classes, 3, seed=0)
    assert sorted(np.bincount(folds[:10])[1:].tolist()) == [3, 3, 4]
    assert sorted(np.bincount(folds[10:])[1:].tolist()) == [2, 2, 3]
    np.testing.assert_array_equal(folds, stratified_folds(classes, 3, seed=0))
    with pytest.raises(InvalidInput):
        stratified_folds(classes, 1, seed=0)


def test_read_backgrounds_from_folders_and_csv(tmp_path):
    for env, n in (("park", 2), ("airport", 1)):
        for i in range(n):
            (tmp_path / "bg" / env).mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "bg" / env / f"{i}.wav", sine(200, 0.1, 0.5), SR)
    (tmp_path / "bg" / "empty").mkdir()
    by_folder = read_backgrounds(tmp_path / "bg")
    assert list(by_folder) == ["airport", "park"] and [p.name for p in by_folder["park"]] == ["0.wav", "1.wav"]
    (tmp_path / "bg.csv").write_text("path,environment\nbg/park/1.wav,park\nbg/park/0.wav,park\nbg/airport/0.wav,airport\n")
    assert read_backgrounds(tmp_path / "bg.csv") == by_folder
    with pytest.raises(InvalidInput, match="no subfolder"):
        read_backgrounds(tmp_path / "bg" / "empty")
