"""--batch-size, and the default of 4 on a CPU / 32 on CUDA, reach the model's forward as one batch."""
import pytest
from conftest import write
from fakes import BandEncoder
from typer.testing import CliRunner

from proto_index import Store
from proto_index.cli.app import app
from proto_index.clap.model import ClapModel
from proto_index.embed.seeded import random_encoder
from proto_index.options import EmbedOptions
from proto_index.engine.embedding import batch_windows_for, default_batch_size

runner = CliRunner()


def record_forwards(monkeypatch, calls, devices=None):
    """Every audio forward's batch size (and the device its features are on) goes to ``calls`` (``devices``)."""
    real = ClapModel.audio_embeddings

    def recording(self, features, towers=None):
        calls.append(len(features))
        if devices is not None:
            devices.append(features.device.type)
        return real(self, features, towers)

    monkeypatch.setattr(ClapModel, "audio_embeddings", recording)


@pytest.fixture
def forwards(monkeypatch):
    calls: list[int] = []
    record_forwards(monkeypatch, calls)
    return calls


@pytest.fixture
def ten_clips(tmp_path):
    for i in range(10):
        write(tmp_path / "clips" / f"c{i}.wav", [(500.0 + 100 * i, 0.5)], seconds=1.0, seed=i)
    return tmp_path / "clips"


@pytest.mark.slow
@pytest.mark.parametrize("option, expected", [(["--batch-size", "6"], [6, 4]), ([], [4, 4, 2])])
def test_cli_batch_size_reaches_the_model_forward(tmp_path, ten_clips, forwards, option, expected):
    store = tmp_path / "store"
    assert runner.invoke(app, ["init", "--store", str(store), "--model", "clap-tiny-random", "--device", "cpu"]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(ten_clips), "--store", str(store), "--device", "cpu", "-q", *option])
    assert result.exit_code == 0, result.output
    assert forwards == expected  # the encoder's own default of 16 does not re-split (or merges) batches


@pytest.mark.slow
def test_a_batch_above_the_encoders_own_is_not_resplit(ten_clips, forwards):
    encoder = random_encoder("clap-tiny-random", fusion=False, device="cpu", batch_size=2)
    from proto_index.engine.embedding import embed_files

    list(embed_files(sorted(ten_clips.iterdir()), encoder, options=EmbedOptions(batch_windows=8)))
    assert forwards == [8, 2] and encoder.batch_size == 2  # given per call: the encoder is not changed


def test_default_batch_size_by_device():
    assert default_batch_size("cpu") == 4
    assert default_batch_size("cuda") == 32 and default_batch_size("cuda:1") == 32


def test_store_loads_the_model_with_its_devices_default(tmp_path, monkeypatch):
    """The CUDA path without a GPU: the batch size the store asks the model loader for."""
    asked = []

    def fake_load(name, **kwargs):
        asked.append((kwargs["device"], kwargs["batch_size"]))
        encoder = BandEncoder()
        encoder.device = kwargs["device"]
        return encoder

    Store.init(tmp_path / "s", model="fake-bands", encoder=BandEncoder()).close()
    monkeypatch.setattr("proto_index.embed.registry.load_encoder", fake_load)
    for device in ("cuda", "cuda:1", "cpu"):
        with Store.open(tmp_path / "s", device=device) as s:
            s.encoder
    assert asked == [("cuda", 32), ("cuda:1", 32), ("cpu", 4)]


class CudaLike(BandEncoder):
    """A recording encoder that says it runs on CUDA and splits batches at its own batch_size unless a
    call gives one, like the CLAP encoders."""

    device = "cuda"

    def __init__(self):
        super().__init__()
        self.batch_size = 16
        self.forwards: list[int] = []

    def embed_waveforms(self, waveforms, *, batch_size=None):
        size = batch_size or self.batch_size
        out = []
        for i in range(0, len(waveforms), size):
            self.forwards.append(len(waveforms[i:i + size]))
            out.append(super().embed_waveforms(waveforms[i:i + size]))
        import numpy as np

        return np.concatenate(out)


def test_cuda_default_of_32_reaches_the_forward(tmp_path):
    for i in range(40):
        write(tmp_path / "in" / f"c{i:02}.wav", [(500.0, 0.5)], seconds=0.5, seed=i)
    encoder = CudaLike()
    with Store.init(tmp_path / "s", model="fake-bands", encoder=encoder) as s:
        s.ingest([tmp_path / "in"])
    assert encoder.forwards == [32, 8] and encoder.batch_size == 16  # before: [16, 16, 8]


class OwnBatches(CudaLike):
    """An encoder whose embed_waveforms takes no batch size: it is called as the protocol says, unchanged."""

    def embed_waveforms(self, waveforms):
        return super().embed_waveforms(waveforms)


def test_an_encoder_without_a_batch_size_argument_keeps_its_own(tmp_path):
    for i in range(40):
        write(tmp_path / "in" / f"c{i:02}.wav", [(500.0, 0.5)], seconds=0.5, seed=i)
    encoder = OwnBatches()
    with Store.init(tmp_path / "s", model="fake-bands", encoder=encoder) as s:
        s.ingest([tmp_path / "in"])
    assert encoder.forwards == [16, 16, 8] and encoder.batch_size == 16


def test_batch_windows_for_rejects_nonpositive():
    with pytest.raises(ValueError, match="batch_windows must be positive"):
        batch_windows_for(BandEncoder(), 0)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("option, expected", [(["--batch-size", "6"], [6, 4]), ([], [10])])
def test_cli_batch_size_reaches_the_cuda_forward(tmp_path, ten_clips, monkeypatch, option, expected):
    """The same on a real CUDA model: --batch-size, or the CUDA default of 32, is the forward's batch."""
    calls, devices = [], []
    record_forwards(monkeypatch, calls, devices)
    store = tmp_path / "store"
    assert runner.invoke(app, ["init", "--store", str(store), "--model", "clap-tiny-random", "--device", "cpu"]).exit_code == 0
    result = runner.invoke(app, ["ingest", str(ten_clips), "--store", str(store), "--device", "cuda", "-q", *option])
    assert result.exit_code == 0, result.output
    assert calls == expected and set(devices) == {"cuda"}
