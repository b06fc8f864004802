"""Precision and recall on the independent corpus (tests/dlp/independent_corpus.py).

A finding counts as a true positive when it overlaps a labelled value of the same type
(one finding per label); any other finding is a false positive, any label left over a
false negative. Two seeds are scored: 2028, the corpus the detectors were corrected on,
and 4711, drawn only afterwards. Both scanning paths are held to the goals.

    .venv/bin/python -m tests.dlp.test_independent_corpus   # prints the tables
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

import pytest

from secops.dlp import Classifier, prefilter
from tests.dlp.independent_corpus import Doc, documents

SEEDS = (2028, 4711)


@dataclass
class Score:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))

    def precision(self, kind: str) -> float:
        found = self.tp[kind] + self.fp[kind]
        return self.tp[kind] / found if found else 0.0

    def recall(self, kind: str) -> float:
        labelled = self.tp[kind] + self.fn[kind]
        return self.tp[kind] / labelled if labelled else 0.0

    @property
    def micro_f1(self) -> float:
        t, p, n = sum(self.tp.values()), sum(self.fp.values()), sum(self.fn.values())
        return 2 * t / (2 * t + p + n)


def score(classifier: Classifier, docs: list[Doc]) -> Score:
    result = Score()
    for doc in docs:
        text = doc.body
        open_labels = list(doc.labels)
        for finding in classifier.scan_text(text).findings:
            match = next((label for label in open_labels if label[0] == finding.type
                          and finding.start < label[2] and label[1] < finding.end), None)
            if match is None:
                result.fp[finding.type] += 1
                result.problems.append(f"FP {finding.type} "
                                       f"{text[finding.start:finding.end]!r} in {doc.name}")
            else:
                open_labels.remove(match)
                result.tp[finding.type] += 1
        for kind, start, end in open_labels:
            result.fn[kind] += 1
            result.problems.append(f"FN {kind} {text[start:end][:60]!r} in {doc.name}")
    return result


@pytest.fixture(scope="module", params=[(s, p) for s in SEEDS for p in ("prefilter", "re")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def scored(request: pytest.FixtureRequest) -> Score:
    seed, path = request.param
    if path == "prefilter" and not prefilter.AVAILABLE:
        pytest.skip("hyperscan is not installed")
    return score(Classifier(use_prefilter=path == "prefilter"), _docs(seed))


_cache: dict[int, list[Doc]] = {}


def _docs(seed: int) -> list[Doc]:
    if seed not in _cache:
        _cache[seed] = documents(seed)
    return _cache[seed]


def test_corpus_covers_every_type_it_claims() -> None:
    labels = Counter(kind for doc in _docs(SEEDS[0]) for kind, _, _ in doc.labels)
    assert set(labels) == {
        "email", "phone_number", "iban", "credit_card", "ip_address", "us_ssn", "uk_nino",
        "aws_access_key_id", "aws_secret_access_key", "github_token", "slack_token",
        "stripe_secret_key", "google_api_key", "jwt", "private_key", "password_in_url"}
    assert min(labels.values()) >= 8 and sum(labels.values()) >= 1500


def test_every_type_meets_precision_and_recall(scored: Score) -> None:
    weak = [(kind, round(scored.precision(kind), 3), round(scored.recall(kind), 3))
            for kind in scored.types
            if scored.precision(kind) < 0.95 or scored.recall(kind) < 0.95]
    assert weak == [], scored.problems[:20]


def test_micro_f1(scored: Score) -> None:
    assert scored.micro_f1 >= 0.97, scored.problems[:20]


def main() -> None:
    for seed in SEEDS:
        result = score(Classifier(), documents(seed))
        print(f"seed {seed}: micro F1 {result.micro_f1:.4f}")
        print("| type | labels | TP | FP | FN | precision | recall |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for kind in result.types:
            labelled = result.tp[kind] + result.fn[kind]
            print(f"| {kind} | {labelled} | {result.tp[kind]} | {result.fp[kind]} | "
                  f"{result.fn[kind]} | {result.precision(kind):.3f} | "
                  f"{result.recall(kind):.3f} |")
        for problem in result.problems:
            print("   ", problem)


if __name__ == "__main__":
    sys.exit(main())
