"""The experiment engine: naive re-computations, no peeking at the test fold, and the report."""
import dataclasses

import numpy as np
import pytest

from proto_index.core.synthetic_space import generate
from proto_index.errors import Hint, InvalidInput
from proto_index.evaluation.protocol import ExperimentData, class_centroids, evaluate
from proto_index.options import Settings
from proto_index.evaluation.tables import LONG_COLUMNS, as_dict, format_markdown, format_text, long_rows, table_rows
from proto_index.evaluation.synthetic_run import experiment_data


@pytest.fixture(scope="module")
def small():
    return experiment_data(generate(per_class=12, n_folds=4, backgrounds_per_env=6, snrs_db=(6.0, 10.0), seed=3))


def naive_cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_zero_shot_fixed_tau_matches_a_naive_loop(small):
    settings = Settings(methods=("zero-shot",), adaptations=("none", "audio"), grid=(0.0, 0.5, 1.0))
    ev = evaluate(small, settings)
    cond = small.conditions[0]
    bgs = small.audio_backgrounds[cond.environment]
    pb = [np.mean([naive_cos(b, a) for b in bgs]) for a in small.anchors]
    for adaptation, rule, tau in (("none", "none", 0.0), ("audio", "fixed", 0.7)):
        per_fold = []
        for f in sorted(set(cond.folds.tolist())):
            rows = [i for i in range(len(cond.labels)) if cond.folds[i] == f]
            correct = 0
            for i in rows:
                pf = [naive_cos(cond.vectors[i], a) - tau * pb[k] for k, a in enumerate(small.anchors)]
                correct += int(np.argmax(pf) == cond.labels[i])
            per_fold.append(correct / len(rows))
        s = ev.score(cond.environment, cond.snr_db, "zero-shot", adaptation, rule)
        np.testing.assert_allclose(s.fold_accuracies, per_fold, atol=1e-12)
        assert s.accuracy == pytest.approx(np.mean(per_fold))
        assert set(s.fold_taus) == {tau}


def test_optimistic_is_the_best_mean_test_curve_and_bounds_every_fixed_tau(small):
    ev = evaluate(small, Settings(methods=("zero-shot", "tgap"), adaptations=("audio",), tgap_n=5))
    grid = np.array(ev.settings.grid)
    for c in ev.curves:
        opt = ev.score(c.environment, c.snr_db, c.method, c.adaptation, "optimistic")
        assert opt.accuracy == pytest.approx(max(c.accuracy))
        assert opt.fold_taus[0] in grid[np.isclose(c.accuracy, max(c.accuracy))]
        fixed = ev.score(c.environment, c.snr_db, c.method, c.adaptation, "fixed")
        assert fixed.accuracy <= opt.accuracy + 1e-12


def test_calibrated_tau_never_looks_at_the_test_fold(small):
    """Scrambling fold 0's labels changes fold 0's optimistic curve, never the tau calibrated for it."""
    cond = small.conditions[0]
    rng = np.random.default_rng(0)
    scrambled = cond.labels.copy()
    in_fold0 = cond.folds == cond.folds.min()
    scrambled[in_fold0] = rng.permutation(scrambled[in_fold0])
    poisoned = dataclasses.replace(small, conditions=[dataclasses.replace(cond, labels=scrambled)])
    clean = dataclasses.replace(small, conditions=[cond])
    settings = Settings(methods=("zero-shot", "tgap", "supervised"), adaptations=("text", "audio"), tgap_n=5)
    a, b = evaluate(clean, settings), evaluate(poisoned, settings)
    changed_accuracy = False
    for method in settings.methods:
        for adaptation in settings.adaptations:
            key = (cond.environment, cond.snr_db, method, adaptation)
            ca, cb = a.score(*key, "calibrated"), b.score(*key, "calibrated")
            # fold 0's inner search fits and scores on folds 1-3 only, even for supervised centroids
            assert ca.fold_taus[0] == cb.fold_taus[0]
            changed_accuracy |= ca.fold_accuracies[0] != cb.fold_accuracies[0]
            assert a.score(*key, "auto").fold_taus[0] == b.score(*key, "auto").fold_taus[0]  # label-free
    assert changed_accuracy  # the scrambled labels do reach the scores


def test_transductive_methods_are_transduce_on_each_test_fold_with_the_base_prototypes(small):
    from proto_index.core.prototypes import tgap_reference
    from proto_index.core.transductive import TransductiveOptions, knn_graph, prior_from_profiles, transduce

    settings = Settings(methods=("tgap", "tgap-transductive"), adaptations=("none", "audio"), tgap_n=5)
    ev = evaluate(small, settings)
    cond = small.conditions[0]
    options = TransductiveOptions()
    per_fold = []
    for f in sorted(set(cond.folds.tolist())):
        test = cond.folds == f
        protos, _ = tgap_reference(small.anchors, cond.vectors[~test], 5)
        pb = np.mean([[naive_cos(b, p) for p in protos] for b in small.audio_backgrounds[cond.environment]], axis=0)
        pf = np.array([[naive_cos(v, p) for p in protos] for v in cond.vectors[test]]) - 0.7 * pb
        z = transduce(cond.vectors[test], prior_from_profiles(pf, options.temperature),
                      knn_graph(cond.vectors[test], options.neighbours), options).assignments
        per_fold.append(float(np.mean(z.argmax(axis=1) == cond.labels[test])))
    got = ev.score(cond.environment, cond.snr_db, "tgap-transductive", "audio", "fixed")
    np.testing.assert_allclose(got.fold_accuracies, per_fold, atol=1e-12)
    rules = {s.rule for s in ev.scores if s.method == "tgap-transductive"}
    assert rules == {"none", "fixed", "calibrated", "auto"}  # no optimistic sweep
    base = ev.score(cond.environment, cond.snr_db, "tgap", "audio", "calibrated")
    assert got.fold_taus == (0.7,) * len(per_fold) and base.fold_taus == ev.score(
        cond.environment, cond.snr_db, "tgap-transductive", "audio", "calibrated").fold_taus


def test_class_centroids():
    v = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    np.testing.assert_allclose(class_centroids(v, np.array([0, 0, 1]), 2), [[2.0, 1.0], [0.0, 5.0]])
    with pytest.raises(ValueError, match="class"):
        class_centroids(v, np.array([0, 0, 0]), 2)


def test_settings_are_checked(small):
    for bad in (
        Settings(methods=("magic",)),
        Settings(adaptations=("wind",)),
        Settings(prototype_norm="l1"),
        Settings(auto_rule="coin"),
        Settings(tgap_n=0),
        Settings(grid=(0.5, 0.1)),
    ):
        with pytest.raises(ValueError):
            evaluate(small, bad)
    with pytest.raises(InvalidInput, match="exceeds the 60 scenes of the smallest inner training set$") as info:
        evaluate(small, Settings(methods=("tgap",), tgap_n=10_000))
    assert info.value.hint == Hint("tgap_n", "lower {option}")
    few = dataclasses.replace(small.conditions[0], folds=small.conditions[0].folds % 2)
    with pytest.raises(InvalidInput, match="at least 3 folds"):
        evaluate(dataclasses.replace(small, conditions=[few]), Settings())


def test_missing_backgrounds_skip_their_adaptations(small):
    bare = ExperimentData(small.labels, small.anchors, {}, {}, [dataclasses.replace(small.conditions[0], background_index=None)])
    ev = evaluate(bare, Settings(methods=("zero-shot",)))
    assert {s.adaptation for s in ev.scores} == {"none"}


def test_report_tables_and_json(small):
    ev = evaluate(small, Settings(methods=("zero-shot", "tgap"), tgap_n=5))
    rows = table_rows(ev)
    assert len(rows) == 2 * 2 * 2 * 4  # environments x SNRs x methods x adaptations
    none_row = next(r for r in rows if r[3] == "none")
    assert none_row[5:] == ["-", "-", "-"] and "(" not in none_row[4]
    s = ev.score(rows[1][0], float(rows[1][1]), rows[1][2], rows[1][3], "calibrated")
    assert rows[1][5] == f"{100 * s.accuracy:.1f} ({s.tau:.2f})"
    text, md = format_text(ev), format_markdown(ev)
    assert "optimistic*" in text and "It looks at the test folds" in text and "projection-batch" in text
    assert md.startswith("| environment | SNR dB | method | adaptation | fixed | calibrated | auto | optimistic* |")
    assert md.count("\n| ") == len(rows) + 1 + 3  # and the summary's header and a row per method
    mean = np.mean([x.accuracy for x in ev.scores if (x.method, x.adaptation, x.rule) == ("tgap", "audio", "auto")])
    summary = md[md.index("Every method"):]
    assert f"\n| tgap | " in summary and summary.split("\n| tgap | ")[1].split(" | ")[3] == f"{100 * mean:.1f}"
    long = long_rows(ev)
    assert len(long) == len(ev.scores) and tuple(long[0]) == LONG_COLUMNS
    d = as_dict(ev, {"seed": 3})
    assert d["parameters"] == {"seed": 3} and len(d["scores"]) == len(ev.scores)
    assert len(d["tau_curves"]) == len(ev.curves) and len(d["tau_curves"][0]["mean_test_accuracy"]) == len(ev.settings.grid)


def test_method_names_take_apart_in_one_order_only():
    from proto_index.evaluation.protocol import METHODS, MethodParts, method_parts

    assert method_parts("tgap-ensemble-drift-transductive") == MethodParts("tgap", True, True, True)
    assert method_parts("zero-shot-drift") == MethodParts("zero-shot", drift=True)
    assert len(set(METHODS)) == len(METHODS) == 3 + 2 * 7
    for bad in ("tgap-drift-ensemble", "tgap-transductive-transductive", "supervised-drift", "zero-shot-"):
        with pytest.raises(ValueError, match="unknown method"):
            method_parts(bad)


def _scores(ev, method):
    return {(s.environment, s.snr_db, s.adaptation, s.rule): s.fold_accuracies for s in ev.scores if s.method == method}


def test_an_ensemble_of_one_template_and_a_drift_of_nothing_are_their_base_methods(small):
    # one template: its weight is 1 and the anchors are the base's; conditioned prompts equal to the
    # anchors: every drift direction is zero, and so is every bonus
    data = dataclasses.replace(small, templates=small.anchors[None], conditioned={
        c.environment: np.repeat(small.anchors[:, None, :], 3, axis=1) for c in small.conditions})
    settings = Settings(methods=("tgap", "tgap-ensemble", "tgap-drift", "zero-shot", "zero-shot-ensemble-drift-transductive",
                                 "zero-shot-transductive"), adaptations=("none", "audio"), tgap_n=5)
    ev = evaluate(data, settings)
    for method, base in (("tgap-ensemble", "tgap"), ("tgap-drift", "tgap"),
                         ("zero-shot-ensemble-drift-transductive", "zero-shot-transductive")):
        got, want = _scores(ev, method), _scores(ev, base)
        assert got.keys() == want.keys() and got
        for key in want:
            np.testing.assert_allclose(got[key], want[key], atol=1e-12)


def test_ensemble_and_drift_methods_need_their_inputs(small):
    bare = dataclasses.replace(small, templates=None, conditioned={})
    ev = evaluate(bare, Settings(methods=("zero-shot", "zero-shot-ensemble", "tgap-drift"), adaptations=("none",), tgap_n=5))
    assert {s.method for s in ev.scores} == {"zero-shot"}


def test_ensemble_weights_come_from_the_training_folds_only(small):
    from proto_index.core.prompt_weights import ensemble_anchors

    templates = np.stack([small.anchors, np.roll(small.anchors, 1, axis=0)])  # a second, wrong template
    data = dataclasses.replace(small, templates=templates)
    ev = evaluate(data, Settings(methods=("zero-shot-ensemble",), adaptations=("none",)))
    cond = small.conditions[0]
    per_fold = []
    for f in sorted(set(cond.folds.tolist())):
        test = cond.folds == f
        anchors, _ = ensemble_anchors(templates, cond.vectors[~test])
        ps = np.array([[naive_cos(v, a) for a in anchors] for v in cond.vectors[test]])
        per_fold.append(float(np.mean(ps.argmax(axis=1) == cond.labels[test])))
    got = ev.score(cond.environment, cond.snr_db, "zero-shot-ensemble", "none", "none")
    np.testing.assert_allclose(got.fold_accuracies, per_fold, atol=1e-12)
