"""proto_index.clap against laion_clap's own vectors, recorded once (scripts/record_clap_reference.py).

The same seeded weights and inputs give the vectors laion_clap gave when the fixture was recorded,
for every architecture the project loads: HTSAT-tiny and -base, with and without fusion, audio
and text (its ``transformer`` tower and RoBERTa). No laion_clap is needed here; tests/clap/test_clap_module.py
compares with the live library where it is installed.
"""
import numpy as np
import pytest
from suite_paths import FIXTURES

torch = pytest.importorskip("torch")

from clap_reference_inputs import CONFIGS, SEED, clips, roberta_tokens, transformer_tokens  # noqa: E402
from proto_index.clap import config  # noqa: E402
from proto_index.clap.seeded import seeded_model  # noqa: E402

FIXTURE = FIXTURES / "clap_reference.npz"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_vectors_equal_laion_claps_recorded_ones(reference, name):
    size, fusion, text = CONFIGS[name]
    model = seeded_model(config(size, fusion=fusion, text=text), SEED)
    ids, mask = transformer_tokens() if text == "transformer" else roberta_tokens()

    audio = model.embed_audio(clips()).numpy()
    texts = model.embed_text(ids, mask).numpy()

    audio_diff = float(np.abs(audio - reference[f"{name}/audio"]).max())
    text_diff = float(np.abs(texts - reference[f"{name}/text"]).max())
    print(f"\n{name}: audio {audio_diff:.3g}, text {text_diff:.3g} ({', '.join(reference['versions'])})")
    assert audio_diff <= TOLERANCE and text_diff <= TOLERANCE
    # the inputs do tell the rows apart, so a mapping that mixed them up would show
    assert np.abs(texts[0] - texts[1]).max() > 1e-4 and np.abs(audio[0] - audio[1]).max() > 1e-5


def test_the_fixture_covers_every_architecture(reference):
    assert {k.rsplit("/", 1)[0] for k in reference if "/" in k} == set(CONFIGS)
    for key, value in reference.items():
        if "/" in key:
            assert value.dtype == np.float32 and value.shape == (4, 512)
            np.testing.assert_allclose(np.linalg.norm(value, axis=1), 1, atol=1e-5)
