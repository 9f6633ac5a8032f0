"""The CLI's choice options name exactly what the library accepts."""
from proto_index.cli.common import Decoder, Executor, Precision
from proto_index.embed.clap import PRECISIONS
from proto_index.engine.executors import EXECUTORS
from proto_index.options import DECODERS


def test_choice_enums_are_the_library_values():
    assert [e.value for e in Executor] == list(EXECUTORS)
    assert [d.value for d in Decoder] == list(DECODERS)
    assert [p.value for p in Precision] == list(PRECISIONS)
