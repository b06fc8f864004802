"""Extraction, streaming, policies, redaction and the local command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner

from secops.cli.dlp import dlp
from secops.dlp import Classifier, Policy, PolicyError, redact
from secops.dlp import engine as engine_module

CARD = "4111 1111 1111 1111"
SSN = "536-22-8874"
KEY = "AKIAZ3Q7RWLXMJ5OPQ2B"


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


def _pdf(text: str) -> bytes:
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    size = len(objects) + 1
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def types(result) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(f.type for f in result.findings)


@pytest.mark.parametrize(
    ("filename", "data", "part"),
    [
        ("a.docx", _zip({"word/document.xml": f"<w:document><w:p><w:r><w:t>card {CARD}</w:t>"
                         f"</w:r></w:p><w:p><w:r><w:t xml:space=\"preserve\">ssn {SSN}</w:t></w:r>"
                         "</w:p></w:document>"}), "word/document.xml"),
        ("b.xlsx", _zip({"xl/sharedStrings.xml": f"<sst><si><t>{CARD}</t></si><si><t>{SSN}</t>"
                         "</si></sst>"}), "xl/sharedStrings.xml"),
        ("c.pptx", _zip({"ppt/slides/slide1.xml": f"<p:sld><a:p><a:r><a:t>{CARD}</a:t></a:r></a:p>"
                         f"<a:p><a:t>{SSN}</a:t></a:p></p:sld>"}), "ppt/slides/slide1.xml"),
        ("d.pdf", _pdf(f"card {CARD} ssn {SSN}"), "page 1"),
        ("e.txt", f"card {CARD}\nssn {SSN}\n".encode("utf-16"), "text"),
        ("f.txt", f"carte {CARD} numéro {SSN}".encode("latin-1"), "text"),
        ("g.json", json.dumps({"card": CARD, "ssn": SSN}).encode(), "text"),
        ("h.html", f"<html><body><td>{CARD}</td><p>{SSN}</p></body></html>".encode(), "text"),
    ],
)
def test_formats_are_extracted_with_parts(filename: str, data: bytes, part: str) -> None:
    result = Classifier().scan_bytes(data, filename)
    assert types(result) == ["credit_card", "us_ssn"], result.errors
    assert {f.part for f in result.findings} == {part}
    assert result.classification == "restricted"


def test_email_bodies_and_attachments() -> None:
    msg = EmailMessage()
    msg["From"] = "alice@corp-mail.io"
    msg["To"] = "bob@corp-mail.io"
    msg["Subject"] = "numbers"
    msg.set_content(f"ssn {SSN}", cte="base64")
    msg.add_attachment(f"key {KEY}".encode(), maintype="text", subtype="plain",
                       filename="creds.txt")
    result = Classifier().scan_bytes(msg.as_bytes(), "m.eml")
    parts = {(f.type, f.part) for f in result.findings}
    assert ("us_ssn", "body[1]") in parts
    assert ("aws_access_key_id", "attachment:creds.txt/text") in parts
    assert ("email", "message") in parts


def test_archives_use_the_hook() -> None:
    archive = _zip({"inner.txt": f"ssn {SSN}"})
    assert Classifier().scan_bytes(archive, "x.zip").findings == []
    walker = lambda data, name: [("inner.txt", f"ssn {SSN}".encode())]  # noqa: E731
    result = Classifier(archive_walker=walker).scan_bytes(archive, "x.zip")
    assert [(f.type, f.part) for f in result.findings] == [("us_ssn", "inner.txt/text")]


def test_zip_bomb_member_is_skipped() -> None:
    bomb = _zip({"word/document.xml": "<w:t>" + "A" * 5_000_000 + "</w:t>"})
    result = Classifier().scan_bytes(bomb, "bomb.docx")
    assert result.truncated and result.findings == []


def test_chunked_scan_matches_whole_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(f"row {i} ssn {SSN} card {CARD} k={KEY} ünï\r\n" for i in range(400))
    whole = [(f.type, f.start, f.end) for f in Classifier().scan_text(text).findings]
    monkeypatch.setattr(engine_module, "CHUNK", 997)
    monkeypatch.setattr(engine_module, "OVERLAP", 300)
    chunked = [(f.type, f.start, f.end) for f in Classifier().iter_text(text)]
    streamed = [(f.type, f.start, f.end) for f in Classifier().iter_stream(io.StringIO(text))]
    assert whole == chunked == streamed
    assert len(whole) == 1200


def test_findings_never_hold_values_and_hash_is_keyed() -> None:
    text = f"card {CARD} mail jane.roe@acme.io key {KEY}"
    a = Classifier(hmac_key=b"k1").scan_text(text)
    b = Classifier(hmac_key=b"k2").scan_text(text)
    record = json.dumps(a.to_record())
    for value in (CARD, "jane.roe@acme.io", KEY, "4111111111111111"):
        assert value not in record
    assert "****-****" not in record and "**** **** **** 1111" in record
    assert "j***@acme.io" in record
    assert a.findings[0].digest != b.findings[0].digest
    same = Classifier(hmac_key=b"k1").scan_text(CARD.replace(" ", "-")).findings[0]
    assert same.digest == a.findings[0].digest  # normalised before hashing
    assert "k1" not in repr(Classifier(hmac_key=b"k1"))


def test_redact_styles() -> None:
    text = f"card {CARD}, ssn {SSN}, mail jane@acme.io, db postgres://u:Sup3rS3cret@h/x"
    result = Classifier().scan_text(text)
    labelled = redact(text, result.findings, "type")
    assert labelled == ("card [CREDIT_CARD], ssn [US_SSN], mail [EMAIL], "
                        "db postgres://u:[PASSWORD_IN_URL]@h/x")
    masked = redact(text, result.findings, "mask")
    assert "**** **** **** 1111" in masked and "j***@acme.io" in masked
    assert "Sup3rS3cret" not in masked and "536-22" not in masked


def test_policy_files_and_custom_detectors(tmp_path: Path) -> None:
    (tmp_path / "hr.toml").write_text(
        'pack = "HR"\ncategory = "PII"\nlevel = "internal"\naction = "redact"\n'
        "[[detectors]]\ntype = \"employee_id\"\npattern = 'EMP-\\d{6}'\n"
        'context = ["employee"]\nscore = 0.4\nrequire_context = true\n'
    )
    policy = Policy.load(tmp_path)
    result = Classifier(policy).scan_text("employee EMP-123456;" + " " * 300 + "EMP-654321")
    assert [(f.type, f.level) for f in result.findings] == [("employee_id", "internal")]
    only_pci = Policy.from_mappings({"category": "PCI", "types": ["credit_card"],
                                     "level": "internal"})
    result = Classifier(only_pci).scan_text(f"{CARD} {SSN}")
    assert types(result) == ["credit_card"] and result.classification == "internal"
    with pytest.raises(PolicyError):
        Policy.from_mappings({"category": "PII", "types": ["no_such_type"]})
    with pytest.raises(PolicyError):
        Policy.from_mappings({"category": "PII", "detectors": [{"type": "x_y", "pattern": "a*"}]})


def test_cli_json_contract(tmp_path: Path) -> None:
    text = f"héllo\r\nssn {SSN}\r\ncard {CARD}\n"
    (tmp_path / "a.txt").write_bytes(text.encode("utf-8"))
    (tmp_path / "clean.txt").write_text("nothing to see\n")
    runner = CliRunner()
    res = runner.invoke(dlp, ["scan", "--local", "--json", str(tmp_path / "a.txt"),
                              str(tmp_path / "clean.txt")])
    assert res.exit_code == 1, res.output
    first, second = (json.loads(line) for line in res.output.splitlines())
    assert set(first) == {"path", "classification", "findings"}
    assert first["classification"] == "restricted"
    for f in first["findings"]:
        assert set(f) == {"type", "category", "start", "end", "score"}
    spans = {f["type"]: text[f["start"] : f["end"]] for f in first["findings"]}
    assert spans == {"us_ssn": SSN, "credit_card": CARD}
    assert second == {"path": str(tmp_path / "clean.txt"), "classification": "public",
                      "findings": []}
    res = runner.invoke(dlp, ["scan", "--local", "--json", str(tmp_path / "clean.txt")])
    assert res.exit_code == 0
    res = runner.invoke(dlp, ["scan", "--local", "--json", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2
    res = runner.invoke(dlp, ["scan", str(tmp_path / "a.txt")])
    assert res.exit_code == 2 and "--local" in res.output and "/v1/dlp/scans" in res.output
    res = runner.invoke(dlp, ["scan", "--local", str(tmp_path / "a.txt")])
    assert res.exit_code == 1 and "***-**-8874" in res.output and SSN not in res.output
    res = runner.invoke(dlp, ["redact", "--local", str(tmp_path / "a.txt")])
    assert res.exit_code == 0 and SSN not in res.output and CARD not in res.output


def test_engine_is_pure() -> None:
    probe = ("import sys, secops.dlp; print([m for m in sys.modules if m.startswith(("
             "'secops.api', 'secops.db', 'secops.services', 'secops.config', 'tasks'))])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


MIXED = ("mail jane.roe@acme-corp.io card 4111 1111 1111 1111 ssn: 536-22-8874 "
         "call +1 415-555-2671 client 81.2.69.160 key=AKIAZ3Q7RWLXMJ5OPQ2B\n")


def test_a_restricted_policy_keeps_exactly_the_findings_of_its_types() -> None:
    full = Classifier().scan_text(MIXED * 3).findings
    kept = ("email", "credit_card", "ip_address")
    policy = Policy.default().restricted(kept)
    assert sorted(policy.types) == sorted(kept)
    assert [p.name for p in policy.packs] == ["PII", "PCI"]
    only = Classifier(policy).scan_text(MIXED * 3).findings
    # the types left out were not overlapping the ones kept, so the rest is unchanged
    assert only == [f for f in full if f.type in kept]
    assert {f.type for f in only} == set(kept) and len(only) == 9
    assert policy.phone_regions == Policy.default().phone_regions


def test_a_restricted_policy_keeps_the_phone_regions_of_a_pack_it_drops() -> None:
    """The regions in force come from the first pack that sets any; keeping only phone
    numbers drops that pack here, and Italian numbers must still be read as Italian."""
    policy = Policy.from_mappings(
        {"pack": "EU", "category": "PII", "level": "confidential", "action": "mask",
         "min_score": 0.55, "types": ["iban"], "phone_regions": ["IT"]},
        {"pack": "CONTACT", "category": "PII", "level": "confidential", "action": "mask",
         "min_score": 0.55, "types": ["phone_number"]})
    only = policy.restricted(["phone_number"])
    assert [p.name for p in only.packs] == ["CONTACT"]
    assert only.phone_regions == policy.phone_regions == ("IT",)
    text = "tel 347 123 4567"
    found = [(f.type, f.score) for f in Classifier(policy).scan_text(text).findings]
    assert found == [("phone_number", 0.95)]
    assert [(f.type, f.score) for f in Classifier(only).scan_text(text).findings] == found


def test_a_restricted_policy_refuses_types_it_does_not_have() -> None:
    with pytest.raises(PolicyError, match="unknown types: emails "):
        Policy.default().restricted(["email", "emails"])
    with pytest.raises(PolicyError, match="at least one type"):
        Policy.default().restricted([])


def test_the_local_command_scans_only_the_types_given(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(MIXED, encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(dlp, ["scan", "--local", "--json", "--types", "email,us_ssn",
                              "--types", "aws_access_key_id", str(path)])
    assert out.exit_code == 1, out.output
    types = [f["type"] for f in json.loads(out.output)["findings"]]
    assert types == ["email", "us_ssn", "aws_access_key_id"]
    bad = runner.invoke(dlp, ["scan", "--local", "--types", "passport", str(path)])
    assert bad.exit_code == 2 and "unknown types: passport" in bad.output
    redacted = runner.invoke(dlp, ["redact", "--local", "--style", "type", "--types", "email",
                                   str(path)])
    assert redacted.exit_code == 0, redacted.output
    assert redacted.output.startswith("mail [EMAIL] card 4111 1111 1111 1111 ")
