"""The shared opening of user-named text files (inputs/text_files.py): every crafted file gives
one domain error naming it, and a small file is read whole or refused, never cut short; labels files
(inputs/labels_file.py) read through it."""
import io
import os
from pathlib import Path

import pytest

from proto_index.errors import InvalidInput, NotFound
from proto_index.inputs import labels_file
from proto_index.inputs.text_files import open_text_file, read_text_file


def test_missing_folder_and_fifo_are_refused_unread(tmp_path):
    with pytest.raises(NotFound, match=r"^no such CSV file: .*absent\.csv$"):
        with open_text_file(tmp_path / "absent.csv", "CSV file"):
            pass
    with pytest.raises(InvalidInput, match=r"not a regular file \(a folder, FIFO or device\), not a labels file$"):
        read_text_file(tmp_path, "labels file", 100)
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)  # opening it for reading would block: it must never be opened
    with pytest.raises(InvalidInput, match="labels.fifo: not a regular file"):
        read_text_file(fifo, "labels file", 100)


def test_a_file_swapped_for_a_fifo_after_the_check_is_refused_on_the_open(tmp_path, monkeypatch):
    fifo = tmp_path / "m.csv"
    os.mkfifo(fifo)
    monkeypatch.setattr(Path, "is_file", lambda self: True)  # the check saw a regular file
    with pytest.raises(InvalidInput, match=r"m\.csv: cannot read: not a regular file \(a FIFO, device or socket\)"):
        with open_text_file(fifo, "CSV file"):
            pytest.fail("a FIFO was opened")


def test_errors_raised_while_reading_name_the_file_and_others_pass_through(tmp_path):
    f = tmp_path / "m.csv"
    f.write_bytes(b"path\n\xff\n")
    with pytest.raises(InvalidInput, match=r"m\.csv: not UTF-8 text \(byte 5 of a block\); save it as UTF-8$"):
        with open_text_file(f, "CSV file") as fh:
            io.TextIOWrapper(fh, encoding="utf-8").read()
    with pytest.raises(InvalidInput, match=r"m\.csv: cannot read: boom"):
        with open_text_file(f, "CSV file"):
            raise OSError("boom")
    with pytest.raises(KeyError):  # not an input problem: not disguised as one
        with open_text_file(f, "CSV file"):
            raise KeyError("bug")


def test_read_text_file_whole_bom_dropped_and_exact_byte_of_bad_utf8(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_bytes("\ufeffsirène\n".encode())
    assert read_text_file(f, "labels file", 100) == "sirène\n"
    f.write_bytes(b"ab\n\xffcd")
    with pytest.raises(InvalidInput, match=r"labels\.txt: not UTF-8 text \(byte 3\); save it as UTF-8$"):
        read_text_file(f, "labels file", 100)


def test_a_file_over_the_limit_is_refused_not_cut_at_a_character(tmp_path):
    """Four two-byte characters (8 bytes) against a 5-byte limit: refused as too large, not read as
    the first characters that fit, and not reported as bad UTF-8 at the cut."""
    f = tmp_path / "labels.txt"
    f.write_text("éééé", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"labels\.txt: larger than 0 MB; not a labels file$"):
        read_text_file(f, "labels file", 5)
    assert read_text_file(f, "labels file", 8) == "éééé"


def test_an_oversized_labels_file_loses_no_label(tmp_path, monkeypatch):
    """Before the shared reader, 4 labels of 2 bytes + newline (12 bytes) against a 7-byte limit
    came back as the 3 labels that fit."""
    f = tmp_path / "labels.txt"
    f.write_text("é\né\né\né\n", encoding="utf-8")
    monkeypatch.setattr(labels_file, "MAX_LABELS_BYTES", 7)
    with pytest.raises(InvalidInput, match="larger than 0 MB; not a labels file"):
        labels_file.read_labels_file(f)
    monkeypatch.setattr(labels_file, "MAX_LABELS_BYTES", 12)
    assert labels_file.read_labels_file(f) == ["é"] * 4


def test_read_labels_file(tmp_path, monkeypatch):
    f = tmp_path / "labels.txt"
    f.write_bytes("\ufeffsiren\n\n# a comment\n  dog bark  \r\nbird song".encode("utf-8"))
    assert labels_file.read_labels_file(f) == ["siren", "dog bark", "bird song"]
    f.write_bytes(b"siren\n\xff\xfe\n")
    with pytest.raises(InvalidInput, match=r"labels.txt: not UTF-8 text \(byte 6\)"):
        labels_file.read_labels_file(f)
    with pytest.raises(NotFound, match="no such labels file"):
        labels_file.read_labels_file(tmp_path / "absent.txt")
    with pytest.raises(InvalidInput, match="not a regular file"):
        labels_file.read_labels_file(tmp_path)
    monkeypatch.setattr(labels_file, "MAX_LABELS_BYTES", 5)
    f.write_text("siren\n")
    with pytest.raises(InvalidInput, match="larger than 0 MB; not a labels file"):
        labels_file.read_labels_file(f)
