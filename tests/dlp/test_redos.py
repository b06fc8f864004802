"""Custom detector patterns that backtrack catastrophically are refused at load time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from secops.dlp import Policy, PolicyError
from secops.dlp.detectors import BUILTIN
from secops.dlp.redos import CatastrophicPattern, check

# Classic exponential shapes (OWASP's ReDoS examples and their relatives).
CATASTROPHIC = [
    r"(a+)+$", r"([a-zA-Z]+)*@", r"(a|aa)+b", r"(aa?)+b", r"(.*a){20}", r"^(\d+)*$",
    r"(x+x+)+y", r"(?:[a-z]+\.?)+@corp", r"([A-Z]\w*\s?)+:", r"(a.|ab)*c",
    r"(\d|\d\d)+x", r"^(([a-z])+.)+[A-Z]([a-z])+$",
]
SAFE = [
    r"EMP-\d{6}", r"(?:\d{3}-){2}\d{4}", r"[A-Z]{2}\d+", r"(\w+\s)+end", r"(?:ab|cd)+",
    r"\b[A-Z]{3}-\d{4,8}\b", r"(?:[a-z]++\.)+@", r"(?>a+)+b", r"(?:\d{1,3}\.){3}\d{1,3}",
    r"[\w.+-]+@[\w-]+\.[\w.]+", r"(ab?)+c", r"(\w|\d)+x", r"acct[_-]?\d{8}",
]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_shapes_are_refused(pattern: str) -> None:
    with pytest.raises(CatastrophicPattern):
        check(pattern)


@pytest.mark.parametrize("pattern", SAFE)
def test_ordinary_patterns_pass(pattern: str) -> None:
    check(pattern)


def test_builtin_detectors_pass_the_check() -> None:
    for detector in BUILTIN:
        check(detector.pattern.pattern, detector.pattern.flags & re.IGNORECASE)


def test_refused_shapes_really_backtrack() -> None:
    """The oracle is Python's own engine: a refused shape does not finish on a short
    near miss within the child's time limit, the safe rewrite does at once."""
    code = ("import re,sys; re.match(sys.argv[1], 'a' * 60 + '!'); print('done')")
    slow = subprocess.run([sys.executable, "-c", code, r"(a|aa)+$"], capture_output=True,
                          text=True, timeout=60, check=False, preexec_fn=_limit_cpu)
    fast = subprocess.run([sys.executable, "-c", code, r"a+$"], capture_output=True,
                          text=True, timeout=60, check=False, preexec_fn=_limit_cpu)
    assert slow.stdout == "" and slow.returncode != 0  # killed by its CPU limit
    assert fast.stdout == "done\n"


def _limit_cpu() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (2, 2))


def test_policy_with_a_catastrophic_custom_pattern_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "hr.yaml"
    site.write_text("pack: HR\ncategory: PII\ndetectors:\n  - type: badge_id\n"
                    "    pattern: '(\\w+)*#'\n")
    with pytest.raises(PolicyError) as caught:
        Policy.load(site)
    message = str(caught.value)
    assert message.startswith(f"{site}: custom detector 'badge_id': pattern can backtrack "
                              "catastrophically: a repetition inside a repeated group")
    site.write_text("pack: HR\ncategory: PII\ndetectors:\n  - type: badge_id\n"
                    "    pattern: 'BADGE-\\d{6}'\n")
    assert [p.name for p in Policy.load(site).packs][-1] == "HR"
