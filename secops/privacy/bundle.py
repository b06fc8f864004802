"""The access/portability bundle: a ZIP the data subject can read and take elsewhere.

Members::

    manifest.json          subject identity types, map digest, creation time, files,
                           Art 15 information (purposes, lawful bases, categories,
                           recipients, retention from the map's ``processing``) and the
                           DLP engine's findings that are not the subject's own values
    <store>/<table>.json   the table's linked rows (every column)
    <store>/<table>.csv    the same rows as CSV (header = columns)

The DLP run flags values in the subject's records that look like someone else's data
(another person's e-mail address in a note, a card number): every finding that is not
one of the subject's identities or a value of an identity column of their own rows is
listed by file, type and masked preview (never the value) for review before release.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable
from typing import Any

from secops.dlp import Classifier
from secops.privacy.datamap import DataMap
from secops.privacy.mentions import default_classifier, same_value

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def art15(datamap: DataMap) -> list[dict[str, Any]]:
    return [
        {
            "purpose": p.purpose,
            "lawful_basis": p.lawful_basis,
            "categories": list(p.categories),
            "recipients": list(p.recipients),
            "retention": p.retention,
        }
        for p in datamap.processing
    ]


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    columns = list(rows[0]["data"]) if rows else []
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r["data"][c] is None else r["data"][c] for c in columns])
    return buf.getvalue()


def _identity_values(datamap: DataMap, records: list[dict[str, Any]]) -> list[str]:
    """The subject's own values in identity columns of their rows (their IPs, numbers)."""
    out = set()
    for r in records:
        table = datamap.stores[r["store"]].tables[r["table"]]
        for column in table.identities.values():
            value = r["data"].get(column)
            if isinstance(value, str) and value:
                out.add(value)
    return sorted(out)


def third_party_findings(
    name: str, text: str, subject_values: Iterable[str], classifier: Classifier
) -> list[dict[str, Any]]:
    own = list(subject_values)
    out = []
    for f in classifier.scan_text(text).findings:
        value = text[f.start : f.end]
        if any(same_value(value, v) or v.casefold() in value.casefold() for v in own):
            continue
        out.append({"file": name, "type": f.type, "category": f.category, "preview": f.preview})
    return out


def build_bundle(
    datamap: DataMap, export: dict[str, Any], *, created_at: str, classifier: Classifier | None = None
) -> tuple[bytes, dict[str, Any]]:
    """The ZIP's bytes and its manifest."""
    classifier = classifier or default_classifier()
    by_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in export["records"]:
        by_table.setdefault((record["store"], record["table"]), []).append(record)
    files: dict[str, str] = {}
    for (store, table), rows in by_table.items():
        files[f"{store}/{table}.json"] = json.dumps([r["data"] for r in rows], indent=2, ensure_ascii=False)
        files[f"{store}/{table}.csv"] = _csv(rows)
    own = [*export["subject"].values(), *_identity_values(datamap, export["records"])]
    findings: list[dict[str, Any]] = []
    for name, text in files.items():
        if name.endswith(".json"):
            findings += third_party_findings(name, text, own, classifier)
    manifest = {
        "identity_types": sorted(export["subject"]),
        "map_digest": "sha256:" + datamap.digest,
        "created_at": created_at,
        "files": [
            {"name": n, "rows": len(by_table[tuple(n[:-5].rsplit("/", 1))])}  # type: ignore[index]
            for n in files
            if n.endswith(".json")
        ],
        "processing": art15(datamap),
        "controller": dict(datamap.controller),
        "third_party_findings": findings,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in [
            ("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False)),
            *files.items(),
        ]:
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    return buf.getvalue(), manifest
