"""Records of processing activities (Art 30 GDPR) from the map.

One record per ``processing`` entry (purpose, lawful basis, categories of data and of
subjects, recipients, retention, transfers, security measures) with, for each of its
data categories, where the map says that data is kept (store.table.column). The
inventory lists every personal field with its category, erase strategy, the table's
retention and legal hold. Formats: Markdown, JSON and CSV (one row per activity).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from secops.privacy.datamap import DataMap

FORMATS = ("md", "json", "csv")


def ropa(datamap: DataMap) -> dict[str, Any]:
    where: dict[str, list[str]] = {}
    inventory = []
    for store, table, f in datamap.fields():
        where.setdefault(f.category, []).append(f"{store.name}.{table.name}.{f.column}")
        inventory.append(
            {
                "store": store.name,
                "table": table.name,
                "column": f.column,
                "category": f.category,
                "erase": "delete" if table.deletes_rows else f.erase,
                "retention_days": table.retention_days,
                "legal_hold": table.legal_hold,
            }
        )
    activities = []
    for p in datamap.processing:
        activities.append(
            {
                "purpose": p.purpose,
                "lawful_basis": p.lawful_basis,
                "categories": list(p.categories),
                "subjects": list(p.subjects),
                "recipients": list(p.recipients),
                "retention": p.retention,
                "transfers": p.transfers,
                "measures": p.measures,
                "locations": sorted({loc for c in p.categories for loc in where.get(c, [])}),
            }
        )
    return {"controller": dict(datamap.controller), "activities": activities, "inventory": inventory}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return str(value)


def _md_cell(value: Any) -> str:
    return _cell(value).replace("|", "\\|").replace("\n", " ") or "-"


def render(datamap: DataMap, fmt: str) -> str:
    report = ropa(datamap)
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    columns = [
        "purpose",
        "lawful_basis",
        "categories",
        "subjects",
        "recipients",
        "retention",
        "transfers",
        "measures",
        "locations",
    ]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for a in report["activities"]:
            writer.writerow([_cell(a[c]) for c in columns])
        return buf.getvalue()
    lines = ["# Records of processing activities (Art 30 GDPR)", ""]
    for k, v in report["controller"].items():
        lines.append(f"- **{k}**: {v}")
    if report["controller"]:
        lines.append("")
    lines += ["## Processing activities", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for a in report["activities"]:
        lines.append("| " + " | ".join(_md_cell(a[c]) for c in columns) + " |")
    inv_cols = ["store", "table", "column", "category", "erase", "retention_days", "legal_hold"]
    lines += [
        "",
        "## Personal data inventory",
        "",
        "| " + " | ".join(inv_cols) + " |",
        "|" + "---|" * len(inv_cols),
    ]
    for row in report["inventory"]:
        lines.append("| " + " | ".join(_md_cell(row[c]) for c in inv_cols) + " |")
    return "\n".join(lines) + "\n"
