"""The seeded text tower's byte tokenizer: exact rows for known texts."""
import pytest

torch = pytest.importorskip("torch")

from proto_index.clap.config import TextConfig  # noqa: E402
from proto_index.clap.tokens import ByteTokenizer  # noqa: E402

CFG = TextConfig(kind="transformer", width=512, layers=12, heads=8, vocab_size=49408)


def test_rows_are_start_bytes_end_then_zero_padding():
    ids, mask = ByteTokenizer(CFG)(["Dog  Bark", ""])
    assert ids.shape == mask.shape == (2, 77) and ids.dtype == torch.long
    assert ids[0, :10].tolist() == [49406, *(b + 1 for b in b"dog bark"), 49407]  # lower-cased, spaces collapsed
    assert ids[0, 10:].eq(0).all() and mask[0].tolist() == [1] * 10 + [0] * 67
    assert ids[1, :3].tolist() == [49406, 49407, 0] and int(mask[1].sum()) == 2
    assert ids.argmax(dim=1).tolist() == [9, 1]  # the end token is each row's highest id: where CLIP reads


def test_long_and_non_ascii_texts_keep_their_end_token():
    long, accented = "sirens " * 40, "Ünïcode ✓ 鳥"
    ids, mask = ByteTokenizer(CFG)([long, accented])
    assert ids[0, -1] == 49407 and mask[0].all() and ids[0, 1:76].tolist() == [b + 1 for b in long.encode()[:75]]
    data = " ".join(accented.lower().split()).encode("utf-8")
    assert ids[1, 1:1 + len(data)].tolist() == [b + 1 for b in data] and ids[1, 1 + len(data)] == 49407


def test_a_tower_too_small_for_bytes_is_refused():
    with pytest.raises(ValueError, match="at least 259 ids"):
        ByteTokenizer(TextConfig(kind="transformer", vocab_size=200))
