"""Decoding audio files to 48 kHz mono float32: lengths, mixdown, agreement with librosa, errors."""
import librosa
import numpy as np
import pytest
import soundfile as sf
from audio_factory import corrupt_header, empty_audio_wav, nan_wav, text_as_wav, write_wav, zero_length

from proto_index.audio.decode import load_audio, prepare, quantize_int16
from proto_index.errors import AudioDecodeError

CASES = [
    # (sample rate, channels, subtype, format, seconds)
    (16000, 1, "PCM_16", "WAV", 1.0),
    (16000, 8, "PCM_24", "WAV", 3.3),
    (16000, 2, "PCM_16", "FLAC", 7.77),
    (44100, 1, "PCM_16", "WAV", 10.0),  # librosa returns 480001 samples here
    (44100, 2, "FLOAT", "WAV", 12.0),
    (44100, 8, "PCM_24", "FLAC", 2.5),
    (22050, 3, "PCM_16", "WAV", 1.0001),
    (48000, 1, "PCM_24", "FLAC", 10.0),
    (48000, 2, "FLOAT", "WAV", 4.2),
    (48000, 8, "PCM_16", "WAV", 1.0),
]


@pytest.mark.parametrize("sr, channels, subtype, fmt, seconds", CASES)
def test_length_and_values_match_librosa(tmp_path, sr, channels, subtype, fmt, seconds):
    path = write_wav(tmp_path / f"clip.{fmt.lower()}", seconds, sr, channels, subtype, fmt, seed=sr + channels)
    frames = sf.info(path).frames

    wave = load_audio(path)

    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == round(frames * 48000 / sr)
    reference, _ = librosa.load(path, sr=48000)
    assert len(reference) >= len(wave)
    np.testing.assert_array_equal(wave, reference[: len(wave)])
    assert not reference[len(wave):].any()  # librosa only pads zeros past the exact length


def test_librosa_extra_sample_is_trimmed(tmp_path):
    path = write_wav(tmp_path / "ten.wav", 10.0, 44100)
    assert len(librosa.load(path, sr=48000)[0]) == 480001
    assert len(load_audio(path)) == 480000


def test_mixdown_is_the_channel_mean(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.9, 0.9, size=(48000, 8)).astype(np.float32)
    sf.write(tmp_path / "eight.wav", data, 48000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "eight.wav"), data.mean(axis=1), rtol=0, atol=1e-7)

    left, right = np.full(16000, 0.5, np.float32), np.full(16000, -0.25, np.float32)
    sf.write(tmp_path / "lr.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = load_audio(tmp_path / "lr.wav")
    assert len(wave) == 48000
    # a constant survives resampling away from the filter's edge transients
    np.testing.assert_allclose(wave[4800:-4800], 0.125, atol=1e-4)


def test_ogg_vorbis(tmp_path):
    data = np.random.default_rng(2).uniform(-0.5, 0.5, size=(44100 * 2, 2)).astype(np.float32)
    sf.write(tmp_path / "a.ogg", data, 44100)
    wave = load_audio(tmp_path / "a.ogg")
    assert len(wave) == 96000
    np.testing.assert_array_equal(wave, librosa.load(tmp_path / "a.ogg", sr=48000)[0][:96000])


def test_quantize_int16_matches_the_int16_round_trip():
    x = np.concatenate([np.linspace(-1.5, 1.5, 20001), [-1.0, 1.0, 0.0, 1e-6, -1e-6, 0.99999]]).astype(np.float32)
    q = quantize_int16(x)
    assert q.dtype == np.float32
    # scale in float32 (as laion_clap does on float32 input), truncate toward zero, divide in float64
    scaled = np.clip(x, np.float32(-1), np.float32(1)) * np.float32(32767.0)
    assert scaled.dtype == np.float32
    expected = (np.trunc(scaled) / 32767.0).astype(np.float32)
    np.testing.assert_array_equal(q, expected)
    assert q.max() == 1.0 and q.min() == -1.0
    assert np.all(np.abs(q - np.clip(x, -1, 1)) < 1 / 32767 + 1e-7)
    np.testing.assert_array_equal(quantize_int16(q), q)  # idempotent


def test_prepare_is_quantised_load(tmp_path):
    path = write_wav(tmp_path / "a.wav", 1.5, 44100, 2, "FLOAT")
    np.testing.assert_array_equal(prepare(path), quantize_int16(load_audio(path)))


@pytest.mark.parametrize("make, message", [
    (corrupt_header, "not an audio file soundfile can read"),
    (zero_length, "not an audio file soundfile can read"),
    (text_as_wav, "not an audio file soundfile can read"),
    (empty_audio_wav, "empty audio (0 samples)"),
    (nan_wav, "non-finite samples (NaN or Inf)"),
])
def test_bad_files_raise_audio_decode_error(tmp_path, make, message):
    path = make(tmp_path / "bad.wav")
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert message in str(info.value)
    assert str(tmp_path) not in str(info.value) and "bad.wav" not in str(info.value)


def test_infinite_samples(tmp_path):
    data = np.zeros(1000, np.float32)
    data[10] = np.inf
    sf.write(tmp_path / "inf.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=r"non-finite samples"):
        load_audio(tmp_path / "inf.wav")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioDecodeError, match="cannot open file: No such file"):
        load_audio(tmp_path / "absent.wav")
    with pytest.raises(AudioDecodeError, match="cannot open file"):
        load_audio(tmp_path)
