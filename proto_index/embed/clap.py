"""ClapEncoder: the Encoder over laion_clap's own model factory, feature preparation and tokenizers.

Nothing here reimplements laion_clap; it builds the model with ``create_model`` and prepares audio with
``get_audio_features`` exactly as ``laion_clap.CLAP_Module`` does. laion_clap (and torch) are imported
lazily, on first use, by :func:`laion`.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sys
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from proto_index.atomic import atomic_write
from proto_index.audio.discover import file_sha256
from proto_index.embed.download import cache_dir
from proto_index.embed.encoder import SAMPLE_RATE, WINDOW_SECONDS, ModelIdentity
from proto_index.embed.quiet import quiet
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

AUDIO_MODEL = "HTSAT-tiny"
MAX_SAMPLES = int(SAMPLE_RATE * WINDOW_SECONDS)
TEXT_LENGTH = 77
TOKENIZER_FILES = ("vocab.json", "merges.txt")
PRECISIONS = ("fp32", "bf16")
"""Compute precisions: float32; bfloat16 autocast (CPU or CUDA); float16 autocast (CUDA only)."""
ROBERTA_BASE = {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                "layer_norm_eps": 1e-5}
"""What roberta-base's config sets apart from RobertaConfig's defaults (768 wide, 12 layers, 12 heads)."""

# Buffers that checkpoints saved with older transformers hold and current transformers lacks.
_STALE_KEYS = ("text_branch.embeddings.position_ids",)
_build_lock = threading.Lock()


def _hub_offline() -> None:
    """Put the Hugging Face Hub client in offline mode for the rest of the process.

    proto-index fetches its own files (download.py) and never wants the Hub. huggingface_hub reads
    HF_HUB_OFFLINE once, at its import, so when it is already imported its constant is set as well
    (transformers < 5 kept a copy of its own too).
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    transformers_hub = sys.modules.get("transformers.utils.hub")
    if transformers_hub is not None and hasattr(transformers_hub, "_is_offline_mode"):
        transformers_hub._is_offline_mode = True


@quiet
def laion() -> tuple[types.ModuleType, types.ModuleType]:
    """Import laion_clap without network access; return its ``clap_module`` and ``training.data``.

    laion_clap's training/data.py builds three Hugging Face tokenizers at import time; offline that
    retries for about 11 minutes unless the Hub is in offline mode, and proto-index never uses them.
    """
    _hub_offline()
    import laion_clap  # noqa: F401  (adds its folder to sys.path: its hook imports top-level `clap_module`)
    import clap_module
    from laion_clap.training import data

    return clap_module, data


@contextlib.contextmanager
def _roberta_from_config():
    """While laion_clap builds a model, make its RoBERTa text tower come from config, not the Hub.

    ``CLAP.__init__`` calls ``RobertaModel.from_pretrained('roberta-base')``, which downloads 500 MB
    of weights that the CLAP checkpoint then overwrites entirely. Only the name ``RobertaModel`` in
    laion_clap's model module is swapped, and only for the duration of construction, for an object
    whose ``from_pretrained`` builds the same architecture from roberta-base's config; transformers
    itself is not touched. The caller holds ``_build_lock``.
    """
    from transformers import RobertaConfig

    model_module = sys.modules["clap_module.model"]
    original = model_module.RobertaModel

    def from_config(name: str, *args: Any, **kwargs: Any):
        if name != "roberta-base":
            raise ModelError(f"laion_clap asked for text tower {name!r}; only roberta-base is supported")
        return original(RobertaConfig(**ROBERTA_BASE))

    model_module.RobertaModel = types.SimpleNamespace(from_pretrained=from_config)
    try:
        yield
    finally:
        model_module.RobertaModel = original


@quiet
def create_clap_model(tmodel: str, *, fusion: bool, seed: int = 0) -> tuple[torch.nn.Module, dict]:
    """Build laion_clap's CLAP (HTSAT-tiny audio tower, ``tmodel`` text tower) on the CPU.

    Randomly initialised from ``seed``, deterministically, without disturbing the caller's RNG
    state. Returns ``(model, model_cfg)`` as laion_clap's ``create_model`` does.
    """
    clap_module, _ = laion()
    import torch

    fusion_args = {"fusion_type": "aff_2d"} if fusion else {}
    with _build_lock, _roberta_from_config(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, model_cfg = clap_module.create_model(AUDIO_MODEL, tmodel, precision="fp32", device="cpu",
                                                    enable_fusion=fusion, **fusion_args)
    return model.eval(), model_cfg


def _checkpoint_globals() -> list:
    """The non-tensor types a released checkpoint may hold besides its state dict: numpy scalars and
    arrays (laion_clap's scheduler writes numpy floats into the optimizer's learning rates). Nothing
    that runs code: every other global is refused by torch's weights-only unpickler."""
    import numpy.core.multiarray as multiarray

    dtypes = [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")]
    return [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file, released layout (``{'state_dict': {'module.…': …}}``) or bare.

    Loaded with ``weights_only=True``: a checkpoint that pickles a callable or any class beyond
    tensors, containers and numpy numbers is refused before anything in it runs.
    """
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_checkpoint_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(e))
        if unsafe:
            raise ModelError(f"refused checkpoint {path}: it holds a Python object that could run code "
                             f"({unsafe.group(1)}); proto-index loads tensors only") from None
        raise ModelError(f"not a PyTorch checkpoint: {_first_line(str(e), e)}") from None
    except Exception as e:  # reading arbitrary bytes can fail in many ways
        raise ModelError(f"not a PyTorch checkpoint: {_first_line(str(e), e)}") from e
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError("not a CLAP checkpoint: it holds no state dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _first_line(text: str, e: Exception) -> str:
    if "WeightsUnpickler error:" in text:  # torch buries the cause under advice
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` strictly, after dropping buffers current transformers no longer has."""
    fusion = model.enable_fusion
    expected = set(model.state_dict())
    state = {k: v for k, v in state.items() if k in expected or k not in _STALE_KEYS}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        kind = "fusion" if fusion else "non-fusion"
        if not fusion and any("fusion" in k for k in unexpected):
            hint = "it is a fusion checkpoint"
        elif fusion and any("fusion" in k for k in missing):
            hint = "it is a non-fusion checkpoint"
        else:
            hint = f"{len(missing)} weights missing, {len(unexpected)} unexpected, e.g. {(missing + unexpected)[0]}"
        raise ModelError(f"checkpoint does not fit the {kind} {model_architecture(model)} model: {hint}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e))
        raise ModelError(f"checkpoint does not fit {model_architecture(model)}: {detail}") from e


def model_architecture(model: torch.nn.Module) -> str:
    """E.g. ``HTSAT-tiny+roberta``."""
    return f"{AUDIO_MODEL}+{model.text_branch_type}"


def state_sha256(model: torch.nn.Module) -> str:
    """``sha256:<hex>`` over the model's state dict: names, dtypes, shapes and bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + digest.hexdigest()


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a checkpoint (its identity), remembered in ``cache_dir()/sha256.json`` by
    path, size and mtime."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    store = cache_dir() / "sha256.json"
    try:
        known = json.loads(store.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(str(path)) if isinstance(known, dict) else None
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and "sha256" in entry:
        return entry["sha256"]

    result = "sha256:" + file_sha256(path)
    known = known if isinstance(known, dict) else {}
    known[str(path)] = {**stamp, "sha256": result}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(store, durable=False) as f:  # a cache: a lost entry only means hashing again
            f.write(json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass  # an unwritable cache only means hashing again next time
    return result


def check_tokenizer_dir(tokenizer_dir: str | os.PathLike) -> Path:
    """``tokenizer_dir`` as a Path; :class:`ModelError` unless it holds roberta-base's tokenizer files."""
    folder = Path(tokenizer_dir).expanduser()
    missing = [n for n in TOKENIZER_FILES if not (folder / n).is_file()]
    if missing:
        raise ModelError(f"tokenizer folder {folder} lacks {' and '.join(missing)} (roberta-base's files)")
    return folder


def roberta_tokenizer(tokenizer_dir: str | os.PathLike):
    """roberta-base's BPE tokenizer from a folder holding its ``vocab.json`` and ``merges.txt``."""
    folder = check_tokenizer_dir(tokenizer_dir)
    _hub_offline()
    from transformers import RobertaTokenizer

    try:
        return RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as e:  # transformers raises assorted errors for malformed files
        raise ModelError(f"cannot read the RoBERTa tokenizer files in {folder}: {e}") from e


def check_precision(precision: str, device: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and ``device`` can run it, else :class:`ModelError`."""
    if precision == "fp16":
        # measured on an H100: float16 autocast overflows in the non-fusion HTSAT audio tower (NaN vectors)
        raise ModelError("fp16 is not supported: HTSAT-tiny's audio tower overflows to NaN in float16; use bf16")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def cpu_bf16_audio_model(model: torch.nn.Module) -> torch.nn.Module:
    """A view of ``model`` whose audio tower runs in bfloat16 on the CPU; ``model`` itself is not touched.

    The returned object is a shallow copy of laion_clap's CLAP (its own ``get_audio_embedding`` and
    text tower, shared) with a bfloat16 copy of the audio branch and projection, except the
    spectrogram front end, which stays float32: its STFT runs as an FFT (``torch.stft``) when the
    frozen conv1d weights are torchlibrosa's windowed DFT basis (checked, to 1e-6), because oneDNN
    runs that 1024-tap, 1-input-channel conv1d at about float32 speed whatever the dtype (10 ms per
    clip on 2 cores, a sixth of the bf16 forward; the FFT takes under 1 ms), and float32 is the
    more accurate choice for it anyway; the log-mel filter bank and ``bn0`` stay float32 too.
    Run it under ``torch.autocast('cpu', dtype=torch.bfloat16)``.
    """
    import copy

    import torch

    audio = copy.deepcopy(model.audio_branch).to(torch.bfloat16)
    if hasattr(audio, "spectrogram_extractor"):
        audio.spectrogram_extractor = float32_module(copy.deepcopy(model.audio_branch.spectrogram_extractor))
        stft = audio.spectrogram_extractor.inner.stft
        if _is_windowed_dft(stft):
            audio.spectrogram_extractor.inner.stft = fft_stft(stft)
    if hasattr(audio, "logmel_extractor"):
        audio.logmel_extractor = float32_module(copy.deepcopy(model.audio_branch.logmel_extractor))
    if hasattr(audio, "bn0"):
        audio.bn0 = copy.deepcopy(model.audio_branch.bn0)
    view = copy.copy(model)
    view._modules = dict(model._modules)
    view._modules["audio_branch"] = audio.eval()
    view._modules["audio_projection"] = copy.deepcopy(model.audio_projection).to(torch.bfloat16).eval()
    return view


def _is_windowed_dft(stft) -> bool:
    """Whether torchlibrosa's STFT convs hold window x cos / -sin of the DFT (the window is row 0 of the real part)."""
    import math

    import torch

    real = getattr(stft, "conv_real", None)
    imag = getattr(stft, "conv_imag", None)
    if real is None or imag is None or real.weight.shape[1] != 1 or real.padding != (0,):
        return False
    n_fft = real.weight.shape[-1]
    if real.weight.shape[0] != n_fft // 2 + 1 or getattr(stft, "n_fft", None) != n_fft:
        return False
    w_real = real.weight[:, 0, :].double()
    w_imag = imag.weight[:, 0, :].double()
    window = w_real[0]
    angle = 2 * math.pi * torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None] \
        * torch.arange(n_fft, dtype=torch.float64)[None, :] / n_fft
    return bool((w_real - torch.cos(angle) * window).abs().max() < 1e-6
                and (w_imag + torch.sin(angle) * window).abs().max() < 1e-6)


@functools.lru_cache(maxsize=None)
def _fp32_modules():
    import torch

    class Float32(torch.nn.Module):
        """Runs ``inner`` in float32 with autocast off."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner.float()

        def forward(self, x):
            with torch.autocast(x.device.type, enabled=False):
                return self.inner(x.float())

    class FFTSTFT(torch.nn.Module):
        """torchlibrosa's STFT (same framing, padding, window and output layout) by ``torch.stft``."""

        def __init__(self, stft):
            super().__init__()
            self.n_fft = stft.n_fft
            self.hop = stft.conv_real.stride[0]
            self.center = stft.center
            self.pad_mode = stft.pad_mode
            self.register_buffer("window", stft.conv_real.weight[0, 0, :].detach().float().clone())

        def forward(self, x):
            spec = torch.stft(x.float(), self.n_fft, hop_length=self.hop, win_length=self.n_fft, window=self.window,
                              center=self.center, pad_mode=self.pad_mode, return_complex=True)
            spec = spec.transpose(1, 2)[:, None]  # (batch, 1, time, freq) as torchlibrosa returns
            return spec.real, spec.imag

    return Float32, FFTSTFT


def float32_module(inner: torch.nn.Module) -> torch.nn.Module:
    """``inner`` (converted to float32) run with autocast off, on float32 input."""
    return _fp32_modules()[0](inner)


def fft_stft(stft: torch.nn.Module) -> torch.nn.Module:
    """A module computing torchlibrosa ``stft``'s output with ``torch.stft`` (check :func:`_is_windowed_dft` first)."""
    return _fp32_modules()[1](stft)


class ClapEncoder:
    """A laion_clap CLAP model behind the :class:`~proto_index.embed.encoder.Encoder` interface.

    Build one with :meth:`random` or :meth:`from_checkpoint`. ``model`` and ``model_cfg`` are
    laion_clap's own objects; ``tokenizer`` is needed for the ``roberta`` text tower only.

    ``precision``: ``fp32`` (default) or ``bf16`` runs both towers under
    ``torch.autocast`` with that type; on the CPU, bf16 audio goes through a bfloat16 copy of the
    audio tower (:func:`cpu_bf16_audio_model`, about 10% faster than autocast alone). The model's
    own weights stay float32 and untouched, so its identity does not change; vectors differ
    slightly from float32 ones (cosine >= 0.9999, tests/test_precision.py), are normalised again
    in float32 and returned as float32.
    """

    def __init__(self, model: torch.nn.Module, model_cfg: dict, identity: ModelIdentity, *,
                 tokenizer: Any = None, device: str | None = None, batch_size: int = 16,
                 precision: str = "fp32"):
        import torch

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if model.text_branch_type == "roberta" and tokenizer is None:
            raise ModelError("the roberta text tower needs its tokenizer")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = check_precision(precision, self.device)
        self._cpu_bf16_audio: torch.nn.Module | None = None
        self.model = model.to(self.device).eval()
        self.model_cfg = model_cfg
        self.identity = identity
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.fusion = bool(model_cfg["enable_fusion"])

    @classmethod
    def random(cls, name: str, *, fusion: bool, seed: int = 0, device: str | None = None,
               batch_size: int = 16, precision: str = "fp32") -> ClapEncoder:
        """HTSAT-tiny with laion_clap's bundled-BPE ``transformer`` text tower and seeded random weights."""
        model, model_cfg = create_clap_model("transformer", fusion=fusion, seed=seed)
        identity = ModelIdentity(name, model_architecture(model), fusion, state_sha256(model),
                                 model.joint_embed_shape)
        return cls(model, model_cfg, identity, device=device, batch_size=batch_size, precision=precision)

    @classmethod
    def from_checkpoint(cls, name: str, checkpoint: str | os.PathLike, tokenizer_dir: str | os.PathLike, *,
                        fusion: bool, device: str | None = None, batch_size: int = 16,
                        precision: str = "fp32") -> ClapEncoder:
        """HTSAT-tiny + RoBERTa with weights from a released laion_clap checkpoint file."""
        tokenizer = roberta_tokenizer(tokenizer_dir)
        state = read_checkpoint(checkpoint)
        model, model_cfg = create_clap_model("roberta", fusion=fusion)
        load_weights(model, state)
        del state
        identity = ModelIdentity(name, model_architecture(model), fusion, checkpoint_sha256(checkpoint),
                                 model.joint_embed_shape)
        return cls(model, model_cfg, identity, tokenizer=tokenizer, device=device, batch_size=batch_size,
                   precision=precision)

    @property
    def dim(self) -> int:
        return self.identity.dim

    def audio_model(self) -> torch.nn.Module:
        """The model audio runs through: :attr:`model`, or for bf16 on the CPU its bfloat16 audio view
        (:func:`cpu_bf16_audio_model`, built on first use)."""
        import torch

        if self.precision == "bf16" and torch.device(self.device).type == "cpu":
            if self._cpu_bf16_audio is None:
                self._cpu_bf16_audio = cpu_bf16_audio_model(self.model)
            return self._cpu_bf16_audio
        return self.model

    def autocast(self):
        """The context the towers run in: ``torch.autocast`` at :attr:`precision`, or nothing for fp32."""
        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(torch.device(self.device).type, dtype=dtype)

    @quiet
    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Embed quantised 48 kHz mono clips of at most 10 s; ``(n, dim)`` float32, L2-normalised."""
        import torch

        _, data = laion()
        clips = [np.ascontiguousarray(w, dtype=np.float32) for w in waveforms]
        for i, clip in enumerate(clips):
            if clip.ndim != 1 or not 0 < len(clip) <= MAX_SAMPLES:
                raise ValueError(f"waveform {i} has shape {clip.shape}; expected 1 to {MAX_SAMPLES} "
                                 "mono samples (window longer audio first)")
        truncating = "fusion" if self.fusion else "rand_trunc"
        model = self.audio_model()
        out = []
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(clips), self.batch_size):
                features = [data.get_audio_features({}, torch.from_numpy(clip), MAX_SAMPLES,
                                                    data_truncating=truncating, data_filling="repeatpad",
                                                    audio_cfg=self.model_cfg["audio_cfg"])
                            for clip in clips[start:start + self.batch_size]]
                out.append(self._unit(model.get_audio_embedding(features)))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    @quiet
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the model's own tokenizer; ``(n, dim)`` float32, L2-normalised."""
        import torch
        import torch.nn.functional as F

        clap_module, _ = laion()
        texts = list(texts)
        out = []
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(texts), self.batch_size):
                batch = texts[start:start + self.batch_size]
                if self.model.text_branch_type == "transformer":
                    # CLAP.get_text_embedding expects a dict of tensors and fails for this tower.
                    tokens = clap_module.tokenize(batch, context_length=TEXT_LENGTH).to(self.device)
                    emb = F.normalize(self.model.encode_text(tokens, device=self.device), dim=-1)
                else:
                    tokens = self.tokenizer(batch, padding="max_length", truncation=True,
                                            max_length=TEXT_LENGTH, return_tensors="pt")
                    emb = self.model.get_text_embedding(dict(tokens))
                out.append(self._unit(emb))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def _unit(self, embeddings: torch.Tensor) -> np.ndarray:
        """float32 numpy; below float32, normalised again in float32 (the model's own normalisation
        ran in the lower precision, leaving norms up to ~0.3% off 1)."""
        import torch.nn.functional as F

        embeddings = embeddings.float()
        if self.precision != "fp32":
            embeddings = F.normalize(embeddings, dim=-1)
        return embeddings.cpu().numpy()
