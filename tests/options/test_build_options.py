"""PrototypeOptions, EnvironmentOptions and the AudioOptions of Store.evaluate_audio: checked when
made, with one-line messages, before any store or model work."""
from __future__ import annotations

from pathlib import Path

import pytest

from proto_index.errors import AlreadyExists, InvalidInput
from proto_index.options import AudioOptions, EnvironmentOptions, PrototypeOptions


def test_prototype_options_defaults_are_the_cli_defaults():
    from typer.main import get_command

    from proto_index.cli.app import app

    build = get_command(app).commands["prototypes"].commands["build"]
    defaults = {p.name: p.default for p in build.params}
    o = PrototypeOptions()
    assert (o.method, o.n, o.min_confirmed, o.name, o.replace) == (
        defaults["method"], defaults["n"], defaults["min_confirmed"], defaults["name"], defaults["replace"])
    assert (o.method, o.n, o.min_confirmed) == ("zero-shot", 35, 5)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "tgap35"}, "unknown method 'tgap35'; choose one of zero-shot, tgap, supervised, blend, examples, classifier"),
    ({"n": 0}, "n must be a whole number of at least 1, got 0"),
    ({"n": True}, "n must be a whole number of at least 1, got True"),
    ({"n": 2.5}, "n must be a whole number of at least 1, got 2.5"),
    ({"min_confirmed": -1}, "min_confirmed must be a whole number of at least 1, got -1"),
    ({"name": 7}, "the prototype set name must be text, got 7"),
    ({"inputs": {"mapping": "m.csv"}}, "inputs must be PrototypeInputs, got dict"),
])
def test_prototype_options_refuse_bad_values(kwargs, message):
    with pytest.raises(InvalidInput) as e:
        PrototypeOptions(**kwargs)
    assert str(e.value) == message


def test_environment_options_take_one_path_or_many_and_finite_taus():
    assert EnvironmentOptions(audio="bg/park").audio == (Path("bg/park"),)  # one path, not its characters
    assert EnvironmentOptions(audio=["a.wav", Path("b")]).audio == (Path("a.wav"), Path("b"))
    assert EnvironmentOptions(tau_audio=1, tau_text="0.25").tau_audio == 1.0
    assert EnvironmentOptions(tau_text="0.25").tau_text == 0.25
    for kwargs, message in (
        ({"tau_audio": float("inf")}, "the tau for audio backgrounds must be a finite number, not inf"),
        ({"tau_text": "x"}, "the tau for text backgrounds must be a number, not 'x'"),
        ({"audio": [3]}, "audio must be paths of background recordings, got [3]"),
        ({"text": ["park"]}, "the environment text must be text, got ['park']"),
    ):
        with pytest.raises(InvalidInput) as e:
            EnvironmentOptions(**kwargs)
        assert str(e.value) == message


def test_evaluate_audio_needs_a_work_folder_before_any_work(tmp_path):
    from fakes import BandEncoder

    from proto_index import Store

    encoder = BandEncoder()
    store = Store.init(tmp_path / "store", model="fake-bands", encoder=encoder)
    with pytest.raises(InvalidInput) as e:
        store.evaluate_audio(AudioOptions(foreground=tmp_path / "fg.csv", backgrounds=tmp_path / "bg"))
    assert str(e.value) == "evaluating from audio needs a work folder for the mixed scenes (AudioOptions.work)"
    assert encoder.audio_calls == 0


def test_a_store_built_with_options_matches_the_cli(tmp_path, corpus_dir, background_dir):
    """The options objects carry every field: a tgap set and an audio environment made through the
    library hold what the CLI's flags make."""
    from cli_store import cli, store_with_classes

    from proto_index import Store

    labels = ["siren", "dog bark", "drilling", "bird song"]
    lib, via_cli = (store_with_classes(tmp_path / side, corpus_dir, labels) for side in ("lib", "cli"))
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "3", "--name", "t3", "--store", via_cli)
    cli("env", "add", "park", "--audio", background_dir / "park", "--tau-audio", "0.4", "--store", via_cli)
    store = Store.open(lib)
    store.build_prototypes("urban", PrototypeOptions(method="tgap", n=3, name="t3"))
    store.add_environment("park", EnvironmentOptions(audio=background_dir / "park", tau_audio=0.4))
    other = Store.open(via_cli)
    a, b = store.prototype_set("t3"), other.prototype_set("t3")
    assert (a.method, a.n_neighbours, a.labels) == (b.method, b.n_neighbours, b.labels) == ("tgap", 3, labels)
    assert (a.matrix == b.matrix).all()
    ea, eb = store.environment("park"), other.environment("park")
    assert ea.tau_audio == eb.tau_audio == 0.4
    assert ea.audio_vectors.shape == eb.audio_vectors.shape and (ea.audio_vectors == eb.audio_vectors).all()
    with pytest.raises(AlreadyExists, match="already exists"):
        store.build_prototypes("urban", PrototypeOptions(method="tgap", n=3, name="t3"))
    assert store.build_prototypes("urban", PrototypeOptions(method="tgap", n=2, name="t3", replace=True)).n_neighbours == 2
    store.close(), other.close()


def test_class_set_options_and_labels(tmp_path, fake_store):
    from proto_index import Store
    from proto_index.options import ClassSetOptions

    assert ClassSetOptions(labels_file="l.txt").labels_file == Path("l.txt")
    for kwargs, message in (({"template": None}, "the prompt template must be text, got None"),
                            ({"labels_file": 3}, "the labels file must be a path, got 3")):
        with pytest.raises(InvalidInput) as e:
            ClassSetOptions(**kwargs)
        assert str(e.value) == message
    (tmp_path / "more.txt").write_text("drilling\nsiren\n")
    with Store.open(fake_store) as store:
        with pytest.raises(InvalidInput) as e:
            store.add_classes("urban", "siren")  # one string is not a list of five one-letter labels
        assert str(e.value) == "labels must be a list of labels, not one string"
        view = store.add_classes("urban", ["dog bark"], ClassSetOptions(template="A {label}.", labels_file=tmp_path / "more.txt"))
        assert (view.labels, view.template) == (["dog bark", "drilling", "siren"], "A {label}.")
