"""Issue 16's measurement: can transformers' CLAP give laion_clap's vectors?

Builds laion_clap's seeded HTSAT-tiny (fusion and not; batch-norm statistics and every other weight
moved off their initial constants), maps its state dict into proto_index.clap's model (transformers'
ClapAudioModel + projection), and prints max abs differences of unit embeddings, float32:
transformers' tower on laion_clap's own features, the same tower on proto_index.clap's features, and
the two log-mel inputs themselves (dB).

    nice .venv/bin/python bench/clap_towers.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_clap_module import CFG_AUDIO, clips, laion_model, ours_from, perturbed  # noqa: E402

from proto_index.embed.offline import laion  # noqa: E402


def main() -> None:
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
              f"transformers on laion_clap's features {float((on_their_features - expected).abs().max()):.3g} | "
              f"end to end {float((on_our_features - expected).abs().max()):.3g} | "
              f"(two clips differ by {spread:.3g})")


if __name__ == "__main__":
    main()
