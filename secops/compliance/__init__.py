"""The compliance matrix: SecOps controls mapped to SOC 2 (Trust Services Criteria),
ISO/IEC 27001:2022 Annex A and GDPR articles, and the report built from live checks.

Pure: the matrix is a data file (``matrix.yaml``); :func:`build_report` joins it with
check outcomes (status and evidence, produced elsewhere from the live system) and
:func:`to_markdown` renders the result. A control whose check is unknown is reported as
``error``, never as passing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

FRAMEWORKS = {"soc2": "SOC 2 (TSC)", "iso27001": "ISO/IEC 27001:2022 Annex A", "gdpr": "GDPR"}
STATUSES = ("pass", "warn", "fail", "not_applicable", "error")


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    check: str
    refs: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Outcome:
    status: str
    evidence: str
    data: dict[str, Any]

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status}")


@lru_cache(maxsize=1)
def controls() -> tuple[Control, ...]:
    raw = yaml.safe_load(resources.files("secops.compliance").joinpath("matrix.yaml").read_text())
    out = []
    for item in raw["controls"]:
        refs = {fw: tuple(str(r) for r in item.get(fw, [])) for fw in FRAMEWORKS}
        out.append(Control(str(item["id"]), str(item["title"]), str(item["check"]), refs))
    return tuple(out)


def build_report(outcomes: dict[str, Outcome], generated_at: str) -> dict[str, Any]:
    """The report: every control with its status and evidence, and counts per framework."""
    rows: list[dict[str, Any]] = []
    for control in controls():
        outcome = outcomes.get(control.check) or Outcome("error", "no such check", {})
        rows.append({"id": control.id, "title": control.title, "check": control.check,
                     "status": outcome.status, "evidence": outcome.evidence,
                     "data": outcome.data, **{fw: list(r) for fw, r in control.refs.items()}})
    summary: dict[str, dict[str, int]] = {}
    for fw in FRAMEWORKS:
        counts = dict.fromkeys(STATUSES, 0)
        for row in rows:
            if row[fw]:
                counts[row["status"]] += 1
        summary[fw] = counts
    overall = dict.fromkeys(STATUSES, 0)
    for row in rows:
        overall[row["status"]] += 1
    return {"generated_at": generated_at, "controls": rows, "summary": summary, "overall": overall}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# SecOps compliance report", "", f"Generated {report['generated_at']}.", "",
             "| framework | pass | warn | fail | n/a | error |", "|---|---:|---:|---:|---:|---:|"]
    for fw, name in FRAMEWORKS.items():
        c = report["summary"][fw]
        lines.append(f"| {name} | {c['pass']} | {c['warn']} | {c['fail']} | "
                     f"{c['not_applicable']} | {c['error']} |")
    lines += ["", "| control | status | SOC 2 | ISO 27001 | GDPR | evidence |",
              "|---|---|---|---|---|---|"]
    for row in report["controls"]:
        lines.append(f"| {row['id']} {_cell(row['title'])} | {row['status']} | "
                     f"{', '.join(row['soc2'])} | {', '.join(row['iso27001'])} | "
                     f"{', '.join(row['gdpr'])} | {_cell(row['evidence'])} |")
    return "\n".join(lines) + "\n"
