"""Choosing the domain adaptation (background subtraction) and its tau for an environment. Pure."""
from __future__ import annotations

from proto_index.core.tau import finite_tau

ADAPTATIONS = ("auto", "audio", "text", "none")

DEFAULT_TAU = {"audio": 0.7, "text": 0.2, "none": 0.0}
"""The paper's working values: tau ~ 0.7 with audio backgrounds, ~ 0.2 with text backgrounds."""

BACKGROUND_TEMPLATES = (
    "This is a sound of {bg}",
    "{Bg} sounds in the background",
    "This is a sound of {bg} in the background",
)
"""The paper's three prompts whose embeddings make an environment's text background."""


def background_prompts(description: str) -> list[str]:
    """The three text-background prompts for an environment description such as ``"metro station"``."""
    bg = description.strip()
    if not bg:
        raise ValueError("an environment description cannot be empty")
    cap = bg[0].upper() + bg[1:]
    return [t.replace("{bg}", bg).replace("{Bg}", cap) for t in BACKGROUND_TEMPLATES]


def resolve_adaptation(requested: str, has_audio: bool, has_text: bool) -> str:
    """``auto`` picks audio where the environment has recordings, else text, else none.

    An explicit ``audio`` or ``text`` the environment cannot supply raises ValueError.
    """
    if requested not in ADAPTATIONS:
        raise ValueError(f"unknown adaptation {requested!r}; choose one of {', '.join(ADAPTATIONS)}")
    if requested == "auto":
        return "audio" if has_audio else "text" if has_text else "none"
    if requested == "audio" and not has_audio:
        raise ValueError("no background recordings")
    if requested == "text" and not has_text:
        raise ValueError("no text background")
    return requested


def resolve_tau(adaptation: str, run_tau: float | None, env_tau: dict[str, float | None]) -> float:
    """The tau to use: 0 without adaptation, else the run's, else the environment's, else the default.

    A stored tau that is not finite raises ValueError."""
    if adaptation == "none":
        return 0.0
    if run_tau is not None:
        return float(run_tau)
    if env_tau.get(adaptation) is not None:  # a store written before taus were checked may hold inf or nan
        return finite_tau(env_tau[adaptation], f"its stored tau for {adaptation} backgrounds")
    return DEFAULT_TAU[adaptation]
