"""Class sets: labels and names that would break listings or files are refused, labels files are read
as UTF-8 text only, and --replace never silently deletes the prototype sets built on a class set."""
from __future__ import annotations

import os

import pytest
from cli_store import cli
from fakes import BandEncoder

from proto_index import Store
from proto_index.options import ClassSetOptions, PrototypeOptions


@pytest.mark.parametrize("labels, message", [
    (["", "dog"], "a label cannot be empty or blank"),
    (["   ", "dog"], "a label cannot be empty or blank"),
    (["si\nren", "dog"], r"a label 'si\nren' holds a control character ('\n'); use plain text on one line"),
    (["si\tren", "dog"], r"a label 'si\tren' holds a control character ('\t'); use plain text on one line"),
])
def test_classes_add_refuses_blank_labels_and_control_characters(fake_store, labels, message):
    args = [a for lbl in labels for a in ("-l", lbl)]
    assert cli("classes", "add", "c", *args, "--store", fake_store, code=1).stderr.strip() == f"error: {message}"


@pytest.mark.parametrize("name", ["", " ", "a\nb", "a\tb"])
def test_names_with_line_breaks_or_blank_are_refused(fake_store, name):
    assert "error: class set name" in cli("classes", "add", name, "-l", "x", "--store", fake_store, code=1).stderr
    assert "error: environment name" in cli("env", "add", name, "--text", "park", "--store", fake_store, code=1).stderr


def test_labels_file_bom_non_utf8_folder_and_fifo(tmp_path, fake_store):
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffsiren\r\ndog bark\r\n".encode("utf-8"))
    cli("classes", "add", "c", "--labels-file", bom, "--store", fake_store)
    with Store.open(fake_store) as s:
        assert s.class_sets()[0].labels == ["siren", "dog bark"]

    latin = tmp_path / "latin.txt"
    latin.write_bytes("sir\xe8ne\nchien\n".encode("latin-1"))
    assert cli("classes", "add", "d", "--labels-file", latin, "--store", fake_store, code=1).stderr.strip() == \
        f"error: {latin}: not UTF-8 text (byte 3); save it as UTF-8"
    assert "not a regular file" in cli("classes", "add", "d", "--labels-file", tmp_path, "--store", fake_store,
                                        code=1).stderr
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in cli("classes", "add", "d", "--labels-file", fifo, "--store", fake_store,
                                        code=1).stderr


def test_replacing_a_class_set_never_silently_deletes_its_prototype_sets(fake_store):
    cli("classes", "add", "c", "-l", "siren", "-l", "dog bark", "--store", fake_store)
    cli("prototypes", "build", "c", "--method", "zero-shot", "--store", fake_store)
    cli("prototypes", "build", "c", "--method", "zero-shot", "--name", "c-2", "--store", fake_store)
    refused = cli("classes", "add", "c", "-l", "drilling", "--replace", "--store", fake_store, code=1)
    assert refused.stderr.strip() == ("error: class set 'c' has prototype sets built on it (c-2, c-zero-shot); "
                                      "replacing it would delete them (use --drop-prototypes to do so)")
    with Store.open(fake_store) as s:
        assert [p.name for p in s.prototype_sets()] == ["c-2", "c-zero-shot"]
        assert s.class_sets()[0].labels == ["siren", "dog bark"]
    done = cli("classes", "add", "c", "-l", "drilling", "--replace", "--drop-prototypes", "--store", fake_store)
    assert done.stdout.splitlines() == ["class set c: 1 labels",
                                        "deleted the prototype sets built on the old class set: c-2, c-zero-shot"]
    with Store.open(fake_store) as s:
        assert s.prototype_sets() == [] and s.class_sets()[0].labels == ["drilling"]


def test_add_classes_from_a_file_names_the_prototype_sets_it_dropped(tmp_path, corpus_dir):
    (tmp_path / "labels.txt").write_text("siren\ndog bark\n")
    with Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder()) as store:
        first = store.add_classes("urban", options=ClassSetOptions(labels_file=tmp_path / "labels.txt"))
        assert (first.labels, first.dropped_prototypes) == (["siren", "dog bark"], ())
        store.build_prototypes("urban")
        store.build_prototypes("urban", PrototypeOptions(name="second"))
        again = store.add_classes("urban", ["drilling"], ClassSetOptions(replace=True, drop_prototypes=True))
        assert (again.labels, again.dropped_prototypes) == (["drilling"], ("second", "urban-zero-shot"))
        assert store.prototype_sets() == []
        plain = store.add_classes("urban", ["siren"], ClassSetOptions(replace=True))
        assert plain.dropped_prototypes == ()
