"""Feature extraction per 10 s clip: proto_index.clap's batched torch features against laion_clap's.

laion_clap's non-fusion path pads each clip in ``get_audio_features`` and computes the log-mel inside
HTSAT with torchlibrosa (an STFT as a convolution with a DFT kernel); its fusion path computes each
clip's mel in ``get_audio_features`` with a torchaudio MelSpectrogram built per call. Ours: one
batched repeat-pad, ``torch.stft`` and a mel matmul, wherever the waveforms are.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice .venv/bin/python bench/clap_features.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # laion_clap's import asks the Hub for tokenizers
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from proto_index.clap import config  # noqa: E402
from proto_index.clap.features import Features  # noqa: E402

CFG = {"sample_rate": 48000, "window_size": 1024, "hop_size": 480, "fmin": 50, "fmax": 14000, "mel_bins": 64}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 by default: on a shared machine, multi-threaded timings mostly show the load)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (shorter clips are repeat-padded)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from laion_reference import laion

    _, data = laion()
    spectrogram = Spectrogram(n_fft=1024, hop_length=480, win_length=1024, window="hann", center=True,
                              pad_mode="reflect", freeze_parameters=True)
    logmel = LogmelFilterBank(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10,
                              top_db=None, freeze_parameters=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); ms per {args.seconds:g} s clip, "
          f"{args.repeats} alternating rounds, wall time: best and median")
    print(f"{'path':<7} {'batch':>5} {'laion best':>11} {'ours best':>10} {'ratio':>6} {'laion med':>10} "
          f"{'ours med':>9} {'ratio':>6}")
    for fusion in (False, True):
        ours_features = Features(config("tiny", fusion=fusion).audio)
        for batch in (1, 8):
            rng = np.random.default_rng(batch)
            clips = [rng.normal(0, 0.1, round(48_000 * args.seconds)).astype(np.float32) for _ in range(batch)]

            def theirs():
                feats = [data.get_audio_features({}, torch.from_numpy(c), 480_000,
                                                 data_truncating="fusion" if fusion else "rand_trunc",
                                                 data_filling="repeatpad", audio_cfg=CFG) for c in clips]
                if not fusion:  # the part of HTSAT's forward that makes its features
                    logmel(spectrogram(torch.stack([f["waveform"] for f in feats])))

            def ours():
                ours_features([torch.from_numpy(c) for c in clips])

            times = {theirs: [], ours: []}
            with torch.inference_mode():
                theirs(), ours()  # warm-up
                for _ in range(args.repeats):
                    for fn, wall in times.items():
                        start = time.perf_counter()
                        fn()
                        wall.append((time.perf_counter() - start) / batch)
            best_t, best_o = min(times[theirs]), min(times[ours])
            med_t, med_o = statistics.median(times[theirs]), statistics.median(times[ours])
            print(f"{'fusion' if fusion else 'plain':<7} {batch:>5} {1000 * best_t:>9.1f}ms {1000 * best_o:>8.1f}ms "
                  f"{best_o / best_t:>5.2f}x {1000 * med_t:>8.1f}ms {1000 * med_o:>7.1f}ms {med_o / med_t:>5.2f}x")


if __name__ == "__main__":
    main()
