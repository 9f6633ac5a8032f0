"""Generated audio (proto_index.generated_audio): determinism, the SNR definition, formats written, manifests."""
import csv

import numpy as np
import pytest
import soundfile as sf

from proto_index import generated_audio as synth
from proto_index.generated_audio import (
    BACKGROUND_ENVIRONMENTS,
    FOREGROUND_LABELS,
    make_background,
    make_foreground,
    mix,
    write_archive,
    write_backgrounds,
    write_corpus,
)
from proto_index.errors import InvalidInput


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def measured_snr(mixture, foreground, background, onset_s, sr):
    """Recover the mixture's two gains by least squares, then apply the documented definition."""
    start = round(onset_s * sr)
    placed = np.zeros_like(background)
    fg = foreground[:len(background) - start]
    placed[start:start + len(fg)] = fg
    (g_bg, g_fg), *_ = np.linalg.lstsq(np.stack([background, placed], axis=1), mixture, rcond=None)
    np.testing.assert_allclose(g_bg * background + g_fg * placed, mixture, atol=1e-9)
    return 20 * np.log10(rms(g_fg * fg) / rms(g_bg * background[start:start + len(fg)]))


@pytest.mark.parametrize("label", FOREGROUND_LABELS)
@pytest.mark.parametrize("sr", [16000, 48000])
def test_foreground_deterministic_and_sane(label, sr):
    a = make_foreground(label, 2.0, sr, np.random.default_rng(7))
    b = make_foreground(label, 2.0, sr, 7)
    c = make_foreground(label, 2.0, sr, 8)
    assert a.shape == (2 * sr,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.isfinite(a))
    assert rms(a) == pytest.approx(synth.FOREGROUND_RMS)


@pytest.mark.parametrize("env", BACKGROUND_ENVIRONMENTS)
@pytest.mark.parametrize("sr", [16000, 44100])
def test_background_deterministic_and_sane(env, sr):
    a = make_background(env, 1.5, sr, 3)
    np.testing.assert_array_equal(a, make_background(env, 1.5, sr, 3))
    assert not np.array_equal(a, make_background(env, 1.5, sr, 4))
    assert a.shape == (round(1.5 * sr),)
    assert np.all(np.isfinite(a))
    assert rms(a) == pytest.approx(synth.BACKGROUND_RMS)


@pytest.mark.parametrize("n", [1, 2, 37])
def test_tiny_durations(n):
    for label in FOREGROUND_LABELS:
        assert make_foreground(label, n / 16000, 16000, 0).shape == (n,)
    for env in BACKGROUND_ENVIRONMENTS:
        assert make_background(env, n / 16000, 16000, 0).shape == (n,)


def test_classes_are_spectrally_distinct():
    sr = 16000

    def centroid(x):
        power = np.abs(np.fft.rfft(x)) ** 2
        return float((power * np.fft.rfftfreq(len(x), 1 / sr)).sum() / power.sum())

    centroids = {label: centroid(make_foreground(label, 4.0, sr, 1)) for label in FOREGROUND_LABELS}
    assert centroids["bird"] > centroids["drilling"] > centroids["car_horn"]
    assert len({round(c, -1) for c in centroids.values()}) == len(FOREGROUND_LABELS)


def test_unknown_names_rejected(tmp_path):
    with pytest.raises(InvalidInput, match="unknown sound class 'cat'"):
        make_foreground("cat", 1.0, 16000, 0)
    with pytest.raises(InvalidInput, match="unknown environment 'moon'"):
        make_background("moon", 1.0, 16000, 0)
    with pytest.raises(InvalidInput, match="moon"):
        write_archive(tmp_path, 2, ["park", "moon"], 0)
    with pytest.raises(InvalidInput):
        write_corpus(tmp_path, 2, 0, labels=[])


@pytest.mark.parametrize(
    ("snr_db", "onset_s"), [(-10.0, 0.0), (0.0, 0.5), (6.5, 1.2), (20.0, 2.0), (40.0, 0.3)]
)
def test_mix_achieves_snr(snr_db, onset_s):
    sr = 16000
    fg = make_foreground("siren", 1.5, sr, 1)
    bg = make_background("street_traffic", 3.0, sr, 2)
    out = mix(fg, bg, snr_db, onset_s, sr)
    assert out.shape == bg.shape
    assert np.max(np.abs(out)) <= 0.99
    # onset 2.0 s: only the first second of the 1.5 s foreground fits, and only it counts
    assert measured_snr(out, fg, bg, onset_s, sr) == pytest.approx(snr_db, abs=0.1)


def test_mix_peak_limited_only_when_needed():
    sr = 16000
    fg = make_foreground("dog_bark", 1.0, sr, 1)
    bg = make_background("park", 2.0, sr, 1)
    quiet = mix(fg, bg, -20.0, 0.5, sr)
    loud = mix(fg, bg, 40.0, 0.5, sr)
    np.testing.assert_array_equal(quiet[: sr // 2], bg[: sr // 2])  # untouched before the onset
    assert np.max(np.abs(loud)) == pytest.approx(0.99)


@pytest.mark.parametrize(("snr_db", "onset_s"), [(-20.0, 0.5), (6.5, 1.2), (40.0, 2.0)])
def test_mix_is_the_evaluation_mixer_at_rms(snr_db, onset_s):
    """The generated clips' mix (below evaluation in the layers) is the mixer's RMS mode, sample for sample."""
    from proto_index.evaluation import mixing

    sr = 16000
    fg = make_foreground("siren", 1.5, sr, 1)
    bg = make_background("street_traffic", 3.0, sr, 2)
    expected = mixing.mix(fg, bg, sr, snr_db, onset_s, seconds=None, max_event_s=None, snr_measure="rms").scene
    np.testing.assert_array_equal(mix(fg, bg, snr_db, onset_s, sr), expected)


def test_mix_rejects_bad_onset_and_silence():
    bg = make_background("park", 1.0, 16000, 0)
    fg = make_foreground("bird", 0.5, 16000, 0)
    with pytest.raises(InvalidInput, match="outside the 1 s scene"):
        mix(fg, bg, 10.0, 1.0, 16000)
    with pytest.raises(InvalidInput, match="outside"):
        mix(fg, bg, 10.0, -0.1, 16000)
    with pytest.raises(InvalidInput, match="SNR is undefined"):
        mix(np.zeros(100), bg, 10.0, 0.0, 16000)


def read_all(result):
    return [sf.read(c.path, always_2d=True)[0] for c in result.clips]


def test_corpus_deterministic(tmp_path):
    a = write_corpus(tmp_path / "a", 6, seed=11)
    b = write_corpus(tmp_path / "b", 6, seed=11)
    c = write_corpus(tmp_path / "c", 3, seed=12)
    assert [x.path.name for x in a.clips] == [x.path.name for x in b.clips]
    for x, y in zip(read_all(a), read_all(b), strict=True):
        np.testing.assert_array_equal(x, y)
    strip = [dict(vars(x), path=None) for x in a.clips]
    assert strip == [dict(vars(x), path=None) for x in b.clips]
    assert strip[:3] != [dict(vars(x), path=None) for x in c.clips]
    # clip i does not depend on how many clips are written
    np.testing.assert_array_equal(read_all(write_corpus(tmp_path / "d", 2, seed=11))[1],
                                  read_all(a)[1])


def test_corpus_formats_written_as_stated(tmp_path):
    result = write_corpus(tmp_path, 30, seed=0)
    assert result.folder == tmp_path and result.manifest is None
    assert len(result.clips) == 30
    seen = set()
    for clip in result.clips:
        info = sf.info(clip.path)
        assert clip.path.is_absolute() and clip.path.parent == tmp_path
        assert (info.format, info.subtype) == (clip.format, clip.subtype)
        assert clip.path.suffix == {"WAV": ".wav", "FLAC": ".flac"}[clip.format]
        assert (info.samplerate, info.channels) == (clip.sr, clip.channels)
        assert info.frames == round(clip.seconds * clip.sr)
        assert 1.0 <= clip.seconds <= 12.0
        assert clip.label in FOREGROUND_LABELS and clip.environment in BACKGROUND_ENVIRONMENTS
        assert 0 <= clip.onset_s < clip.seconds and 6.0 <= clip.snr_db <= 20.0
        seen |= {clip.sr, clip.channels, (clip.format, clip.subtype)}
    assert {16000, 44100, 48000, 1, 2, *synth.FORMATS} <= seen
    data = read_all(result)
    assert all(np.max(np.abs(d)) <= 0.99 + 1e-4 for d in data)  # PCM rounding aside


def test_archive_manifest(tmp_path):
    envs = ["park", "airport", "metro_station"]
    result = write_archive(tmp_path / "arch", 7, envs, seed=3)
    assert result.manifest == tmp_path / "arch" / "manifest.csv"
    with open(result.manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "environment", "label"]
    assert len(rows) == 7
    assert [r["environment"] for r in rows] == [envs[i % 3] for i in range(7)]
    for row, clip in zip(rows, result.clips, strict=True):
        path = result.manifest.parent / row["path"]
        assert not row["path"].startswith("/")
        assert path.resolve() == clip.path.resolve() and path.is_file()
        assert (row["environment"], row["label"]) == (clip.environment, clip.label)
        assert sf.info(path).frames > 0


def test_archive_and_corpus_do_not_share_audio(tmp_path):
    corpus = read_all(write_corpus(tmp_path / "c", 2, seed=5))
    archive = read_all(write_archive(tmp_path / "a", 2, list(BACKGROUND_ENVIRONMENTS), seed=5))
    for x, y in zip(corpus, archive, strict=True):
        assert x.shape != y.shape or not np.array_equal(x, y)


def test_backgrounds(tmp_path):
    result = write_backgrounds(tmp_path, "airport", 3, seed=1)
    assert [c.path.name.split(".")[0] for c in result.clips] == [
        "airport_bg_000", "airport_bg_001", "airport_bg_002"]
    for clip in result.clips:
        assert clip.environment == "airport"
        assert clip.label is None and clip.onset_s is None and clip.snr_db is None
        assert 4.0 <= clip.seconds <= 12.0
        assert sf.info(clip.path).samplerate == clip.sr
    with pytest.raises(InvalidInput):
        write_backgrounds(tmp_path, "moon", 1, seed=1)
