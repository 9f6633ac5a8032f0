"""Record laion_clap's own vectors for the project's seeded CLAP weights (tests/fixtures/clap_reference.npz).

    python scripts/record_clap_reference.py      # needs laion_clap: PROTO_INDEX_PARITY=1 scripts/setup.sh installs it

For each configuration the project loads (HTSAT-tiny and -base, with and without fusion, the
``transformer`` and RoBERTa text towers), the weights drawn by proto_index.clap.seeded are put into
laion_clap's own model (built by its factory, names mapped by proto_index.clap.checkpoint.to_laion),
which embeds the test clips with its own feature path and token rows with its own text code. The
test (tests/clap/test_clap_reference.py) compares proto_index's vectors for the same weights and inputs
with these, so laion_clap is needed only to record them again, not to run the tests.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from clap_reference_inputs import CONFIGS, SEED, clips, roberta_tokens, transformer_tokens  # noqa: E402
from laion_reference import laion_audio, laion_model, laion_text  # noqa: E402
from proto_index.clap import config  # noqa: E402
from proto_index.clap.checkpoint import to_laion  # noqa: E402
from proto_index.clap.seeded import drawn_state  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "clap_reference.npz"


def record() -> dict[str, np.ndarray]:
    waves = clips()
    arrays: dict[str, np.ndarray] = {}
    for name, (size, fusion, text) in CONFIGS.items():
        cfg = config(size, fusion=fusion, text=text)
        reference = laion_model(text, fusion=fusion, audio=f"HTSAT-{size}")
        theirs = reference.state_dict()
        ours = to_laion(drawn_state(cfg, SEED))
        unknown = sorted(set(ours) - set(theirs))
        assert not unknown, unknown[:3]
        for key, value in ours.items():
            assert theirs[key].shape == value.shape, key
        # what to_laion leaves out (the AudioSet head, STFT kernels, masks) keeps laion_clap's own values
        reference.load_state_dict(ours, strict=False)
        arrays[f"{name}/audio"] = laion_audio(reference, waves).numpy()
        ids, mask = transformer_tokens() if text == "transformer" else roberta_tokens()
        arrays[f"{name}/text"] = laion_text(reference, ids, mask).numpy()
        print(f"{name}: audio {arrays[f'{name}/audio'].shape}, text {arrays[f'{name}/text'].shape}", flush=True)
    return arrays


def main() -> None:
    import laion_clap  # noqa: F401

    from importlib.metadata import version

    arrays = record()
    arrays["versions"] = np.array([f"laion_clap {version('laion_clap')}", f"torch {torch.__version__}"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
