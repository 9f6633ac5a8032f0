"""Generated environmental audio: the world of the demo (scripts/demo.sh), of clap-tiny-demo's
training, of the tests and of the benchmarks.

Six foreground sound classes (:mod:`.sounds`) over five environments' backgrounds
(:mod:`.environments`), mixed at an RMS SNR by the project's one mixer
(:func:`proto_index.evaluation.mixing.mix`) and written in varied rates, channels, formats and
durations (:mod:`.clips`). Everything is deterministic given a seed (or a ``numpy.random.Generator``);
signals are mono float64 arrays at the requested rate; the writers add channels and pick file formats.
"""
from proto_index.generated_audio.clips import (
    FORMATS, RATES, SynthClip, SynthSet, mix, write_archive, write_backgrounds, write_corpus,
)
from proto_index.generated_audio.environments import BACKGROUND_ENVIRONMENTS, BACKGROUND_RMS, make_background
from proto_index.generated_audio.sounds import FOREGROUND_LABELS, FOREGROUND_RMS, make_foreground

__all__ = [
    "BACKGROUND_ENVIRONMENTS", "BACKGROUND_RMS", "FOREGROUND_LABELS", "FOREGROUND_RMS", "FORMATS",
    "RATES", "SynthClip", "SynthSet", "make_background", "make_foreground", "mix", "write_archive",
    "write_backgrounds", "write_corpus",
]
