"""`--json` on the listing commands: one JSON document on stdout with the data the table shows."""
import json

import pytest
from audio_factory import zero_length
from conftest import CLASS_FREQS
from cli_store import cli


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fake-encoder store: the conftest corpus plus one unreadable file, urban tgap6 and zero-shot
    prototypes, an airport environment with audio backgrounds and a park one with a tau override."""
    from conftest import BACKGROUNDS, write

    root = tmp_path_factory.mktemp("json")
    corpus, backgrounds, store = root / "corpus", root / "backgrounds", root / "store"
    for ci, (label, f) in enumerate(CLASS_FREQS.items()):
        for i in range(6):
            bg = [(bf, a * 0.4) for bf, a in BACKGROUNDS[("park", "airport")[i % 2]]]
            write(corpus / f"{label.replace(' ', '_')}_{i}.wav", [(f, 0.5)] + bg, seed=100 * ci + i)
    zero_length(corpus / "broken.wav")
    for i in range(3):
        write(backgrounds / "airport" / f"bg_{i}.wav", BACKGROUNDS["airport"], seconds=3.0, seed=900 + i)
    cli("init", "--store", store, "--model", "fake-bands")
    cli("ingest", corpus, "--store", store, "-q", code=3)
    cli("classes", "add", "urban", *[a for label in CLASS_FREQS for a in ("-l", label)], "--store", store)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--store", store)
    cli("prototypes", "build", "urban", "--store", store)
    cli("env", "add", "airport", "--audio", backgrounds / "airport", "--store", store)
    cli("env", "add", "park", "--text", "a city park", "--tau-text", "0.25", "--store", store)
    return store


def as_json(*args):
    return json.loads(cli(*args, "--json").stdout)


def test_classes_list(store):
    assert as_json("classes", "list", "--store", store) == [
        {"name": "urban", "template": "This is a sound of {label}", "labels": list(CLASS_FREQS)}]


def test_prototypes_list_and_show(store):
    assert as_json("prototypes", "list", "--store", store) == [
        {"name": "urban-tgap6", "method": "tgap", "n_neighbours": 6, "class_set": "urban", "labels": list(CLASS_FREQS)},
        {"name": "urban-zero-shot", "method": "zero-shot", "n_neighbours": None, "class_set": "urban",
         "labels": list(CLASS_FREQS)},
    ]
    shown = as_json("prototypes", "show", "urban-tgap6", "--top", "2", "--store", store)
    assert [c["label"] for c in shown["classes"]] == list(CLASS_FREQS)
    siren = shown["classes"][0]
    assert siren["prompt"] == "This is a sound of siren" and siren["neighbours_total"] == 6
    assert [n["rank"] for n in siren["neighbours"]] == [1, 2]
    assert all(n["path"].split("/")[-1].startswith("siren_") and n["start_s"] == 0.0 for n in siren["neighbours"])
    assert siren["neighbours"][0]["score"] >= siren["neighbours"][1]["score"]
    everything = as_json("prototypes", "show", "urban-tgap6", "--top", "0", "--store", store)
    assert all(len(c["neighbours"]) == 6 for c in everything["classes"])


def test_env_list(store):
    airport, park = as_json("env", "list", "--store", store)
    assert airport["name"] == "airport" and airport["background_recordings"] == 3 and airport["text"] is None
    assert sorted(p.split("/")[-1] for p in airport["audio_sources"]) == ["bg_0.wav", "bg_1.wav", "bg_2.wav"]
    assert park == {"name": "park", "text": "a city park", "background_recordings": 0, "audio_sources": [],
                    "tau_audio": None, "tau_text": 0.25}


def test_search_matches_the_table(store):
    hits = as_json("search", "siren", "-k", "3", "--store", store)
    table = cli("search", "siren", "-k", "3", "--store", store).stdout.strip().splitlines()
    assert [f"{h['score']:.4f}\t{h['path']}\t{h['start_s']:g}-{h['end_s']:g}" for h in hits] == table
    assert all(h["path"].split("/")[-1].startswith("siren_") and isinstance(h["window_id"], int) for h in hits)


def test_gap_matches_the_table(store):
    doc = as_json("gap", "urban-tgap6", "-k", "3", "--store", store)
    assert (doc["prototypes"], doc["method"], doc["corpus_size"], doc["k"]) == ("urban-tgap6", "tgap", 24, 3)
    assert [c["label"] for c in doc["classes"]] == list(CLASS_FREQS)
    table = cli("gap", "urban-tgap6", "-k", "3", "--store", store).stdout
    mean = next(line for line in table.splitlines() if line.startswith("mean")).split()
    assert [float(x) for x in mean[1:]] == pytest.approx([doc["mean"]["anchor"], doc["mean"]["prototype"]], abs=5e-4)
    assert doc["mean"]["anchor"] == pytest.approx(sum(c["anchor"] for c in doc["classes"]) / 4)
    assert doc["centroid_distance"]["prototypes"] < doc["centroid_distance"]["anchors"]


def test_info(store):
    doc = as_json("info", "--store", store)
    assert doc["store"] == str(store.absolute())
    assert doc["model"]["name"] == "fake-bands" and isinstance(doc["model"]["dim"], int)
    assert doc["counts"] == {"recordings": 24, "windows": 24, "failed_files": 1, "class_sets": 1,
                             "prototype_sets": 2, "environments": 2}
    assert doc["corpus_hours"] == pytest.approx(24 * 2.0 / 3600)
    (failure,) = doc["failures"]
    assert failure["path"].endswith("broken.wav") and failure["error"]
    assert [p["name"] for p in doc["prototype_sets"]] == ["urban-tgap6", "urban-zero-shot"]
    assert [e["name"] for e in doc["environments"]] == ["airport", "park"]


def test_json_errors_stay_one_line_on_stderr(store):
    result = cli("prototypes", "show", "nope", "--json", "--store", store, code=1)
    assert result.stdout == "" and "no prototype set named 'nope'" in result.stderr


@pytest.mark.parametrize("group, summary", [("classes", "List class sets with their labels (tab-separated)."),
                                            ("prototypes", "List prototype sets: name, method, N, class set, size"),
                                            ("env", "List environments with their background data and tau overrides.")])
def test_each_list_command_is_documented_with_both_forms(group, summary):
    """The list commands share one definition (cli/listing.py); each keeps its own summary and examples."""
    help_text = " ".join(cli(group, "list", "--help").stdout.split())
    assert summary in help_text
    assert f"Examples: proto-index {group} list proto-index {group} list --json" in help_text
    assert "--store" in help_text and "--json" in help_text
