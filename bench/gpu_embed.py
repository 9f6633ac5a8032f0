"""Embedding throughput of clap-tiny-random on a CUDA device, fp32 vs bf16 (128 random 10 s clips, batch 32).

    python bench/gpu_embed.py      # needs a CUDA device
"""
import time

import numpy as np
import torch

from proto_index.embed.seeded import random_encoder

rng = np.random.default_rng(0)
waves = [(0.1 * rng.standard_normal(480_000)).astype(np.float32) for _ in range(128)]
print(torch.cuda.get_device_name(0))
for precision in ("fp32", "bf16"):
    enc = random_encoder("clap-tiny-random", fusion=False, device="cuda", precision=precision, batch_size=32)
    enc.embed_waveforms(waves[:32])
    torch.cuda.synchronize()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        enc.embed_waveforms(waves)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    med = sorted(times)[1]
    print(f"{precision}: {len(waves) / med:.0f} clips/s (median of 3, batch 32, features prepared on the CPU)")
