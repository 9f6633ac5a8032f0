"""proto-index with ``prototype_norm="none"`` reproduces the paper's reference code exactly.

``Reference`` is a straight transcription, in numpy, of the formulas of the paper's public code
(github.com/eacevedo1/AudioText-ContextDomainAdaptation: scripts/sound_classification.py,
src/sound_classification_utils.py, src/domain_adaptation_utils.py), not a copy of it:
  text anchors   = text embedding of "This is a sound of " + label
  TGAP           = per class, mean of the N training embeddings of highest dot product with the anchor
  supervised     = per class, mean of its training embeddings
  Ps             = test embeddings @ prototypes^T (raw dot product: TGAP centroids are not normalised)
  Pb text        = mean over three prompts of (prompt embedding @ prototypes^T)
  Pb audio       = the embedding of the scene's own background @ prototypes^T (the experiment), or the
                   mean over background recordings (its inference script)
  prediction     = argmax(softmax(Ps - tau * Pb))
"""
import numpy as np
import pytest
from conftest import BACKGROUNDS, CLASS_FREQS, write
from cli_store import cli, read_csv

from proto_index import Store
from proto_index.core.adaptation import background_prompts
from proto_index.core.decision import decide
from proto_index.core.profiles import background_profile, refine, similarity_profiles
from proto_index.core.prototypes import render_prompts, tgap_reference
from proto_index.core.synthetic_space import generate
from proto_index.evaluation.protocol import evaluate
from proto_index.options import Settings
from proto_index.evaluation.synthetic_run import experiment_data


class Reference:
    """The reference formulas; ``text_model`` maps a list of prompts to their embeddings."""

    def __init__(self, text_model):
        self.text_model = text_model

    def text_anchors(self, labels):
        return self.text_model(["This is a sound of " + label for label in labels])

    @staticmethod
    def tgap(train, anchors, topn):
        logits = train @ anchors.T
        protos = np.zeros((anchors.shape[0], train.shape[1]))
        for c in range(anchors.shape[0]):
            idx = np.argsort(-logits[:, c], kind="stable")[:topn]
            protos[c] = train[idx].mean(axis=0)
        return protos

    @staticmethod
    def centroids(train, train_gt, k):
        return np.stack([train[train_gt == c].mean(axis=0) for c in range(k)])

    def text_background(self, bg_type, protos):
        prompts = ["This is a sound of " + bg_type, bg_type.capitalize() + " sounds in the background",
                   "This is a sound of " + bg_type + " in the background"]  # fmt: skip
        return (self.text_model(prompts) @ protos.T).mean(axis=0)

    @staticmethod
    def predict(ps, pb, tau):
        logits = ps - pb * tau
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return np.argmax(e / e.sum(axis=-1, keepdims=True), axis=-1)


@pytest.fixture(scope="module")
def synthetic():
    data = generate(per_class=15, n_folds=5, backgrounds_per_env=8, snrs_db=(6.0,), seed=11)
    exp = experiment_data(data)
    table = {}
    for label, anchor in zip(exp.labels, exp.anchors):
        table["This is a sound of " + label] = anchor
    for env, prompts in exp.text_backgrounds.items():
        for prompt, vec in zip(background_prompts(env), prompts):
            table[prompt] = vec
    return exp, Reference(lambda prompts: np.stack([table[p] for p in prompts]))


def proto_index_predictions(exp, method, train, test, adaptation, tau, norm="none"):
    cond = exp.conditions[0]
    if method == "zero-shot":
        protos = exp.anchors
    elif method == "tgap":
        protos = tgap_reference(exp.anchors, cond.vectors[train], 35)[0]
    else:
        protos = np.stack([cond.vectors[train][cond.labels[train] == c].mean(axis=0) for c in range(len(exp.labels))])
    ps = similarity_profiles(cond.vectors[test], protos, norm)
    if adaptation == "text":
        pb = background_profile(exp.text_backgrounds[cond.environment], protos, norm)
    else:
        pb = similarity_profiles(exp.audio_backgrounds[cond.environment][cond.background_index[test]], protos, norm)
    return decide(refine(ps, pb, tau)).winners, ps


@pytest.mark.parametrize("method", ["zero-shot", "tgap", "supervised"])
@pytest.mark.parametrize("adaptation, tau", [("text", 0.2), ("audio-oracle", 0.7)])
def test_identical_predictions_on_the_same_embeddings(synthetic, method, adaptation, tau):
    exp, ref = synthetic
    cond = exp.conditions[0]
    assert render_prompts(exp.labels) == ["This is a sound of " + lbl for lbl in exp.labels]
    anchors = ref.text_anchors(exp.labels)
    fold_acc = []
    for f in range(5):
        train, test = cond.folds != f, cond.folds == f
        if method == "zero-shot":
            protos = anchors
        elif method == "tgap":
            protos = ref.tgap(cond.vectors[train], anchors, 35)
        else:
            protos = ref.centroids(cond.vectors[train], cond.labels[train], len(exp.labels))
        ss_profile = cond.vectors[test] @ protos.T
        if adaptation == "text":
            bg_profile = ref.text_background(cond.environment, protos)
        else:
            bg_profile = exp.audio_backgrounds[cond.environment][cond.background_index[test]] @ protos.T
        expected = ref.predict(ss_profile, bg_profile, tau)
        got, _ = proto_index_predictions(exp, method, train, test, adaptation, tau)
        np.testing.assert_array_equal(got, expected)
        fold_acc.append(np.mean(expected == cond.labels[test]))
    # the evaluation engine's fixed-tau cell is the reference's mean over folds
    settings = Settings(methods=(method,), adaptations=(adaptation,), fixed_tau={adaptation: tau}, prototype_norm="none")
    score = evaluate(exp, settings).score(cond.environment, cond.snr_db, method, adaptation, "fixed")
    np.testing.assert_allclose(score.fold_accuracies, fold_acc, atol=1e-12)


def test_l2_differs_from_the_reference_for_tgap(synthetic):
    exp, ref = synthetic
    cond = exp.conditions[0]
    train, test = cond.folds != 0, cond.folds == 0
    _, ps_none = proto_index_predictions(exp, "tgap", train, test, "text", 0.2, "none")
    _, ps_l2 = proto_index_predictions(exp, "tgap", train, test, "text", 0.2, "l2")
    np.testing.assert_allclose(ps_none, cond.vectors[test] @ ref.tgap(cond.vectors[train], exp.anchors, 35).T, atol=1e-12)
    assert not np.allclose(ps_none, ps_l2, atol=1e-3)  # TGAP centroids are shorter than 1, unequally


def test_classify_with_prototype_norm_none_reproduces_the_reference(tmp_path, corpus_dir, background_dir):
    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    cli("ingest", corpus_dir, "--store", store, "-q")
    labels = list(CLASS_FREQS)
    cli("classes", "add", "urban", *sum((["-l", lbl] for lbl in labels), []), "--store", store)
    cli("prototypes", "build", "urban", "--method", "tgap", "--n", "6", "--store", store)
    cli("env", "add", "airport", "--audio", background_dir / "airport", "--store", store)
    clips = []
    for i, label in enumerate(labels * 2):
        clips.append(write(tmp_path / "archive" / f"{i}.wav", [(CLASS_FREQS[label], 0.15 + 0.03 * i)] + BACKGROUNDS["airport"], seed=i))
    out = tmp_path / "labels.csv"
    cli("classify", *clips, "-p", "urban-tgap6", "--env", "airport", "--adapt", "audio", "--tau", "0.5",
        "--prototype-norm", "none", "--all-scores", "--out", out, "--store", store, "-q")  # fmt: skip
    rows = read_csv(out)

    s = Store.open(store)
    ref = Reference(lambda prompts: s.embed_text(prompts).astype(np.float64))
    corpus = s.embed_audio(sorted(corpus_dir.glob("*.wav"))).astype(np.float64)
    protos = ref.tgap(corpus, ref.text_anchors(labels), 6)
    test = s.embed_audio(clips).astype(np.float64)
    bgs = s.embed_audio(sorted((background_dir / "airport").glob("*.wav"))).astype(np.float64)
    pb = (bgs @ protos.T).mean(axis=0)  # the reference's inference script: mean over background recordings
    expected = ref.predict(test @ protos.T, pb, 0.5)
    assert [r["label"] for r in rows] == [labels[k] for k in expected]
    pf = np.array([[float(r[lbl]) for lbl in labels] for r in rows])
    np.testing.assert_allclose(pf, test @ protos.T - 0.5 * pb, atol=1e-5)
    assert len(set(expected.tolist())) > 1
