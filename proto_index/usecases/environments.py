"""Environments and their background data: text prompts and/or background recordings."""
from __future__ import annotations

from pathlib import Path
from sqlalchemy import select

from proto_index.audio.discover import file_sha256, find_audio_files
from proto_index.core.adaptation import background_prompts
from proto_index.core.tau import finite_tau
from proto_index.engine.model import LazyEncoder
from proto_index.options.environments import EnvironmentOptions
from proto_index.errors import REPLACE, AlreadyExists, AudioDecodeError, InvalidInput
from proto_index.store.views import EnvironmentView, environment_view, get_environment
from proto_index.engine.embedding import EmbeddedFile, FailedFile, embed_files
from proto_index.store.names import check_text, claim_name
from proto_index.usecases.preflight import check_environment_background
from proto_index.store.schema import BackgroundVector, Environment
from proto_index.store.storage import Storage, to_blob


def add_environment(
    storage: Storage,
    model: LazyEncoder,
    name: str,
    options: EnvironmentOptions = EnvironmentOptions(),
) -> EnvironmentView:
    """Register an environment with a text background (three prompts about ``options.text``) and/or
    audio backgrounds (``options.audio``).

    Each background recording contributes one vector, the mean of its window embeddings. Nothing is
    stored unless every recording decodes. With neither text nor audio, the name itself (underscores
    read as spaces) describes the environment, as the paper's text backgrounds use scene names.
    Every input is checked (and the recordings found) before ``model`` loads.
    """
    text, audio, replace = options.text, list(options.audio), options.replace
    name = check_text(name, "environment name")
    with storage.session() as s:
        if s.scalar(select(Environment.id).where(Environment.name == name)) is not None and not replace:
            raise AlreadyExists(f"environment {name!r} already exists", hint=REPLACE)
    check_environment_background(storage, text, audio)
    if text is None and not audio:
        text = name.replace("_", " ")
    prompts: list[str] = []
    if text is not None:
        try:
            prompts = background_prompts(text)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
    files: list[Path] = []
    if audio:
        discovery = find_audio_files(audio)
        if discovery.problems:
            raise AudioDecodeError("background recordings that cannot be read: "
                                   + "; ".join(f"{p}: {why}" for p, why in discovery.problems))
        files = discovery.files
        if not files:
            raise InvalidInput(f"no audio files found in {', '.join(map(str, audio))}")

    encoder = model.get()
    storage.check_identity(encoder.identity)
    backgrounds: list[BackgroundVector] = []
    if prompts:
        for prompt, vec in zip(prompts, encoder.embed_texts(prompts)):
            backgrounds.append(BackgroundVector(kind="text", source=prompt, vector=to_blob(vec)))
    if files:
        embedded = list(embed_files(files, encoder))
        failed = [e for e in embedded if isinstance(e, FailedFile)]
        if failed:
            raise AudioDecodeError(
                "background recordings that could not be decoded: "
                + "; ".join(f"{f.path}: {f.error}" for f in failed)
            )
        for done in embedded:
            if not isinstance(done, EmbeddedFile):  # failures raised above; nothing is skipped here
                continue
            backgrounds.append(BackgroundVector(kind="audio", source=str(done.path), sha256=file_sha256(done.path),
                                                vector=to_blob(done.pooled())))

    with claim_name(storage, Environment, name, "environment", replace) as s:
        env = Environment(name=name, description=text, tau_audio=options.tau_audio, tau_text=options.tau_text)
        env.backgrounds = backgrounds
        s.add(env)
        s.flush()
        return environment_view(env, storage.identity.dim)


def list_environments(storage: Storage) -> list[EnvironmentView]:
    with storage.session() as s:
        return [environment_view(e, storage.identity.dim) for e in s.scalars(select(Environment).order_by(Environment.name))]


def set_tau(storage: Storage, name: str, audio: float | None = None, text: float | None = None) -> EnvironmentView:
    """Store an environment's tau for audio and/or text backgrounds (None leaves one as it is)."""
    audio, text = _tau(audio, "audio"), _tau(text, "text")
    with storage.session() as s:
        env = get_environment(s, name)
        if audio is not None:
            env.tau_audio = audio
        if text is not None:
            env.tau_text = text
        s.flush()
        return environment_view(env, storage.identity.dim)


def _tau(value: float | None, kind: str) -> float | None:
    """None, or a finite tau for ``kind`` backgrounds (:class:`InvalidInput` otherwise)."""
    try:
        return None if value is None else finite_tau(value, f"the tau for {kind} backgrounds")
    except ValueError as e:
        raise InvalidInput(str(e)) from None
