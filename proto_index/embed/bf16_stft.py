"""A bfloat16 view of a CLAP model's audio tower for the CPU, with its STFT front end run as an FFT in float32."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def cpu_bf16_audio_model(model: torch.nn.Module) -> torch.nn.Module:
    """A view of ``model`` whose audio tower runs in bfloat16 on the CPU; ``model`` itself is not touched.

    The returned object is a shallow copy of laion_clap's CLAP (its own ``get_audio_embedding`` and
    text tower, shared) with a bfloat16 copy of the audio branch and projection, except the
    spectrogram front end, which stays float32: its STFT runs as an FFT (``torch.stft``) when the
    frozen conv1d weights are torchlibrosa's windowed DFT basis (checked, to 1e-6), because oneDNN
    runs that 1024-tap, 1-input-channel conv1d at about float32 speed whatever the dtype (10 ms per
    clip on 2 cores, a sixth of the bf16 forward; the FFT takes under 1 ms), and float32 is the
    more accurate choice for it anyway; the log-mel filter bank and ``bn0`` stay float32 too.
    Run it under ``torch.autocast('cpu', dtype=torch.bfloat16)``.
    """
    import copy

    import torch

    audio = copy.deepcopy(model.audio_branch).to(torch.bfloat16)
    if hasattr(audio, "spectrogram_extractor"):
        audio.spectrogram_extractor = float32_module(copy.deepcopy(model.audio_branch.spectrogram_extractor))
        stft = audio.spectrogram_extractor.inner.stft
        if _is_windowed_dft(stft):
            audio.spectrogram_extractor.inner.stft = fft_stft(stft)
    if hasattr(audio, "logmel_extractor"):
        audio.logmel_extractor = float32_module(copy.deepcopy(model.audio_branch.logmel_extractor))
    if hasattr(audio, "bn0"):
        audio.bn0 = copy.deepcopy(model.audio_branch.bn0)
    view = copy.copy(model)
    view._modules = dict(model._modules)
    view._modules["audio_branch"] = audio.eval()
    view._modules["audio_projection"] = copy.deepcopy(model.audio_projection).to(torch.bfloat16).eval()
    return view


def _is_windowed_dft(stft) -> bool:
    """Whether torchlibrosa's STFT convs hold window x cos / -sin of the DFT (the window is row 0 of the real part)."""
    import math

    import torch

    real = getattr(stft, "conv_real", None)
    imag = getattr(stft, "conv_imag", None)
    if real is None or imag is None or real.weight.shape[1] != 1 or real.padding != (0,):
        return False
    n_fft = real.weight.shape[-1]
    if real.weight.shape[0] != n_fft // 2 + 1 or getattr(stft, "n_fft", None) != n_fft:
        return False
    w_real = real.weight[:, 0, :].double()
    w_imag = imag.weight[:, 0, :].double()
    window = w_real[0]
    angle = 2 * math.pi * torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None] \
        * torch.arange(n_fft, dtype=torch.float64)[None, :] / n_fft
    return bool((w_real - torch.cos(angle) * window).abs().max() < 1e-6
                and (w_imag + torch.sin(angle) * window).abs().max() < 1e-6)


@functools.lru_cache(maxsize=None)
def _fp32_modules():
    import torch

    class Float32(torch.nn.Module):
        """Runs ``inner`` in float32 with autocast off."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner.float()

        def forward(self, x):
            with torch.autocast(x.device.type, enabled=False):
                return self.inner(x.float())

    class FFTSTFT(torch.nn.Module):
        """torchlibrosa's STFT (same framing, padding, window and output layout) by ``torch.stft``."""

        def __init__(self, stft):
            super().__init__()
            self.n_fft = stft.n_fft
            self.hop = stft.conv_real.stride[0]
            self.center = stft.center
            self.pad_mode = stft.pad_mode
            self.register_buffer("window", stft.conv_real.weight[0, 0, :].detach().float().clone())

        def forward(self, x):
            spec = torch.stft(x.float(), self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window,
                              center=self.center, pad_mode=self.pad_mode, return_complex=True)
            spec = spec.transpose(1, 2)[:, None]  # (batch, 1, time, freq) as torchlibrosa returns
            return spec.real, spec.imag

    return Float32, FFTSTFT


def float32_module(inner: torch.nn.Module) -> torch.nn.Module:
    """``inner`` (converted to float32) run with autocast off, on float32 input."""
    return _fp32_modules()[0](inner)


def fft_stft(stft: torch.nn.Module) -> torch.nn.Module:
    """A module computing torchlibrosa ``stft``'s output with ``torch.stft`` (check :func:`_is_windowed_dft` first)."""
    return _fp32_modules()[1](stft)
