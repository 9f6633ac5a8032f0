"""Every use case checks its inputs before it touches the store's model (a lazy handle, loaded once)."""
from __future__ import annotations

import pytest
from conftest import write
from fakes import BandEncoder

import proto_index.api
from proto_index import Store
from proto_index.errors import AlreadyExists, InvalidInput, NotFound
from proto_index.options import CalibrateOptions, EnvironmentOptions, ScoringOptions


def _clip(tmp_path):
    return write(tmp_path / "x.wav", [(700.0, 0.5)], seconds=2.0)


def test_every_use_case_checks_its_inputs_before_its_model_loads(fake_store, tmp_path, monkeypatch):
    """ingest, classify, prototypes build, env add, search and calibrate touch the store's model only
    through a lazy handle, after their checks: a bad input (or nothing to embed) loads nothing; a good
    run loads it once."""
    loads = []

    def counted(*args, **kwargs):
        loads.append(args)
        return BandEncoder()

    monkeypatch.setattr(proto_index.api, "_load_encoder", counted)
    clip, empty = _clip(tmp_path), tmp_path / "empty"
    empty.mkdir()
    manifest = tmp_path / "labelled.csv"
    manifest.write_text(f"path,environment,label\n{clip.name},park,siren\n")
    with Store.open(fake_store) as store:
        store.add_classes("c", ["siren", "dog bark"])
        for call, error, message in [
            (lambda: store.classify([(clip, "park")], "nope"), NotFound, "no prototype set named 'nope'"),
            (lambda: store.build_prototypes("nope"), NotFound, "no class set named 'nope'"),
            (lambda: store.add_environment("quiet", EnvironmentOptions(audio=[empty])), InvalidInput, "no audio files found in"),
            (lambda: store.search("  "), InvalidInput, "the search text is empty"),
            (lambda: store.calibrate(manifest, CalibrateOptions("nope")), NotFound, "no prototype set named 'nope'"),
        ]:
            with pytest.raises(error, match=message):
                call()
        assert store.ingest([empty]).added == 0  # nothing to read: no model
        assert loads == []
        store.build_prototypes("c")
        store.add_environment("park", EnvironmentOptions(text="park"))
        assert store.ingest([clip]).added == 1
        assert len(loads) == 1
    with Store.open(fake_store) as store:  # a new process: its model not loaded yet
        for call, error, message in [
            (lambda: store.build_prototypes("c"), AlreadyExists, "prototype set 'c-zero-shot' already exists"),
            (lambda: store.add_environment("park"), AlreadyExists, "environment 'park' already exists"),
            (lambda: store.classify([(clip, "beach")], "c-zero-shot"), NotFound, r"unknown environment\(s\): beach"),
            (lambda: store.classify([(clip, "park")], "c-zero-shot", scoring=ScoringOptions(adapt="audio")), InvalidInput,
             "environment 'park': no background recordings"),  # park has text backgrounds only
            (lambda: store.classify([(tmp_path / "absent.wav", "park")], "c-zero-shot"), NotFound,
             r"1 input file\(s\) not found"),
            (lambda: store.calibrate(manifest, CalibrateOptions("c-zero-shot", grid=(float("nan"),))), InvalidInput,
             "tau grid"),
        ]:
            with pytest.raises(error, match=message):
                call()
        assert len(loads) == 1
        assert store.ingest([clip]).skipped == 1  # unchanged since it was ingested: not read, no model
        assert len(loads) == 1
        assert store.classify([(clip, "park")], "c-zero-shot").files[0].label == "siren"
        assert len(loads) == 2
