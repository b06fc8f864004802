"""Precision and recall of the detectors on the generated, labelled corpus."""

from __future__ import annotations

from collections import Counter

import pytest

from secops.dlp import Classifier, prefilter
from tests.dlp.corpus import GENERATORS, hard_negatives, positives

TYPES = [*GENERATORS, "ip_address", "password_in_url"]


@pytest.fixture(scope="module", params=["prefilter", "re"])
def scores(request: pytest.FixtureRequest) -> tuple[
    Counter[str], Counter[str], Counter[str], list[str]
]:
    """Both scanning paths are held to the thresholds: with the optional Hyperscan
    prefilter (when installed) and pure ``re``."""
    if request.param == "prefilter" and not prefilter.AVAILABLE:
        pytest.skip("hyperscan is not installed")
    classifier = Classifier(use_prefilter=request.param == "prefilter")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    problems: list[str] = []
    samples = positives() + [(text, []) for text in hard_negatives()]
    for text, labels in samples:
        found = {(f.type, f.start, f.end) for f in classifier.scan_text(text).findings}
        expected = set(labels)
        for item in found & expected:
            tp[item[0]] += 1
        for item in found - expected:
            fp[item[0]] += 1
            problems.append(f"FP {item[0]} {text[item[1]:item[2]]!r} in {text[:80]!r}")
        for item in expected - found:
            fn[item[0]] += 1
            problems.append(f"FN {item[0]} {text[item[1]:item[2]]!r} in {text[:80]!r}")
    return tp, fp, fn, problems


@pytest.mark.parametrize("type_", TYPES)
def test_precision_and_recall_per_type(type_: str, scores) -> None:  # type: ignore[no-untyped-def]
    tp, fp, fn, problems = scores
    assert tp[type_] >= 20, f"too few positives for {type_}"
    precision = tp[type_] / (tp[type_] + fp[type_])
    recall = tp[type_] / (tp[type_] + fn[type_])
    detail = [p for p in problems if f" {type_} " in p][:5]
    assert precision >= 0.95, (precision, detail)
    assert recall >= 0.95, (recall, detail)


def test_micro_f1(scores) -> None:  # type: ignore[no-untyped-def]
    tp, fp, fn, problems = scores
    t, p, n = sum(tp.values()), sum(fp.values()), sum(fn.values())
    f1 = 2 * t / (2 * t + p + n)
    assert f1 >= 0.97, (f1, problems[:10])


def test_hard_negatives_are_silent() -> None:
    classifier = Classifier()
    noisy = [(t, [f.type for f in classifier.scan_text(t).findings]) for t in hard_negatives()]
    assert [n for n in noisy if n[1]] == []
