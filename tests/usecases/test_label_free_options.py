"""The label-free options of `prototypes build` (--prompt-ensemble) and `classify` (--drift), on the
fake-bands model whose text and audio geometry make the answers known (tests/fakes.py)."""
from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
from cli_store import cli, store_with_classes
from conftest import CLASS_FREQS
from fakes import DIM, GAP_DIM, BandEncoder, band_of

from proto_index import Store
from proto_index.core.drift import drift_bonus
from proto_index.errors import InvalidInput
from proto_index.options import PrototypeInputs, ScoringOptions

LABELS = list(CLASS_FREQS)


@pytest.fixture
def store(tmp_path, corpus_dir):
    return store_with_classes(tmp_path, corpus_dir, LABELS)


def _weights(prompt: str) -> dict[str, float]:
    head, _, rest = prompt.partition(": ")
    assert head == "prompt ensemble, entropy weights over 24 corpus windows"
    return {m.group(2): float(m.group(1)) for m in re.finditer(r"([01]\.\d{3}) ([^|]+?)(?: \||$)", rest)}


def test_a_template_that_names_no_class_loses_its_weight(store):
    # "... in a metro station" embeds as the metro band for every class: it cannot tell classes apart
    cli("prototypes", "build", "urban", "--prompt-ensemble", "--template", "{label} in a metro station", "--store", store)
    s = Store.open(store)
    ens, plain = s.prototype_set("urban-zero-shot-ensemble"), None
    cli("prototypes", "build", "urban", "--store", store)
    plain = s.prototype_set("urban-zero-shot")
    assert ens.method == "zero-shot"
    for label, prompt in zip(ens.labels, ens.prompts):
        w = _weights(prompt)
        assert list(w) == [f"This is a sound of {label}", f"{label} in a metro station"]  # heaviest first
        assert w[f"This is a sound of {label}"] > 0.9 and sum(w.values()) == pytest.approx(1.0, abs=2e-3)
    # the anchors stay nearest their own class's: the vague template only dilutes them
    cos = np.sum(ens.anchors * plain.anchors, axis=1) / np.linalg.norm(ens.anchors, axis=1)
    assert np.all(cos > 0.95) and np.argmax(ens.anchors[:, :GAP_DIM], axis=1).tolist() == [
        band_of(CLASS_FREQS[lbl]) for lbl in LABELS]


def test_equivalent_templates_share_the_weight_and_change_nothing(store):
    # every default template embeds as its label's band: uniform weights, the plain TGAP prototypes
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--prompt-ensemble", "--store", store)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--store", store)
    s = Store.open(store)
    ens, plain = s.prototype_set("urban-tgap6-ensemble"), s.prototype_set("urban-tgap6")
    assert all(set(_weights(p).values()) == {0.167} and len(_weights(p)) == 6 for p in ens.prompts)
    np.testing.assert_allclose(ens.anchors, plain.anchors, atol=1e-6)
    np.testing.assert_allclose(ens.matrix, plain.matrix, atol=1e-6)
    assert [[n.window_id for n in c] for c in ens.neighbours] == [[n.window_id for n in c] for c in plain.neighbours]


def test_prompt_ensemble_refusals(store):
    out = cli("prototypes", "build", "urban", "--method", "supervised", "--prompt-ensemble", "--store", store, code=1)
    assert "a prompt ensemble makes text anchors for zero-shot and tgap prototypes, not supervised" in out.stderr
    assert "give that too" in cli("prototypes", "build", "urban", "--template", "x {label}", "--store", store, code=2).stderr
    out = cli("prototypes", "build", "urban", "--prompt-ensemble", "--template", "no label", "--store", store, code=1)
    assert "every prompt template must contain {label}: 'no label' does not" in out.stderr
    for bad in ("{label}", (), ("{label}",) * 0 + tuple(f"{{label}} {i}" for i in range(33)), (1,)):
        with pytest.raises(InvalidInput):
            PrototypeInputs(prompt_ensemble=bad)
    out = cli("prototypes", "build", "urban", "--prompt-ensemble", "--template", "{label}\x1b[2J", "--store", store, code=1)
    assert "holds a control character" in out.stderr
    out = cli("prototypes", "build", "urban", "--prompt-ensemble", "--template", "{label}" + "x" * 200, "--store", store, code=1)
    assert "at most 200 characters, not 207" in out.stderr
    assert "urban-zero-shot-ensemble" not in cli("prototypes", "list", "--store", store).stdout


def test_drift_adds_the_text_derived_bonus_to_the_class_the_environment_drifts(store, corpus_dir):
    # fake-bands reads the longest vocabulary word of a text: "siren with airport noise" is the
    # airport band, "dog bark with airport noise" still dog bark. So at the airport only siren drifts,
    # along (e_airport - e_siren) / sqrt(2); at the park ("park" is the shortest word) nothing does.
    cli("env", "add", "airport", "--text", "airport", "--store", store)
    cli("env", "add", "park", "--text", "park", "--store", store)
    cli("prototypes", "build", "urban", "--store", store)
    s = Store.open(store)
    files = sorted(corpus_dir.glob("*.wav"))
    items = [(p, env) for p in files for env in ("airport", "park")]
    plain = s.classify(items, "urban-zero-shot", scoring=ScoringOptions(adapt="none"))
    drift = s.classify(items, "urban-zero-shot", scoring=ScoringOptions(adapt="none", drift=True, drift_weight=0.5))
    anchors = np.zeros((4, DIM))
    for k, label in enumerate(LABELS):
        anchors[k, band_of(CLASS_FREQS[label])] = anchors[k, GAP_DIM] = 1.0
    direction = np.zeros((4, DIM))
    direction[0, band_of(300.0)], direction[0, band_of(CLASS_FREQS["siren"])] = 1.0, -1.0
    direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    encoder = BandEncoder()
    for a, b in zip(plain.files, drift.files):
        z = encoder.embed_waveforms([sf.read(a.path, dtype="float32")[0]])[0]
        bonus = drift_bonus(z, anchors, direction)[0] if a.environment == "airport" else np.zeros(4)
        np.testing.assert_allclose(b.scores - a.scores, 0.5 * bonus, atol=1e-5)  # float32 vectors
    assert any(abs(r.scores[0] - p.scores[0]) > 0.05 for r, p in zip(drift.files, plain.files))


def test_drift_with_a_background_refines_the_augmented_profiles(store, corpus_dir, background_dir):
    cli("env", "add", "airport", "--text", "airport", "--audio", background_dir / "airport", "--store", store)
    cli("prototypes", "build", "urban", "--store", store)
    files = sorted(corpus_dir.glob("*.wav"))[:6]
    s = Store.open(store)
    runs = {(d, t): s.classify([(p, "airport") for p in files], "urban-zero-shot",
                               scoring=ScoringOptions(adapt="audio", tau=t, drift=d)) for d in (False, True) for t in (0.0, 0.7)}
    for i in range(len(files)):
        # Pf = s - tau * mean s(backgrounds): the difference between the taus is tau times the drifted Pb
        pb_plain = (runs[False, 0.0].files[i].scores - runs[False, 0.7].files[i].scores) / 0.7
        pb_drift = (runs[True, 0.0].files[i].scores - runs[True, 0.7].files[i].scores) / 0.7
        assert pb_drift[0] != pytest.approx(pb_plain[0], abs=1e-3)  # siren's background profile gained a bonus
        np.testing.assert_allclose(pb_drift[1:], pb_plain[1:], atol=1e-5)  # no other class drifts


def test_drift_needs_a_text_tower_and_a_sane_weight():
    for bad in (-0.1, float("nan"), True, "0.1"):
        with pytest.raises(InvalidInput, match="drift weight"):
            ScoringOptions(drift=True, drift_weight=bad)


def test_drift_where_nothing_drifts_leaves_transduction_as_it_was(store, corpus_dir, tmp_path):
    # at the park every conditioned prompt reads as its class ("park" is the shortest vocabulary
    # word): no class drifts, and --drift --transductive writes what --transductive writes
    cli("env", "add", "park", "--text", "park", "--store", store)
    cli("prototypes", "build", "urban", "--store", store)
    manifest = tmp_path / "archive.csv"
    manifest.write_text("path,environment\n" + "".join(f"{p},park\n" for p in sorted(corpus_dir.glob("*.wav"))))
    outs = []
    for extra in ((), ("--drift",)):
        out = tmp_path / f"labels{len(extra)}.csv"
        cli("classify", "-p", "urban-zero-shot", "--manifest", manifest, "--transductive", *extra, "--out", out,
            "--store", store, "-q")
        outs.append(out.read_text())
    assert outs[0] == outs[1] and outs[0].count("\n") == 25
