"""HTSAT's input features, batched in torch on whatever device the waveforms are on.

Two log-mel paths, because laion_clap computes them differently:

* non-fusion models: HTSAT's own front end (torchlibrosa): power STFT, a *Slaney* mel filter bank
  with Slaney area normalisation (librosa's default), ``10 log10(max(x, 1e-10))``;
* fusion models: laion_clap's data pipeline (torchaudio): power STFT, an *HTK* mel filter bank
  without normalisation, the same dB conversion; for clips of at most 10 s the model's input is that
  mel four times over (the global view and three "local crops", which for such clips are all the
  whole clip; HTSAT reads only the first channel when no clip in the batch is longer).

Both use a periodic Hann window, 1024-point frames every 480 samples, centred with reflection
padding. Clips shorter than 10 s are first repeated whole as many times as fit and zero-padded
(laion_clap's ``repeatpad``). Filter banks are computed here in float64 (no librosa at run time)
and cached per device and dtype by the :class:`Features` object that owns them; nothing global.
"""
from __future__ import annotations

import math
import threading
from typing import Sequence

import numpy as np
import torch

from proto_index.clap.config import AudioConfig

AMIN = 1e-10


def _hz_to_mel_slaney(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    linear = hz / f_sp
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep, linear)


def _mel_to_hz_slaney(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def _hz_to_mel_htk(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz_htk(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filter_bank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, *,
                    scale: str) -> np.ndarray:
    """``(n_fft // 2 + 1, n_mels)`` float32 triangular mel filters.

    ``scale="slaney"``: Slaney mel scale, each filter scaled to unit area (2 / bandwidth), the
    weights rounded to float32 before that scaling as librosa rounds them. ``scale="htk"``: HTK mel
    scale, peak 1, no normalisation (torchaudio's default).
    """
    if scale == "slaney":
        to_mel, to_hz = _hz_to_mel_slaney, _mel_to_hz_slaney
    elif scale == "htk":
        to_mel, to_hz = _hz_to_mel_htk, _mel_to_hz_htk
    else:
        raise ValueError(f"unknown mel scale {scale!r}")
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    width = np.diff(edges)
    rising = (freqs[None, :] - edges[:-2, None]) / width[:-1, None]
    falling = (edges[2:, None] - freqs[None, :]) / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (n_mels, n_freqs)
    if scale == "slaney":
        weights = weights.astype(np.float32).astype(np.float64) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return np.ascontiguousarray(weights.T.astype(np.float32))


def repeat_pad(waveforms: Sequence[torch.Tensor] | torch.Tensor, length: int,
               lengths: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """``(n, length)``: each clip repeated whole as often as it fits in ``length``, then zeros.

    ``waveforms``: a list of 1-d tensors (1 to ``length`` samples each) or an ``(n, m)`` tensor with
    ``lengths`` giving each row's valid samples. The result is made on the clips' device: one
    allocation and one repeat-copy per clip shorter than ``length`` (on a GPU, a kernel per clip,
    no host work per sample); full-length clips are returned as they are.
    """
    if not isinstance(waveforms, torch.Tensor):
        clips = list(waveforms)
        if not clips:
            raise ValueError("no waveforms")
        lengths = [len(c) for c in clips]
        waveforms = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    if waveforms.ndim != 2:
        raise ValueError(f"expected (n, samples) waveforms, got shape {tuple(waveforms.shape)}")
    if lengths is None:
        lengths = [waveforms.shape[1]] * waveforms.shape[0]
    lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    if any(not 0 < n <= min(length, waveforms.shape[1]) for n in lengths) or len(lengths) != waveforms.shape[0]:
        raise ValueError(f"every clip must have 1 to {length} samples")
    if waveforms.shape[1] == length and all(n == length for n in lengths):
        return waveforms  # full clips: nothing to repeat (the common case: archives windowed into 10 s)
    out = waveforms.new_zeros((waveforms.shape[0], length))
    for i, n in enumerate(lengths):
        whole = length // n * n
        out[i, :whole].view(-1, n).copy_(waveforms[i, :n].expand(length // n, n))
    return out


class Features:
    """Log-mel features for one :class:`AudioConfig`; its filter banks cached per (device, dtype).

    Thread-safe: the cache is filled under a lock, and computing features changes no state.
    """

    def __init__(self, cfg: AudioConfig):
        self.cfg = cfg
        self.scale = "htk" if cfg.fusion else "slaney"
        self._bank = mel_filter_bank(cfg.sample_rate, cfg.n_fft, cfg.mel_bins, cfg.fmin, cfg.fmax, scale=self.scale)
        self._tensors: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self._lock = threading.Lock()

    def _window_and_bank(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (str(device), dtype)
        found = self._tensors.get(key)
        if found is None:
            with self._lock:
                found = self._tensors.get(key)
                if found is None:
                    window = torch.hann_window(self.cfg.n_fft, periodic=True, dtype=torch.float64)
                    found = (window.to(device=device, dtype=dtype),
                             torch.from_numpy(self._bank).to(device=device, dtype=dtype))
                    self._tensors[key] = found
        return found

    def log_mel(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(n, samples)`` -> ``(n, frames, mel_bins)`` log-mel (dB) of this config's kind."""
        cfg = self.cfg
        window, bank = self._window_and_bank(waveforms.device, waveforms.dtype)
        spectrum = torch.stft(waveforms, cfg.n_fft, hop_length=cfg.hop, win_length=cfg.n_fft, window=window,
                              center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        power = spectrum.real.square() + spectrum.imag.square()  # (n, freqs, frames)
        mel = torch.matmul(power.transpose(1, 2), bank)
        return 10.0 * torch.log10(torch.clamp(mel, min=AMIN))

    def __call__(self, waveforms: Sequence[torch.Tensor] | torch.Tensor,
                 lengths: Sequence[int] | None = None) -> torch.Tensor:
        """The model's input for clips of at most 10 s: ``(n, 1, frames, mel_bins)`` (non-fusion) or
        ``(n, 4, frames, mel_bins)`` (fusion; four views of one tensor, nothing copied)."""
        mel = self.log_mel(repeat_pad(waveforms, self.cfg.clip_samples, lengths))[:, None]
        return mel.expand(-1, 4, -1, -1) if self.cfg.fusion else mel
