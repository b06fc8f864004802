"""The README and docs/ speak to users and operators about the product as it is: no work
diary, and every relative link leads to a file of the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HISTORY = re.compile(
    r"\bsessions? \d|\bthis (host|machine|session)\b|\bbefore this (change|rule|session)\b"
    r"|\bmeasured and not adopted\b|\bstays open\b|\bissue #?\d|\bpoint \d+ of\b|\bas before\b",
    re.IGNORECASE)
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_pages_carry_no_work_diary():
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
             for page in PAGES
             for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if HISTORY.search(line)]
    assert len(PAGES) >= 7
    assert found == []


def test_relative_links_lead_to_files():
    broken = []
    for page in PAGES:
        for target, _ in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_history_pattern_catches_a_diary_line():
    for line in ("Session 21: seventeen runs", "measured on this host", "issue #4 stays open",
                 "Measured and not adopted:"):
        assert HISTORY.search(line), line
    assert not HISTORY.search("a job's session is committed by the route")
