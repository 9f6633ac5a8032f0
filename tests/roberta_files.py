"""Tokenizer files in roberta-base's format, small enough to write in a test."""
import json


def write_tokenizer(folder):
    """A tiny byte-level BPE vocabulary in roberta-base's format (same special-token ids)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    byte_chars = [chr(b) if b in printable else chr(next(extra)) for b in range(256)]
    merges = [("Ġ", "d"), ("o", "g"), ("Ġd", "og"), ("Ġ", "r"), ("a", "i"), ("ai", "n")]
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *byte_chars, *("".join(m) for m in merges), "<mask>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return folder
