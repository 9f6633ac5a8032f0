"""The released-checkpoint models (``clap``, ``clap-fusion``, ``--checkpoint``) on proto_index.clap:
laion_clap's vectors from the same file, the same identity as stores made with laion_clap's build,
no laion_clap or process-wide change on their path, and one encoder shared by threads."""
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from concurrency import embed_from_threads
from roberta_files import write_tokenizer
from suite_paths import TESTS

from proto_index.errors import ModelError

torch = pytest.importorskip("torch")

TOLERANCE = 1e-5
TEXTS = ["a dog barking", "rain on a tin roof", "", "sirens " * 40]


def clips(lengths=(480_000, 300_000, 72_000, 4_801, 1_000), seed=7):
    rng = np.random.default_rng(seed)
    return [(0.5 * np.sin(2 * np.pi * (200 + 300 * i) * np.arange(n) / 48_000) + rng.normal(0, 0.1, n))
            .astype(np.float32) for i, n in enumerate(lengths)]


def write_released(path, state):
    """``state`` (laion_clap's names) as a released file: ``module.`` prefixes, optimizer state with
    numpy numbers, the position ids older transformers saved."""
    state = {f"module.{k}": v for k, v in state.items()}
    state.setdefault("module.text_branch.embeddings.position_ids", torch.arange(514)[None])
    torch.save({"epoch": 45, "state_dict": state, "optimizer": {"lr": np.float64(1e-4)}}, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A random HTSAT-tiny + RoBERTa in the released layout (no laion_clap needed) and a tokenizer."""
    from proto_index.clap import config
    from proto_index.clap.checkpoint import to_laion
    from proto_index.clap.seeded import drawn_state

    folder = tmp_path_factory.mktemp("released")
    state = drawn_state(config("tiny", fusion=False), 3)
    path = write_released(folder / "630k-audioset-best.pt", to_laion(state))
    return path, write_tokenizer(folder / "tok")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_released_checkpoint_matches_laion_clap_with_the_same_identity(tmp_path, cache):
    """A RoBERTa checkpoint laion_clap built and saved, loaded through load_encoder('clap'): laion_clap's
    vectors from laion_clap's own CLAP_Module, the identity stores made before hold."""
    from laion_reference import laion, laion_model

    from proto_index.audio.decode import quantize_int16
    from proto_index.embed.registry import load_encoder

    reference = laion_model("roberta", fusion=False, seed=7)
    model_cfg = reference.model_cfg
    path = write_released(tmp_path / "630k-audioset-best.pt", reference.state_dict())
    tokenizer_dir = write_tokenizer(tmp_path / "tok")

    encoder = load_encoder("clap", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu", batch_size=3)

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert encoder.identity.to_json() == json.dumps({"architecture": "HTSAT-tiny+roberta", "dim": 512, "fusion": False,
                                                     "name": "clap", "weights": f"sha256:{sha}"}, sort_keys=True)
    laion()
    from laion_clap.hook import CLAP_Module
    from transformers import RobertaTokenizer

    module = object.__new__(CLAP_Module)  # its __init__ would download roberta-base
    torch.nn.Module.__init__(module)
    module.model, module.model_cfg, module.enable_fusion = reference, model_cfg, False
    module.tokenize = RobertaTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    waves = [quantize_int16(w) for w in clips()]  # as the pipeline hands them over; laion_clap quantises again
    assert not encoder.text_built
    ours = encoder.embed_waveforms(waves)
    assert not encoder.text_built  # audio never builds RoBERTa
    with torch.no_grad():
        audio_diff = float(np.abs(ours - module.get_audio_embedding_from_data(waves)).max())
        text_diff = float(np.abs(encoder.embed_texts(TEXTS) - module.get_text_embedding(TEXTS)).max())
    print(f"\nclap from a released file vs laion_clap: audio {audio_diff:.3g}, text {text_diff:.3g}")
    assert encoder.text_built
    assert audio_diff <= TOLERANCE and text_diff <= TOLERANCE

    with pytest.raises(ModelError, match="it is a non-fusion checkpoint, the model is a fusion one"):
        load_encoder("clap-fusion", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu")


@pytest.mark.slow
def test_threads_share_one_encoder_and_get_the_sequential_vectors(files, cache):
    """N threads embed different clips and texts through one encoder (its text tower built by
    whichever comes first) and get exactly the vectors one thread gets; the process is left as it was."""
    from proto_index.embed.registry import load_encoder

    path, tokenizer_dir = files
    reference = load_encoder("clap", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu", batch_size=2)
    work = [(clips((480_000, 30_000 + 1_000 * i, 4_801), seed=i), [TEXTS[i], f"sound number {i}"]) for i in range(4)]
    expected = [(reference.embed_waveforms(w, batch_size=3), reference.embed_texts(t)) for w, t in work]
    assert not np.array_equal(expected[0][0], expected[1][0]) and not np.array_equal(expected[0][1], expected[1][1])

    shared = load_encoder("clap", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu", batch_size=2)
    env, filters = dict(os.environ), list(warnings.filters)
    results = embed_from_threads(shared, work)

    for i, (audio, text) in enumerate(expected):
        np.testing.assert_array_equal(results[i][0], text)
        np.testing.assert_array_equal(results[i][1], audio)
    assert shared.batch_size == 2 and dict(os.environ) == env and list(warnings.filters) == filters


ALONE = """
import json, os, socket, sys, warnings
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled by test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = lambda self, *a: refuse(*a)
import numpy as np
import torch
import torch.fx.experimental.symbolic_shapes  # what torch adds to the filters (sympy's) on its first meta-device build, first
env, filters = dict(os.environ), list(warnings.filters)
from proto_index.embed.registry import load_encoder
encoder = load_encoder("clap", checkpoint=sys.argv[1], tokenizer_dir=sys.argv[2], device="cpu")
audio = encoder.embed_waveforms([np.zeros(48000, np.float32), np.ones(1000, np.float32)])
after_audio = {"text_built": encoder.text_built}
text = encoder.embed_texts(["a dog"])
print(json.dumps({"attempts": attempts, "shapes": [audio.shape, text.shape], **after_audio,
                  "transformers": sorted(m for m in sys.modules if m.split(".")[0] == "transformers"),
                  "laion": sorted(m for m in ("laion_clap", "clap_module", "torchlibrosa", "librosa") if m in sys.modules),
                  "env": dict(os.environ) == env, "filters": list(warnings.filters) == filters}))
"""


@pytest.mark.slow
def test_the_checkpoint_path_needs_no_laion_clap_and_changes_nothing_process_wide(files, tmp_path):
    """In a fresh process, without the Hub's offline flags: no laion_clap, torchlibrosa or librosa, no
    network, no environment variable or warnings filter changed (beyond what importing torch does),
    RoBERTa untouched until the first text, and transformers never imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), PROTO_INDEX_CACHE=str(tmp_path / "cache"))
    path, tokenizer_dir = files
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(ALONE), str(path), str(tokenizer_dir)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "attempts": [], "shapes": [[2, 512], [1, 512]], "text_built": False, "transformers": [],
        "laion": [], "env": True, "filters": True}


LAION_AFTER = """
import json, sys
import numpy as np, torch
from proto_index.embed.registry import load_encoder
seeded = load_encoder("clap-tiny-random", device="cpu")
seeded.embed_waveforms([np.zeros(48000, np.float32)]), seeded.embed_texts(["a dog"])
released = load_encoder("clap", checkpoint=sys.argv[1], tokenizer_dir=sys.argv[2], device="cpu")
released.embed_waveforms([np.zeros(48000, np.float32)]), released.embed_texts(["a dog"])

# laion_clap's own public path, in the same process: CLAP_Module.load_ckpt on a released-layout file
# (its __init__ would download roberta-base: the module is built around a model of the same layout)
sys.path.insert(0, sys.argv[4])
from laion_reference import laion_model
import laion_clap.clap_module.factory as factory
from laion_clap.hook import CLAP_Module
model = laion_model("roberta", fusion=False, seed=1)
model_cfg = model.model_cfg
saved = {f"module.{k}": v + 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
saved["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]  # load_state_dict deletes it
torch.save({"epoch": 1, "state_dict": saved}, sys.argv[3])
module = object.__new__(CLAP_Module)
torch.nn.Module.__init__(module)
module.model, module.model_cfg, module.enable_fusion = model, model_cfg, False
module.load_ckpt(sys.argv[3], verbose=False)
import transformers
print(json.dumps({"version": factory.transformers.__version__ == transformers.__version__,
                  "loaded": all(torch.equal(v, saved["module." + k]) for k, v in model.state_dict().items())}))
"""


@pytest.mark.slow
def test_laion_claps_load_ckpt_works_after_a_proto_index_model(files, tmp_path):
    """Issue 16: after proto-index has loaded and run a model, laion_clap's CLAP_Module.load_ckpt (which
    reads transformers.__version__ through the module laion_clap imported) works in the same process."""
    env = {**os.environ, "PROTO_INDEX_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    path, tokenizer_dir = files
    pytest.importorskip("laion_clap")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(LAION_AFTER), str(path), str(tokenizer_dir),
                          str(tmp_path / "laion.pt"), str(TESTS)],
                         capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"version": True, "loaded": True}


@pytest.mark.slow
def test_bf16_is_within_cosine_0_9999_of_float32(files, cache):
    from proto_index.embed.registry import load_encoder

    path, tokenizer_dir = files
    waves = clips()
    fp32 = load_encoder("clap", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu")
    bf16 = load_encoder("clap", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu", precision="bf16")
    for ours, exact in ((bf16.embed_waveforms(waves), fp32.embed_waveforms(waves)),
                        (bf16.embed_texts(TEXTS), fp32.embed_texts(TEXTS))):
        assert ours.dtype == np.float32 and not np.array_equal(ours, exact)
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
        assert (ours * exact).sum(axis=1).min() >= 0.9999
    assert bf16.identity == fp32.identity


def test_tokenizer_folder_is_checked(tmp_path):
    from proto_index.embed.released import check_tokenizer_dir

    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(ModelError, match=r"lacks merges.txt \(roberta-base's files\)"):
        check_tokenizer_dir(tmp_path)


@pytest.mark.slow
def test_the_pipelines_batch_reaches_the_forward_per_call(files, cache, tmp_path, monkeypatch):
    import soundfile as sf

    from proto_index.embed.registry import load_encoder
    from proto_index.options import EmbedOptions
    from proto_index.engine.embedding import embed_files

    path, tokenizer_dir = files
    encoder = load_encoder("clap", checkpoint=path, tokenizer_dir=tokenizer_dir, device="cpu", batch_size=2)
    forwards, real = [], encoder.model.audio_embeddings
    monkeypatch.setattr(encoder.model, "audio_embeddings",
                        lambda features, towers=None: forwards.append(len(features)) or real(features, towers))
    paths = []
    for i, wave in enumerate(clips((48_000,) * 7)):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], wave, 48_000, subtype="FLOAT")
    list(embed_files(paths, encoder, options=EmbedOptions(batch_windows=5)))
    assert forwards == [5, 2] and encoder.batch_size == 2
