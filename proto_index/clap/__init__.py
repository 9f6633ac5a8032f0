"""CLAP inference owned by proto-index: configs, safe checkpoint loading, batched features on the
model's device, audio and text embeddings (see :mod:`proto_index.clap.model`)."""
from proto_index.clap.config import RELEASED, AudioConfig, ClapConfig, TextConfig, config

__all__ = ["RELEASED", "AudioConfig", "ClapConfig", "TextConfig", "config"]
