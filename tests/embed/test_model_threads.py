"""One seeded model shared by threads: each thread gets exactly the vectors one thread alone gets, the
text side drawn once by whichever thread comes first, and nothing process-wide changes on the way
(environment, warning filters, torch's global generator, the modules of other packages)."""
import os
import sys
import warnings

import numpy as np
import pytest
from concurrency import embed_from_threads

torch = pytest.importorskip("torch")

from proto_index.embed.registry import load_encoder  # noqa: E402


def _clips(i):
    rng = np.random.default_rng(i)
    return [(0.3 * rng.standard_normal(n)).astype(np.float32) for n in (480_000, 24_000 + 1_000 * i, 4_801)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["clap-tiny-demo", "clap-fusion-tiny-random"])
def test_threads_share_one_seeded_encoder_and_get_the_sequential_vectors(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    reference = load_encoder(name, device="cpu", batch_size=2)
    work = [(_clips(i), [f"sound number {i}", "a dog barking" * (i + 1)]) for i in range(4)]
    expected = [(reference.embed_waveforms(w, batch_size=3), reference.embed_texts(t)) for w, t in work]
    assert not np.array_equal(expected[0][0], expected[1][0]) and not np.array_equal(expected[0][1], expected[1][1])

    shared = load_encoder(name, device="cpu", batch_size=2)
    assert not shared.text_built  # the package ships its identity: the text side waits for the first text
    env, filters, rng = dict(os.environ), list(warnings.filters), torch.random.get_rng_state()
    modules = {n: dict(vars(m)) for n, m in list(sys.modules.items())
               if m is not None and n.split(".")[0] in ("torch", "numpy", "transformers", "safetensors")}
    results = embed_from_threads(shared, work)

    for i, (audio, text) in enumerate(expected):
        np.testing.assert_array_equal(results[i][0], text)
        np.testing.assert_array_equal(results[i][1], audio)
    assert shared.identity == reference.identity and shared.batch_size == 2
    assert dict(os.environ) == env and list(warnings.filters) == filters
    assert torch.equal(torch.random.get_rng_state(), rng)
    changed = [n for n, before in modules.items() if n in sys.modules
               and {k: v for k, v in vars(sys.modules[n]).items() if k in before and v is not before[k]}]
    assert changed == []  # no attribute of torch, numpy, transformers or safetensors was swapped
