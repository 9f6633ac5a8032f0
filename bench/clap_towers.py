"""proto_index.clap's towers: parity with laion_clap, start-up, and forward time against transformers'.

``parity`` (issue 16's measurement): builds laion_clap's seeded HTSAT-tiny (fusion and not;
batch-norm statistics and every other weight moved off their initial constants), maps its state
dict into proto_index.clap's model (HTSAT + projection), and prints max abs differences of unit embeddings, float32: our tower on laion_clap's
own features, the same tower on proto_index.clap's features, and the two log-mel inputs (dB).

``startup``: wall seconds of a fresh process that builds a CLAP model (HTSAT-tiny, no fusion,
RoBERTa) and embeds one 1 s clip, median of ``RUNS``, for a baseline checkout (default /work/main
with its own .venv: before the towers were written here, when they came from transformers) and this
one; once with random weights (``ClapModel(cfg)``) and once loaded from a released-layout checkpoint
(``checkpoint.load(..., text=False)``, the path ``--checkpoint`` files take). Also whether the process
imported transformers.

``forward``: seconds per forward of our HTSAT and RoBERTa against transformers' ClapAudioModel and
ClapTextModel holding the same weights, torch threads 1, median of ``RUNS`` (after one warm-up).

    nice .venv/bin/python bench/clap_towers.py [parity|startup|forward ...] [BASE_DIR]
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_clap_module import CFG_AUDIO, clips, laion_model, ours_from, perturbed  # noqa: E402
from test_clap_towers import features, hf_audio_config, hf_text_config, pair, roberta_rows  # noqa: E402
from timing import median_seconds  # noqa: E402

from proto_index.clap import config  # noqa: E402
from proto_index.embed.offline import laion  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
RUNS = 5
STARTUP = """
import sys, time
start = time.perf_counter()
import numpy as np
import torch
from proto_index.clap import config
from proto_index.clap.model import ClapModel
from proto_index.clap.checkpoint import load
model = ClapModel(config("tiny")) if sys.argv[1] == "random" else load(sys.argv[1], sha256=None, text=False)
model.embed_audio([np.sin(np.arange(48_000, dtype=np.float32) / 7)])
print(time.perf_counter() - start, "transformers" in sys.modules)
"""


def startup(base: Path) -> None:
    from proto_index.clap.checkpoint import to_laion
    from proto_index.clap.model import ClapModel

    sides = {"before": (base / ".venv/bin/python", base), "after": (Path(sys.executable), HERE)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "630k-audioset-best.pt"
        torch.manual_seed(0)
        state = to_laion(ClapModel(config("tiny")).state_dict())
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
        print(f"start-up: fresh process, build HTSAT-tiny+roberta and embed one 1 s clip; median of {RUNS} "
              f"(wall s from the first import; before = {base})")
        for weights in ("random", str(path)):
            wall: dict[str, list[float]] = {side: [] for side in sides}
            cpu: dict[str, list[float]] = {side: [] for side in sides}
            imported = {}
            for _ in range(RUNS):  # alternating, so that load on the shared machine falls on both
                for side, (python, cwd) in sides.items():
                    used = _children_cpu()
                    out = subprocess.run([str(python), "-c", STARTUP, weights], cwd=cwd, capture_output=True,
                                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(cwd)})
                    cpu[side].append(_children_cpu() - used)
                    seconds, imported[side] = out.stdout.split()
                    wall[side].append(float(seconds))
            name = "random weights" if weights == "random" else "from a checkpoint (text later)"
            print(f"  {name}: transformers imported before {imported['before']}, after {imported['after']}")
            for label, figures in (("wall s", wall), ("CPU s (whole process)", cpu)):
                before, after = (statistics.median(figures[s]) for s in sides)
                print(f"    {label:>21}: before {before:.2f} | after {after:.2f} | after/before {after / before:.2f}x")


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def forward() -> None:
    import transformers

    from proto_index.clap.htsat import AudioModel
    from proto_index.clap.roberta import RobertaText

    torch.set_num_threads(1)
    print(f"forward: seconds per call, torch threads 1, median of {RUNS} after one warm-up, same weights")
    for size in ("tiny", "base"):
        cfg = config(size)
        theirs, ours = pair(transformers.ClapAudioModel, AudioModel, hf_audio_config(cfg), cfg.audio)
        x = features(1, 1)
        _report(f"HTSAT-{size}, 1 clip", lambda: theirs(input_features=x), lambda: ours(input_features=x))
    cfg = config("tiny")
    theirs, ours = pair(transformers.ClapTextModel, RobertaText, hf_text_config(cfg), cfg.text)
    ids, mask = roberta_rows(vocab=cfg.text.vocab_size)
    _report("RoBERTa, 4 texts", lambda: theirs(input_ids=ids, attention_mask=mask), lambda: ours(ids, mask))


def _report(name: str, theirs, ours) -> None:
    with torch.inference_mode():
        theirs(), ours()
        t, o = median_seconds(theirs, RUNS), median_seconds(ours, RUNS)
    print(f"  {name:>17}: transformers {t * 1000:.0f} ms | ours {o * 1000:.0f} ms | ours/transformers {o / t:.2f}x")


def parity() -> None:
    _, data = laion()
    waves = clips()
    print(f"{len(waves)} clips of {', '.join(f'{len(w) / 48000:.2f}' for w in waves)} s; max abs differences")
    for fusion in (False, True):
        reference = perturbed(laion_model("transformer", fusion=fusion))
        ours = ours_from(reference)
        truncating = "fusion" if fusion else "rand_trunc"
        with torch.inference_mode():
            feats = [data.get_audio_features({}, torch.from_numpy(w), 480_000, data_truncating=truncating,
                                             data_filling="repeatpad", audio_cfg=CFG_AUDIO) for w in waves]
            expected = reference.get_audio_embedding(feats)
            if fusion:
                laion_mel = torch.stack([f["mel_fusion"] for f in feats])
            else:
                branch = reference.audio_branch
                laion_mel = branch.logmel_extractor(branch.spectrogram_extractor(torch.stack([f["waveform"] for f in feats])))
            our_mel = ours.audio_input(waves)
            on_their_features = F.normalize(ours.audio_embeddings(laion_mel), dim=-1)
            on_our_features = ours.embed_audio(waves)
        name = "fusion" if fusion else "plain"
        spread = float((expected[0] - expected[1]).abs().max())
        print(f"{name:>6}: log-mel ours vs laion_clap {float((our_mel - laion_mel).abs().max()):.3g} dB | "
              f"ours on laion_clap's features {float((on_their_features - expected).abs().max()):.3g} | "
              f"end to end {float((on_our_features - expected).abs().max()):.3g} | "
              f"(two clips differ by {spread:.3g})")


def main(argv: list[str]) -> None:
    steps = {"parity": parity, "forward": forward}
    base = next((Path(a) for a in argv if a not in (*steps, "startup")), Path("/work/main"))
    chosen = [a for a in argv if a in (*steps, "startup")] or ["parity", "startup", "forward"]
    for step in chosen:
        startup(base) if step == "startup" else steps[step]()


if __name__ == "__main__":
    main(sys.argv[1:])
