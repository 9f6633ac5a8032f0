"""How an environment is added (:class:`EnvironmentOptions`), from ``Store.add_environment`` to
:mod:`proto_index.usecases.environments`."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from proto_index.core.tau import finite_tau
from proto_index.errors import InvalidInput


@dataclass(frozen=True)
class EnvironmentOptions:
    """An environment's backgrounds and taus for ``Store.add_environment``: ``text`` (a description;
    three prompts are made of it) and/or ``audio`` (background recordings: files or folders; one path
    alone is taken as a list of one), the ``tau_audio`` / ``tau_text`` it keeps (None: the defaults),
    and ``replace`` an environment of that name. With neither text nor audio, the name describes it."""

    text: str | None = None
    audio: tuple[Path, ...] = ()
    tau_audio: float | None = None
    tau_text: float | None = None
    replace: bool = False

    def __post_init__(self):
        if self.text is not None and not isinstance(self.text, str):
            raise InvalidInput(f"the environment text must be text, got {self.text!r}")
        audio = (self.audio,) if isinstance(self.audio, (str, os.PathLike)) else self.audio
        try:
            paths = tuple(Path(p) for p in audio)
        except TypeError:
            raise InvalidInput(f"audio must be paths of background recordings, got {self.audio!r}") from None
        object.__setattr__(self, "audio", paths)
        for kind in ("audio", "text"):
            value = getattr(self, f"tau_{kind}")
            if value is not None:
                try:
                    object.__setattr__(self, f"tau_{kind}", finite_tau(value, f"the tau for {kind} backgrounds"))
                except ValueError as e:
                    raise InvalidInput(str(e)) from None
