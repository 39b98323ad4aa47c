"""The character-frequency prior: what it does to scores, and that it is off unless asked for."""

from __future__ import annotations

import numpy as np
import pytest

from kanji_lab.predict import check_options, top_k
from kanji_lab.prior import FLOOR, PriorError, checked_weight, frequencies, log_prior, rescore
from tests.test_predict import images, predict_cfg, run_predict  # noqa: F401 (images: fixture)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_table_covers_kana_and_common_kanji_in_text_order():
    table = frequencies()
    assert table["の"] > table["日"] > table["姶"] > 0
    assert table["ア"] > table["了"]  # the katakana outweighs the rare kanji it is read as
    assert 0.99 < sum(table.values()) < 1.01


def test_log_prior_is_normalised_over_the_labels_and_floors_unknown_characters():
    labels = ["の", "日", "\ue000"]  # a private-use character no text table has
    prior = log_prior(labels)
    assert prior.dtype == np.float32 and abs(np.exp(prior.astype(np.float64)).sum() - 1) < 1e-5
    table = frequencies()
    expected = np.log(np.array([table["の"], table["日"], 0.0]) + FLOOR)
    expected -= np.log(np.exp(expected).sum())
    assert np.allclose(prior, expected, atol=1e-5)


def test_rescore_adds_the_weighted_log_prior_to_the_log_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 3)).astype(np.float32)
    prior = log_prior(["の", "日", "姶"])
    assert np.allclose(rescore(logits, prior, 0.0), log_softmax(logits))
    assert np.allclose(rescore(logits, prior, 0.7), log_softmax(logits) + 0.7 * prior)


def test_top_k_with_the_prior_breaks_a_near_tie_towards_the_frequent_character():
    labels = ["姶", "始"]
    logits = np.array([[2.0, 1.9]], np.float32)  # the rare 姶 a little ahead
    assert top_k(logits, labels, 1)[0][0]["char"] == "姶"  # off: the model alone
    best = top_k(logits, labels, 2, prior=0.5)[0]
    assert best[0]["char"] == "始" and abs(sum(t["prob"] for t in best) - 1) < 1e-9


def test_negative_weights_are_refused_with_a_message():
    assert checked_weight(None) == 0.0 and checked_weight("0.3") == 0.3
    with pytest.raises(PriorError, match="must be 0 .off. or positive"):
        checked_weight(-1)
    with pytest.raises(PriorError, match="must be a number"):
        checked_weight("often")
    with pytest.raises(PriorError):
        rescore(np.zeros((1, 2)), np.zeros(2), -0.5)


def test_predict_is_the_model_alone_by_default_and_refuses_a_negative_prior():
    assert predict_cfg(["run_dir=x", "images=[a.png]"]).prior == 0.0
    with pytest.raises(PriorError):
        check_options(predict_cfg(["run_dir=x", "images=[a.png]", "prior=-1"]))


def test_predict_prior_changes_probabilities(images):  # noqa: F811
    plain = run_predict(images, "topk=3")
    weighted = run_predict(images, "topk=3", "prior=1.0")
    assert plain.keys() == weighted.keys()
    changed = [
        name
        for name in plain
        if [t["prob"] for t in plain[name]["topk"]] != [t["prob"] for t in weighted[name]["topk"]]
    ]
    assert changed  # the prior moved the probabilities of some image
