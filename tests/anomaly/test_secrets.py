"""The credential scan of the anomaly engine (:mod:`secops.anomaly.secrets`).

:meth:`SecretFinder.scan` passes over batches without any anchor of the SECRETS pack's
detectors; everything here checks it against the plain classifier pass over every batch
(``_oracle``, the scan without any gate): the benchmark generator's log, credentials of
every type planted at line starts, ends and across batch boundaries, behind JSON and
HTML escapes and next to non-ASCII text, and random mixtures of all of them.
"""

from __future__ import annotations

import importlib.util
import random
import re
from bisect import bisect_right
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from secops.anomaly import secrets
from secops.anomaly.secrets import (
    PACK,
    Reach,
    SecretFinder,
    anchors_of,
    pattern_anchors,
    pattern_requirements,
    reach_of,
)
from secops.dlp import Classifier, Finding, Policy, prefilter
from secops.dlp.detectors import BUILTIN
from secops.dlp.engine import CHUNK
from tests.dlp.corpus import CONTEXTS, GENERATORS, hard_negatives, positives, url_password
from tests.dlp.test_formats import SECRET, SECRET_STYLES, URL_PASSWORDS

needs_hyperscan = pytest.mark.skipif(not prefilter.AVAILABLE, reason="hyperscan is not installed")

SECRET_TYPES = tuple(next(p for p in Policy.default().packs if p.name == PACK).types)


@cache
def _classifier() -> Classifier:
    return Classifier(Policy(tuple(p for p in Policy.default().packs if p.name == PACK)))


def _oracle(lines: Sequence[str], types: frozenset[str] = frozenset()) -> dict[int, list[Finding]]:
    """One classifier pass over the batch, findings of ``types`` (all when empty) mapped
    to lines by their start."""
    found = {}
    for index, findings in _oracle_with(_classifier(), lines).items():
        kept = [f for f in findings if not types or f.type in types]
        if kept:
            found[index] = kept
    return found


def _same(finder: SecretFinder, lines: Sequence[str], batch: int = 512) -> int:
    """Scan ``lines`` in batches both ways; the number of findings."""
    total = 0
    for i in range(0, len(lines), batch):
        chunk = lines[i:i + batch]
        want = _oracle(chunk, finder.types)
        assert finder.scan(chunk) == want
        assert finder.scan_exhaustive(chunk) == want
        total += sum(map(len, want.values()))
    return total


@cache
def _generated() -> tuple[str, ...]:
    """The benchmark generator's lines (auth.log, access log, JSON lines), interleaved."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "anomaly.py"
    spec = importlib.util.spec_from_file_location("anomaly_benchmark_secrets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        module.generate(folder, 600_000, 5)
        files = [(folder / n).read_text().splitlines()
                 for n in ("auth.log", "access.log", "portal.jsonl")]
    lines: list[str] = []
    for i in range(max(map(len, files))):
        lines.extend(f[i] for f in files if i < len(f))
    return tuple(lines)


def _credentials(seed: int = 3) -> list[str]:
    """Texts each holding a credential the SECRETS pack finds, of every type, in the
    formats of the DLP tests (values of tests/dlp/corpus.py, the naming styles of an AWS
    secret and the RFC 3986 passwords of tests/dlp/test_formats.py)."""
    rng = random.Random(seed)
    texts = [text for text, labels in positives(seed, per_type=6)
             if any(t in SECRET_TYPES for t, _, _ in labels)]
    texts += [rng.choice(CONTEXTS.get(t, ["token={}"])).format(GENERATORS[t](rng))
              for t in SECRET_TYPES if t in GENERATORS for _ in range(3)]
    texts += SECRET_STYLES + [text for text, _ in URL_PASSWORDS]
    prefix, password = url_password(rng)
    texts.append(f"DATABASE_URL={prefix}{password}@db.internal:5432/app")
    return texts


def _escaped(text: str, rng: random.Random) -> str:
    """``text`` as JSON or HTML may carry it: one character of it escaped."""
    at = rng.randrange(len(text))
    char = text[at]
    form = rng.choice([f"\\u{ord(char):04x}", f"&#{ord(char)};", f"&#x{ord(char):x};"])
    if char == "/":
        form = rng.choice([form, "\\/"])
    elif char == ":":
        form = rng.choice([form, "&colon;"])
    elif char == "\n":
        form = "\\n"
    return text[:at] + form + text[at + 1:]


# -- the anchors --------------------------------------------------------------------------


def test_anchors_of_the_secrets_detectors() -> None:
    got = {d.type: anchors_of(d) for d, _ in _classifier().policy.detectors()}
    assert got == {
        "aws_access_key_id": (frozenset({"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA",
                                         "ANPA", "ANVA", "A3T"}), False),
        "aws_secret_access_key": (frozenset({
            "aws_secret", "aws-secret", "aws.secret", "awssecret", "aws secret",
            "secret_access_key", "secret-access-key", "secret.access.key", "secretaccesskey",
            "secret access key", "secret_key", "secret-key", "secret.key", "secretkey"}), True),
        "github_token": (frozenset({"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"}),
                         False),
        "slack_token": (frozenset({"xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-",
                                   "xapp-"}), False),
        "stripe_secret_key": (frozenset({"sk_live_", "sk_test_", "rk_live_", "rk_test_"}), False),
        "google_api_key": (frozenset({"AIza"}), False),
        "private_key": (frozenset({"-----BEGIN "}), False),
        "jwt": (frozenset({"eyJ"}), False),
        "password_in_url": (frozenset({"://"}), False),
    }
    reaches = {d.type: reach_of(d, anchors_of(d)) for d, _ in _classifier().policy.detectors()}
    line = Reach(True, 0, 0)
    assert reaches == {  # near: 100 around the word, 1 look-behind, context 80 + 1 and 40
        "aws_access_key_id": line, "aws_secret_access_key": Reach(False, 182, 140),
        "github_token": line, "slack_token": line, "stripe_secret_key": line,
        "google_api_key": line, "private_key": None,  # spans lines
        "jwt": Reach(True, 0, 0, (".",)),  # eyJ on a line without a dot: no JWT there
        "password_in_url": Reach(True, 0, 0, ("@",)),
    }


@pytest.mark.parametrize(("pattern", "anchors"), [
    (r"A(?:KIA|SIA)[A-Z0-9]{16}", {"AKIA", "ASIA"}),
    (r"ab|cd", {"ab", "cd"}),
    (r"ab|c", {"ab", "c"}),
    (r"ab|[a-z]+", None),  # one alternative requires nothing
    (r"foo.*barbaz", {"barbaz"}),
    (r"[sr]k_(?:live|test)_\w+", {"sk_live_", "sk_test_", "rk_live_", "rk_test_"}),
    (r"x(?<!\wx)y", {"xy"}),  # a look-behind matches no characters
    (r"a(?:bc)?d", {"ad", "abcd"}),
    (r"a(?:bc)*d", {"a"}),  # the run stops at an unbounded repeat
    (r"(?:ab)+z", {"ab"}),
    (r"[a-z]{3}", None),  # a wide class: too many strings
    (r"\d+-\d+", {"-"}),
    (r"(?i)secret", None),  # ignoring case: not a case-sensitive anchor
    (r"a(?i:b)cd", {"cd"}),  # an inline flag stops the run
    (r"(ab)\1", {"ab"}),
])
def test_pattern_anchors(pattern: str, anchors: set[str] | None) -> None:
    got = pattern_anchors(re.compile(pattern))
    assert got == (frozenset(anchors) if anchors is not None else None)


def test_every_match_of_every_builtin_pattern_holds_an_anchor() -> None:
    """Over the DLP corpus, formats and the generated log, each pattern of every pack
    (not only SECRETS) matches only text holding one of its derived anchors."""
    texts = [t for t, _ in positives(7, per_type=20)] + hard_negatives(7, 20) + _credentials()
    texts += list(_generated()[:3000])
    checked = 0
    for detector in BUILTIN:
        if detector.finder is not None:
            continue
        anchors = pattern_anchors(detector.pattern)
        if anchors is None:
            continue
        for text in texts:
            for m in detector.pattern.finditer(text):
                assert any(a in m.group(0) for a in anchors), (detector.type, m.group(0))
                checked += 1
    assert checked > 500


def test_every_known_credential_is_found_and_holds_an_anchor() -> None:
    """Each positive example of every SECRETS type: the classifier finds it, the text
    holds an anchor of its detector, and the gated scan finds it too."""
    finder = SecretFinder()
    anchors = {}
    for d, _ in _classifier().policy.detectors():
        found = anchors_of(d)
        assert found is not None
        anchors.setdefault(d.type, []).append(found)
    seen: set[str] = set()
    for text in _credentials():
        lines = text.split("\n")
        want = _oracle(lines)
        assert want, text
        assert finder.scan(lines) == want
        for findings in want.values():
            for f in findings:
                seen.add(f.type)
                fold = text.lower()
                assert any(any((a.lower() in fold) if caseless else (a in text) for a in strings)
                           for strings, caseless in anchors[f.type]), (f.type, text)
    assert seen == set(SECRET_TYPES)


# -- the scan against the oracle ----------------------------------------------------------


@needs_hyperscan
def test_generated_log_is_the_same_and_skipped() -> None:
    finder = SecretFinder()
    lines = list(_generated())
    assert len(lines) > 2000
    _same(finder, lines)
    assert finder.batches_skipped == -(-len(lines) // 512)  # no anchor in any batch


def test_generated_log_with_credentials_planted_everywhere() -> None:
    rng = random.Random(11)
    lines = list(_generated())
    planted = 0
    for text in _credentials():
        parts = text.split("\n")
        at = rng.randrange(len(lines) // 2)  # the second half is left clean (skipped)
        where = rng.choice(["start", "end", "alone", "middle"])
        if len(parts) > 1 or where == "alone":
            lines[at:at] = parts
        elif where == "start":
            lines[at] = text + " " + lines[at]
        elif where == "end":
            lines[at] = lines[at] + " " + text
        else:
            cut = rng.randrange(len(lines[at]) + 1)
            lines[at] = lines[at][:cut] + " " + text + " " + lines[at][cut:]
        planted += 1
    finder = SecretFinder()
    assert _same(finder, lines) >= planted * 0.9
    assert finder.batches_skipped > 0 or not prefilter.AVAILABLE


def test_credentials_across_batch_boundaries() -> None:
    """A credential's lines on both sides of a batch boundary, and one that ends or starts
    a batch: both ways give the same (a private key cut in two is found in neither)."""
    filler = list(_generated()[:2000])
    finder = SecretFinder()
    total = 0
    for text in _credentials(5):
        parts = text.split("\n")
        for offset in range(-len(parts) - 1, 2):
            at = 512 + offset
            lines = filler[:at] + parts + filler[at:1100]
            total += _same(finder, lines)
            half = len(parts[0]) // 2  # one line cut in two
            cut = filler[:511] + [parts[0][:half], parts[0][half:]] + parts[1:] + filler[600:700]
            total += _same(finder, cut)
    assert total > 0


def test_escaped_and_non_ascii_credentials() -> None:
    """Escaped credentials are found in the decoded text (the raw text may hold no
    anchor, as ``postgres&colon;//``); non-ASCII batches go to the classifier."""
    rng = random.Random(8)
    filler = list(_generated()[:600])
    finder = SecretFinder()
    total = 0
    for text in _credentials(9):
        for _ in range(3):
            line = _escaped(text, rng).replace("\n", "\\n")
            at = rng.randrange(len(filler))
            total += _same(finder, filler[:at] + [f'{{"msg": "{line}"}}'] + filler[at:])
        total += _same(finder, filler[:100] + ["ünïcödé — " + text] + filler[100:200])
    total += _same(finder, ["db postgres&colon;//app:Tr0ub4dor@db.corp.net/x"])
    total += _same(finder, ['{"db": "postgres:\\/\\/app:Tr0ub4dor@db.corp.net\\/x"}'])
    total += _same(finder, ["key \\u0041KIAZ3Q7RWLXMJ5OPQ2B here"])
    assert _oracle(["db postgres&colon;//app:Tr0ub4dor@db.corp.net/x"])
    assert total > 100


def test_wanted_types_only() -> None:
    """A finder of some types skips batches holding only other types' anchors, and gives
    what filtering the classifier's findings gives (overlaps resolved over all types)."""
    lines = list(_generated()[:1500])
    mixed = lines[:]
    for i, text in enumerate(_credentials(4)):
        mixed.insert((i * 37) % len(mixed), text.replace("\n", " "))
    for types in (["jwt"], ["aws_access_key_id", "password_in_url"], ["private_key"],
                  ["email"]):
        finder = SecretFinder(types)
        _same(finder, mixed, 300)
        _same(finder, lines, 300)
    finder = SecretFinder(["jwt"])
    assert finder.scan(["AKIAIOSFODNN7EXAMPLE from 10.0.0.1"]) == {}
    assert finder.batches_skipped == (1 if prefilter.AVAILABLE else 0)


def test_one_batch_longer_than_a_classifier_window() -> None:
    lines = list(_generated())
    while sum(map(len, lines)) < CHUNK + 50_000:
        lines += lines
    middle = len(lines) // 2
    lines[middle:middle] = ["AKIAZ3Q7RWLXMJ5OPQ2B", f"aws_secret_access_key = {SECRET}"]
    finder = SecretFinder()
    assert _same(finder, lines, len(lines)) >= 2
    assert finder.batches_skipped == 0


def test_empty_batches() -> None:
    finder = SecretFinder()
    assert finder.scan([]) == _oracle([]) == {}
    assert finder.scan([""]) == _oracle([""]) == {}


_ALPHABET = ' "\\&#;:/@-_.=+AKIeyJghpxo\n\t\u00e9\u212a\u017f\u0130'


def _mutate(line: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(line) + 1)
        if rng.random() < 0.5 and line:
            line = line[:at] + line[at + 1:]
        else:
            line = line[:at] + rng.choice(_ALPHABET) + line[at:]
    return line


def test_random_batches() -> None:
    """Random batches of generated lines, credentials (plain, escaped, upper-cased near
    words) and mutated lines, of random sizes, for random sets of types."""
    rng = random.Random(2024)
    generated = _generated()
    credentials = _credentials(12)
    finders = [SecretFinder(), SecretFinder(["aws_secret_access_key", "github_token"])]
    total = 0
    for _ in range(150):
        lines = []
        for _ in range(rng.randint(1, 600)):
            roll = rng.random()
            line = rng.choice(generated)
            if roll < 0.01:
                line = rng.choice(credentials)
            elif roll < 0.015:
                line = _escaped(rng.choice(credentials), rng)
            elif roll < 0.02:
                line = rng.choice(SECRET_STYLES).upper()
            elif roll < 0.2:
                line = _mutate(line, rng)
            lines.extend(line.split("\n"))
        for finder in finders:
            total += _same(finder, lines, rng.choice([64, 512, 700]))
    assert total > 50
    assert finders[0].batches_skipped > 0 or not prefilter.AVAILABLE


# -- narrowing to the lines around the anchors ---------------------------------------------


@pytest.mark.parametrize(("pattern", "in_line"), [
    (r"A(?<![\w/+]A)KIA[A-Z0-9]{16}(?![\w/+])", True),
    (r"a.b", True), (r"(?s)a.b", False), (r"a(?s:.)b", False),
    (r"a\sb", False), (r"a\Sb", True), (r"a\Db", False), (r"a\db", True), (r"\w+", True),
    (r"a[^x]b", False), (r"a[^\n]b", True), (r"a[^\nx]b", False),  # (negated: not looked into)
    (r"a[\t-\r]b", False), (r"a[\x00-\x09]b", True),
    (r"^ab", False), (r"ab$", False), (r"\bab\b", True), (r"a(?=\n)", False),
    (r"a(?!\s)", False), (r"(a)\1", True), (r"a(?:b|\n)", False), (r"-----[\s\S]{0,9}", False),
])
def test_in_line(pattern: str, in_line: bool) -> None:
    parsed = secrets._sre.parse(pattern)
    assert secrets._in_line(parsed.data, bool(re.compile(pattern).flags & re.DOTALL)) is in_line


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("://", "@", False), ("eyJ", ".", False), ("abc", "b", True), ("abc", "cd", True),
    ("cd", "abc", True), ("ab", "ab", True), ("ab", "ba", True), ("ab", "cd", False),
])
def test_overlap(a: str, b: str, overlap: bool) -> None:
    assert secrets._overlap(a, b) is overlap


def test_pattern_requirements() -> None:
    from secops.dlp.detectors import BUILTIN
    by_type = {d.type: d for d in BUILTIN}
    assert pattern_requirements(by_type["password_in_url"].pattern) == [
        frozenset({"://"}), frozenset({":"}), frozenset({"@"})]
    assert pattern_requirements(re.compile(r"(?i)abc")) == []


def test_only_kelvin_sign_lowers_to_ascii() -> None:
    lowers = [c for c in map(chr, range(0x80, 0x110000)) if not 0xD800 <= ord(c) <= 0xDFFF
              and len(c.lower()) == 1 and c.lower().isascii()]
    assert lowers == [secrets._LOWERS_TO_ASCII]


@needs_hyperscan
def test_narrowed_batches_around_near_words() -> None:
    """An AWS secret and its key name on different lines, at every distance around the
    near window and the context reach, next to the edges of the narrowed lines."""
    filler = list(_generated()[:700])
    finder = SecretFinder()
    total = 0
    for distance in [*range(0, 12), *range(70, 90), *range(95, 106), *range(135, 145), 180, 260]:
        for name in ("aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY=", "secret key"):
            pad = "x" * max(0, distance - len(name))
            cases = [
                [name, pad + " " + SECRET],  # the value on the next line
                [SECRET + " " + pad, name],  # the value on the line before
                [name + pad[: distance // 2], pad[distance // 2:] + SECRET],
                [name + " " * distance + SECRET],
                [SECRET + " " * distance + name],
                [name, "", pad, SECRET],
            ]
            for case in cases:
                at = 200 + distance % 7
                total += _same(finder, filler[:at] + case + filler[at:])
    assert total > 100
    assert finder.batches_narrowed > 0


@needs_hyperscan
def test_narrowed_batches_with_overlapping_and_adjacent_credentials() -> None:
    jwt = GENERATORS["jwt"](random.Random(1))
    filler = list(_generated()[:600])
    finder = SecretFinder()
    cases = [
        [f"https://svc:{jwt}@api.corp.net/x"],  # a JWT as a URL's password
        [f"redis://:{SECRET}@cache:6379 aws_secret_access_key"],
        ["AKIAZ3Q7RWLXMJ5OPQ2B", "AKIAZ3Q7RWLXMJ5OPQ2C"],  # adjacent lines
        ["postgres://app:Tr0ub4dor@db", "x", "postgres://app:Tr0ub4dor@db"],
        ["AKIAZ3Q7RWLXMJ5OPQ2B" + "Z"],  # too long: none
        ["ghp_" + "a" * 36, "ghp_" + "a" * 35],
        [f"eyJ header only . {jwt}"],
    ]
    total = 0
    for case in cases:
        for at in (0, 1, 300, 599, 600):
            total += _same(finder, filler[:at] + case + filler[at:])
    assert total > 20
    assert finder.batches_narrowed > 0


@needs_hyperscan
def test_lines_with_one_requirement_only_are_skipped() -> None:
    """A URL without '@' on its line and a JWT start without a dot on its line stand for
    no credential: the batch is skipped (and the classifier agrees)."""
    lines = [line.replace('"-" "Mozilla', '"https://www.example.com/docs" "Mozilla')
             for line in _generated()[:1024]]
    lines[10] = "mail ops@corp about eyJ tokens"  # "@" and "eyJ", neither URL nor dot
    finder = SecretFinder()
    _same(finder, lines)
    assert sum("://" in line for line in lines) > 100
    assert finder.batches_skipped == 2


@needs_hyperscan
def test_many_anchors_go_to_the_classifier_whole() -> None:
    lines = list(_generated()[:512])
    for i in range(0, 512, 8):
        lines[i] += " AKIAZ3Q7RWLXMJ5OPQ2B"
    finder = SecretFinder()
    assert _same(finder, lines) == 64
    assert finder.batches_skipped == finder.batches_narrowed == 0


@needs_hyperscan
def test_escaped_and_non_ascii_batches_without_anchors_are_skipped() -> None:
    lines = list(_generated()[:512])
    lines[5] = '{"url": "https:\\/\\/www.example.com\\/x", "note": "caf\\u00e9 &amp; more"}'
    lines[9] = "ünïcödé — läuft"
    finder = SecretFinder()
    assert _same(finder, lines) == 0
    assert _same(finder, lines[:5] + lines[6:]) == 0
    assert finder.batches_skipped == 2
    kelvin = lines[:9] + ["aws_secret_\u212aey = " + SECRET] + lines[10:]
    _same(finder, kelvin)  # a near word through the Kelvin sign: the classifier decides
    assert finder.batches_skipped == 2


def test_reach_of_other_detectors() -> None:
    """Detectors of the other packs: shared groups, finders and look-backs of words
    before a candidate have no reach; near words and single-line patterns do."""
    from secops.dlp.detectors import BUILTIN
    reaches = {}
    for d in BUILTIN:
        anchors = anchors_of(d)
        reaches.setdefault(d.type, []).append(
            None if anchors is None else reach_of(d, anchors))
    assert reaches["email"] == [None]  # a finder: anchors are its literals only
    assert set(reaches["phone_number"]) == {  # "+...": \s spans lines; (NNN) NNN-NNNN
        None, Reach(True, 81, 40, (")", ") ", ")-", ").")),  # one line, context around
        Reach(False, 120 + 2 + 81, 120 + 40)}  # near words, a look-behind of 2, context
    assert reaches["us_npi"] == [Reach(False, 200 + 2 + 81, 200 + 40)]
    assert reaches["credit_card"] == [None]  # shared


CUSTOM = {
    "pack": "TOKENS", "category": "SECRET", "min_score": 0.5, "types": ["jwt"],
    "detectors": [
        # found only with "token" within 80 characters before or 40 after: across lines
        {"type": "api_token", "pattern": r"tok_[A-Za-z0-9]{20}(?![A-Za-z0-9])",
         "context": ["token", "bearer"], "score": 0.3, "context_boost": 0.3},
        # looked for only near "session" (require_context): a reach of characters
        {"type": "session_id", "pattern": r"(?<![A-F0-9])[A-F0-9]{32}(?![A-F0-9])",
         "context": ["session"], "require_context": True, "score": 0.6},
        # one line, with a further requirement (';' after the anchor)
        {"type": "db_password", "pattern": r"dbpass=[A-Za-z0-9!]{6,20};", "score": 0.9},
    ],
}


@needs_hyperscan
def test_custom_pack_with_context_across_lines() -> None:
    """Custom detectors whose findings depend on words on other lines (context and
    near words) give the same narrowed as whole, at every distance."""
    policy = Policy.from_mappings(CUSTOM)
    finder = SecretFinder(policy=policy)
    reaches = {d.type: reach_of(d, anchors_of(d))  # type: ignore[arg-type]
               for d, _ in finder.classifier.policy.detectors()}
    assert reaches["api_token"] == Reach(True, 81, 40)
    assert reaches["session_id"] == Reach(False, 120 + 1 + 81, 120 + 40)
    assert reaches["db_password"] == Reach(True, 0, 0, (";",))
    oracle = Classifier(policy)
    filler = list(_generated()[:700])
    token, session = "tok_" + "a1B2" * 5, "0123456789ABCDEF" * 2
    found = 0
    for distance in [*range(0, 6), *range(36, 46), *range(74, 86), *range(115, 126), 170, 250]:
        pad = "y" * distance
        for case in ([f"bearer {pad}", token], [token, pad, "token"], [f"{token} {pad}token"],
                     ["session " + pad, session], [session + pad, "x", "session"],
                     ["token", pad, token + " session", pad[:distance // 2], session],
                     [f"dbpass=Tr0ub4dor; {pad}", "dbpass=short;", "dbpass=Tr0ub4dor"]):
            at = 100 + distance % 11
            lines = filler[:at] + case + filler[at:]
            for i in range(0, len(lines), 512):
                chunk = lines[i:i + 512]
                want = _oracle_with(oracle, chunk)
                assert finder.scan(chunk) == want
                found += sum(map(len, want.values()))
    assert found > 50
    assert finder.batches_narrowed > 20


def _oracle_with(classifier: Classifier, lines: Sequence[str]) -> dict[int, list[Finding]]:
    starts: list[int] = []
    pos = 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    found: dict[int, list[Finding]] = {}
    for f in classifier.iter_text("\n".join(lines)):
        found.setdefault(bisect_right(starts, f.start) - 1, []).append(f)
    return found


@pytest.mark.parametrize("types", [(), ("aws_access_key_id",)])
def test_redaction_is_the_classifier_redaction(types: tuple[str, ...]) -> None:
    from secops.dlp import redact

    finder = SecretFinder(types)
    rng = random.Random(9)
    lines = list(_generated()[:3000]) + _credentials()
    lines += [_escaped(text, rng) for text in _credentials(4)]
    lines += [_mutate(text, rng) for text in _credentials(5) for _ in range(3)]
    changed = 0
    for line in lines:
        findings = list(_classifier().iter_text(line))
        want = redact(line, findings, "type") if findings else line
        got = finder.redact(line)
        assert got == want, line
        changed += got != line
    assert changed > 60   # credentials of every type were replaced
