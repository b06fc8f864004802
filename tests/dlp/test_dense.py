"""Dense exports: the fast paths give exactly what the libraries and the eager order give.

The validators check ASCII values themselves (Luhn, SSN rules, dotted quads, IBAN with
the registry look-up cached) and fall back to python-stdnum and ``ipaddress`` for the
rest; each is compared with the library on random and edge values. The classifier runs
phone checks lazily (``score_bound``); its findings are compared with a classifier whose
checks all run first, on a database-export text and on texts built to make candidates
overlap.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import re
import sys
from pathlib import Path

import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.us import ssn as stdnum_ssn

from secops.dlp import Classifier, Policy
from secops.dlp import validators as v
from secops.dlp.redact import mask

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from dlp_throughput import dense_text  # noqa: E402

RNG_SEED = 28


def test_luhn_matches_stdnum() -> None:
    rng = random.Random(RNG_SEED)
    values = ["", "0", "4111111111111111", "4111111111111112", "٤١١١١١١١١١١١١١١١", "41a1"]
    values += ["".join(rng.choices("0123456789", k=rng.randint(1, 19))) for _ in range(5000)]
    for value in values:
        assert v.luhn_valid(value) == luhn.is_valid(value), value
    assert sum(v.luhn_valid(x) for x in values) > 250  # both answers are exercised


def test_ssn_rules_match_stdnum() -> None:
    rng = random.Random(RNG_SEED)
    values = ["078051120", "457555462", "219099999", "000123456", "666123456", "900123456",
              "123001234", "123450000", "536228874", "٥٣٦٢٢٨٨٧٤", "53622887"]
    values += ["".join(rng.choices("0123456789", k=9)) for _ in range(5000)]
    for value in values:
        assert v.ssn_valid(value) == stdnum_ssn.is_valid(value), value
    assert v.ssn_valid("536228874") and not v.ssn_valid("666228874")


def _ip_reference(value: str) -> float | None:
    """check_ip as written on top of ``ipaddress`` alone."""
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.is_unspecified or any(addr in net for net in v._DOC_NETS):
        return None
    if addr.version == 4 and value.count("255") == 4:
        return None
    groups = [g for g in value.split(":") if g]
    if addr.version == 6 and value != "::1" and (
            len(groups) < 2 or (len(groups) < 4 and not any(c.isdigit() for c in value))):
        return None
    return 0.6


def test_ipv4_fast_path_matches_ipaddress() -> None:
    rng = random.Random(RNG_SEED)
    octets = ["0", "00", "01", "7", "10", "99", "100", "192", "198", "203", "2", "51", "113",
              "255", "256", "999", "", "٣", "1234"]
    values = ["0.0.0.0", "192.0.2.7", "198.51.100.1", "203.0.113.9", "255.255.255.255",
              "8.6.12.139", "1.2.3", "1.2.3.4.5", "::1", "2001:db8::1", "fe80::1"]
    values += [".".join(rng.choice(octets) for _ in range(rng.choice((3, 4, 4, 5))))
               for _ in range(10000)]
    for value in values:
        assert v.check_ip(value) == _ip_reference(value), value
    assert v.check_ip("8.6.12.139") == 0.6 and v.check_ip("08.6.12.139") is None


def _iban_reference(value: str) -> float | None:
    if not v._consistent_separators(value):
        return None
    try:
        stdnum_iban.validate(value)
    except ValidationError:
        try:
            stdnum_iban.validate(value, check_country=False)
        except ValidationError:
            return None
        return 0.8
    return 0.9


def test_iban_matches_stdnum() -> None:
    rng = random.Random(RNG_SEED)
    registry = Path(stdnum_iban.__file__).with_name("iban.dat").read_text().splitlines()
    countries = [line[:2] for line in registry if line[:2].isalpha() and line[:2].isupper()]
    values = ["BE68" + "539007547034", "BE71" + "096123456769", "FR1420041010050500013M02606",
              "DE89370400440532013000", "GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32",
              "NL91ABNA0417164300", "ES9121000418450200051332", "XX82WEST12345698765432",
              "IT60X0542811101000000123456", "GB82-WEST-1234-5698-7654-32", "GB8٢WEST12345698765432"]
    for _ in range(2500):
        country = rng.choice([*countries, "XX", "gb"])
        body = "".join(rng.choices("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   if rng.random() < 0.5 else "0123456789", k=rng.randint(8, 30)))
        check = stdnum_iban.calc_check_digits(country + "00" + body) if country.isupper() \
            else "00"
        value = country + (check if rng.random() < 0.9 else f"{rng.randint(0, 99):02d}") + body
        if rng.random() < 0.3:
            value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
        values.append(value)
    outcomes = {v.check_iban(value) for value in values}
    for value in values:
        assert v.check_iban(value) == _iban_reference(value), value
    assert outcomes == {None, 0.8, 0.9}


def test_masks_keep_the_last_characters() -> None:
    assert mask("credit_card", "4111 1111 1111 1111") == "**** **** **** 1111"
    assert mask("us_ssn", "536-22-8874") == "***-**-8874"
    assert mask("phone_number", "+1 415-555-2671") == "+* ***-***-**71"
    assert mask("iban", "GB82 WEST 1234 5698 7654 32") == "GB** **** **** **** **54 32"
    assert mask("uk_nino", "QQ123456C") == "********C"
    assert mask("us_npi", "12") == "12"


def _eager(classifier: Classifier) -> Classifier:
    """The same classifier with every check run before resolution."""
    classifier._active = [dataclasses.replace(a, bound=None) for a in classifier._active]
    return classifier


@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "re"])
def test_lazy_checks_give_the_eager_findings_on_a_dense_export(prefilter: bool) -> None:
    text = dense_text(0.3, seed=RNG_SEED)
    lazy = Classifier(use_prefilter=prefilter)
    assert any(a.bound is not None for a in lazy._active)
    found = [f.to_record() for f in lazy.iter_text(text)]
    assert found == [f.to_record() for f in _eager(Classifier(use_prefilter=prefilter))
                     .iter_text(text)]
    kinds = {f["type"] for f in found}
    assert kinds == {"email", "ip_address", "us_ssn", "credit_card", "iban", "phone_number"}
    assert 9_000 < len(found) / (len(text.encode()) / 1e6) < 12_000


OVERLAPS = [
    "call +1 415-555-2671 now",
    "+1 415-555-2671",
    "tel: 415-555-2671 or +44 20 7946 0958",
    "order 415-555-2671, phone +1 (415) 555-2671 x12",
    "card 4111 1111 1111 1111 phone 4111 111 1111",
    "ssn 536-22-8874 phone 536-228-8740",
    "+33 1 23 45 67 89 / 01 23 45 67 89 / 030 12345678 mobile 0176 12345678",
    '{"phone": "+1\\u0020415-555-2671", "mail": "jane\\u002eroe@acme-corp.io"}',
    "Kontakt: 089 2180 2450, Fax 089 2180 2451, contact +49 89 2180 2450",
]


def test_lazy_checks_give_the_eager_findings_where_candidates_overlap() -> None:
    rng = random.Random(RNG_SEED)
    for regions in (("US",), ("US", "GB", "DE", "FR")):
        policy = Policy(tuple(dataclasses.replace(p, phone_regions=regions)
                              for p in Policy.default().packs))
        assert policy.phone_regions == regions
        texts = [*OVERLAPS, " ".join(rng.choice(OVERLAPS) for _ in range(40))]
        for text in texts:
            lazy = [f.to_record() for f in Classifier(policy).iter_text(text)]
            eager = [f.to_record() for f in _eager(Classifier(policy)).iter_text(text)]
            assert lazy == eager, text
    found = Classifier().scan_text("+1 415-555-2671").findings
    assert [(f.type, f.start, f.end) for f in found] == [("phone_number", 0, 15)]


def test_email_local_part_stripped_from_the_right_matches_the_forward_search() -> None:
    from secops.dlp import detectors

    tail = re.compile(r"[A-Za-z0-9._%+\-]{1,64}\Z")  # the forward search it replaces
    rng = random.Random(RNG_SEED)
    checked = 0
    for _ in range(4000):
        text = "".join(rng.choice("ab.-_%+@ ,;:é1Z٣") for _ in range(rng.randint(0, 90)))
        for at in (i for i, c in enumerate(text) if c == "@"):
            forward = tail.search(text, max(0, at - 64), at)
            before = text[max(0, at - 64):at]
            run = len(before) - len(before.rstrip(detectors._EMAIL_LOCAL_CHARS))
            assert (forward is None) == (run == 0), text
            if forward is not None:
                assert forward.start() == at - run, text
                checked += 1
    assert checked > 1000
    text = "x" * 70 + "@corp.example.org"
    assert list(detectors.find_emails(text, 0, len(text))) == [(6, len(text))]


def _emails_reference(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The e-mail finder with every look-back run for every address (no gates)."""
    from secops.dlp import detectors as d

    found = []
    for at in re.finditer("@", text[:hi]):
        p = at.start()
        if p < lo:
            continue
        before = text[max(lo, p - 64):p]
        run = len(before) - len(before.rstrip(d._EMAIL_LOCAL_CHARS))
        if not run:
            continue
        domain = d._EMAIL_DOMAIN.match(text, p + 1, hi)
        if domain is None:
            continue
        start = p - run
        while start < p and text[start] in ".-":
            start += 1
        back = max(lo, start - 160)
        if d._USERINFO_BEFORE.search(text, back, start) or d._SCP_AFTER.match(text, domain.end()) \
                or d._SSH_BEFORE.search(text, back, start):
            continue
        found.append((start, domain.end()))
    return found


def test_email_finder_gates_keep_every_address_the_look_backs_keep() -> None:
    from secops.dlp import detectors as d

    rng = random.Random(RNG_SEED)
    pieces = ["jane.roe@acme-corp.io", "git@github.com:org/repo.git", "ssh deploy@host.io",
              "scp -P 22 me@box.example.org:/tmp", "https://user@db.io", "://", "ssh ",
              "rsync -av ", "mosh ", "sftp ", "x@y.co:22", " ", ", ", "\n", "a.b-c@d.e.fr",
              "@", "..@x.com", "-x@y.org", "ssh://git@host.io:22/r", "ftp://u@h.net"]
    checked = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        lo, hi = sorted(rng.sample(range(len(text) + 1), 2)) if len(text) > 1 else (0, len(text))
        for span in (0, len(text)), (lo, hi):
            expected = _emails_reference(text, *span)
            assert list(d.find_emails(text, *span)) == expected, (text, span)
            absent = [h for h in d.EMAIL_HINTS if text.find(h, *span) == -1]
            assert list(d.find_emails(text, *span, absent=absent)) == expected, (text, span)
            checked += len(expected)
    assert checked > 2000


def _ipv6_reference(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """The IPv6 finder trying every ``:hex:`` seed (no gate)."""
    from secops.dlp import detectors as d

    found, last_end = [], lo
    for seed in d._V6_SEED.finditer(text, lo, hi):
        if seed.start() < last_end:
            continue
        start = seed.start()
        while start > max(lo, seed.start() - 40) and text[start - 1] in d._HEX_COLON:
            start -= 1
        full = d.IPV6.match(text, start, min(hi, start + 64))
        if full is not None and full.end() > seed.start():
            last_end = full.end()
            found.append((full.start(), full.end()))
    return found


def test_ipv6_finder_gate_keeps_every_address() -> None:
    from secops.dlp import detectors as d

    rng = random.Random(RNG_SEED)
    pieces = ["fe80::1", "2001:db8:85a3:0:0:8a2e:370:7334", "1:2:3:4:5:6:7:8", "12:30:45",
              "::", ":", "a:b", "T09:15:00Z", "ab", "0", " ", "::ffff:192.0.2.1", "g:", ":f:"]
    checked = 0
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 10)))
        lo, hi = sorted(rng.sample(range(len(text) + 1), 2)) if len(text) > 1 else (0, len(text))
        for span in (0, len(text)), (lo, hi):
            expected = _ipv6_reference(text, *span)
            assert list(d.find_ipv6(text, *span)) == expected, (text, span)
            checked += len(expected)
    assert checked > 1000
