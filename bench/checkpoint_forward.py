"""Audio embedding cost of a released-checkpoint model (`clap`): laion_clap's path (before) against
proto_index.clap's (after), on the same weights, in one process.

before: laion_clap's HTSAT-tiny + RoBERTa (its own factory, tests/laion_reference.py), the checkpoint's
weights loaded, laion_clap's `get_audio_features` per clip and `get_audio_embedding` (bf16: under CPU
autocast); after: `load_encoder("clap", ...)` (ClapEncoder) `.embed_waveforms`. Same N generated 10 s
clips, one batch of B; the two alternate R times after a warm-up each; medians of wall and CPU
(process, all threads) seconds per clip. In one process the machine's load falls on both alike.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/checkpoint_forward.py --fake-checkpoint /tmp/fake-clap [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # laion_clap's import asks the Hub for tokenizers
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from startup import fake_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--tokenizer-dir")
    parser.add_argument("--fake-checkpoint", type=Path, metavar="DIR", help="as bench/startup.py's")
    parser.add_argument("--clips", type=int, default=4, help="clips, embedded as one batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    if args.fake_checkpoint:
        args.checkpoint, args.tokenizer_dir = fake_checkpoint(args.fake_checkpoint)

    import numpy as np
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from laion_reference import laion, laion_model as build_laion_model

    from proto_index.clap.checkpoint import read_state
    from proto_index.embed.registry import load_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    laion_model = build_laion_model("roberta", fusion=False)
    model_cfg = laion_model.model_cfg
    state = read_state(args.checkpoint)
    laion_model.load_state_dict({k: v for k, v in state.items() if k != "text_branch.embeddings.position_ids"})
    _, data = laion()
    rng = np.random.default_rng(0)
    waves = [rng.normal(0, 0.1, 480_000).astype(np.float32) for _ in range(args.clips)]
    print(f"| precision | laion_clap ms/clip (wall / CPU) | proto_index.clap ms/clip (wall / CPU) | CPU after/before | max abs diff |")
    print("|---|---|---|---|---|")
    for precision in args.precisions.split(","):
        ours = load_encoder("clap", checkpoint=args.checkpoint, tokenizer_dir=args.tokenizer_dir, device="cpu",
                            batch_size=args.clips, precision=precision)
        model = laion_model  # bf16: laion_clap's model under CPU autocast

        def before():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                features = [data.get_audio_features({}, torch.from_numpy(w), 480_000, data_truncating="rand_trunc",
                                                    data_filling="repeatpad", audio_cfg=model_cfg["audio_cfg"])
                            for w in waves]
                return torch.nn.functional.normalize(model.get_audio_embedding(features).float(), dim=-1).numpy()

        def after():
            return ours.embed_waveforms(waves)

        diff = float(np.abs(before() - after()).max())  # also the warm-up
        times = {"before": [], "after": []}
        for _ in range(args.repeats):
            for name, run in (("before", before), ("after", after)):
                wall, cpu = time.perf_counter(), time.process_time()
                run()
                times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        ms = {name: (1000 * statistics.median(w for w, _ in t) / args.clips,
                     1000 * statistics.median(c for _, c in t) / args.clips) for name, t in times.items()}
        print(f"| {precision} | {ms['before'][0]:.0f} / {ms['before'][1]:.0f} | {ms['after'][0]:.0f} / {ms['after'][1]:.0f} | "
              f"{ms['after'][1] / ms['before'][1]:.2f}x | {diff:.2g} |", flush=True)
    print(f"\n{args.clips} clips of 10 s in one batch, {args.repeats} alternating repeats, torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
