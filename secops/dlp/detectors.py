"""Detector definitions: pattern, validator, context words and score.

A :class:`Detector` finds *candidates* with a regular expression and turns them into
findings only when its check accepts the value (returning a base score) and, for weak
shapes, when a context word stands nearby. Patterns are written for Python's ``re``
scanning speed: every pattern starts with a literal or a narrow character class (the
engine's fast skip works only then), and left boundaries are look-behinds placed
*after* the first character for the same reason.

Detectors with ``near`` words are *anchored*: they only run in windows around those
words, which is both what makes them precise (forty base64 characters are an AWS
secret only next to "aws_secret_access_key") and what keeps them cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from secops.dlp import validators as v
from secops.dlp.model import Category

Finder = Callable[..., Iterable[tuple[int, int]]]
"""``finder(text, lo, hi)`` gives the spans of candidates in ``text[lo:hi]``; a finder of
a detector with ``hints`` also takes ``absent``, the hints known not to occur there."""


@dataclass(frozen=True, slots=True)
class Detector:
    """How one shape of one type is found, checked and scored."""

    type: str
    category: Category
    pattern: re.Pattern[str]
    check: Callable[[str], float | None]
    group: int | str = 0
    context: tuple[str, ...] = ()
    context_boost: float = 0.35
    negative_before: re.Pattern[str] | None = None
    near: tuple[str, ...] = ()
    near_window: int = 120
    literals: tuple[str, ...] = ()
    priority: int = 50
    finder: Finder | None = None
    shared: str | None = None
    """Detectors with the same ``shared`` name are found by one combined pattern first
    (one pass of ``re`` instead of one per detector); each then matches only at the
    start positions the combined pattern found. Their patterns have no groups."""
    hints: tuple[str, ...] = ()
    """Literals whose absence lets the ``finder`` skip work; the prefilter looks for them
    and the engine passes the finder those absent from the window (``absent=``)."""
    anchor: str | None = None
    """Optional Hyperscan expression for :mod:`secops.dlp.prefilter`: matches a superset
    of ``pattern`` plus at most one boundary character on the left and two on the right
    (a dot is a boundary only before a non-digit), ASCII classes only.
    Used for shared detectors when every detector of the group has one."""
    seed: str | None = None
    """Optional Hyperscan expression (ASCII classes) that every window holding a match
    of the detector matches too: where the prefilter scanned a window without finding
    it, the detector is not run there."""


_R = r"(?![\w\-]|\.\d)"  # right boundary: no word char, dash or decimal part

PII_PHONE_CONTEXT = ("phone", "tel", "mobile", "cell", "call", "fax", "contact", "whatsapp")
SSN_CONTEXT = ("ssn", "social security", "social sec", "taxpayer", "ss#", "ss #")
NPI_CONTEXT = ("npi", "provider", "prescriber", "physician", "national provider", "billing",
               "clinician", "doctor", "dr.", "referring")
MBI_CONTEXT = ("mbi", "medicare", "beneficiary", "cms", "member id")
# Every naming style (snake, camel, kebab, dotted, spaced) of the key that holds it.
AWS_SECRET_NEAR = ("aws_secret", "aws-secret", "aws.secret", "awssecret", "aws secret",
                   "secret_access_key", "secret-access-key", "secret.access.key",
                   "secretaccesskey", "secret access key", "secret_key", "secret-key",
                   "secret.key", "secretkey")
CARD_CONTEXT = ("card", "visa", "mastercard", "amex", "pan", "credit", "debit", "cc")


def _first(cls: str, rest: str, before: str = r"[\w.+\-]") -> re.Pattern[str]:
    """Compile ``cls`` + look-behind + ``rest`` so ``re`` can skip on the first class.

    ``(?<!x)[0-9]`` starts with an assertion and defeats the fast skip;
    ``[0-9](?<!x[0-9])`` checks the same thing after it.
    """
    return re.compile(cls + "(?<!" + before + cls + ")" + rest)


_EMAIL_LOCAL_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-"
"""The characters of an e-mail address's local part (``[A-Za-z0-9._%+-]``)."""
_EMAIL_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)
_EMAIL_DOMAIN_SIMPLE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.[A-Za-z]{2,24}(?![A-Za-z0-9\-.])")
"""The common case of :data:`_EMAIL_DOMAIN`, one label and a top-level domain followed by
neither a label character nor a dot, with less backtracking. Where it matches,
``_EMAIL_DOMAIN`` matches the same span: its first label is the same (no longer one
can hold the dot), further labels would need a dot after the top-level domain, and the
top-level domain is the same run of letters; elsewhere ``_EMAIL_DOMAIN`` decides."""
_AT = re.compile("@")


# Not mailboxes: the user name of a URL's userinfo (scheme://user@host,
# scheme://user:secret@host), an SSH or scp address (git@host:repo.git, ssh deploy@host).
_USERINFO_BEFORE = re.compile(r"://[A-Za-z0-9\-._~!$&'()*+,;=%:]*\Z")
_SSH_COMMANDS = "ssh|scp|sftp|rsync|mosh"
_SSH_BEFORE = re.compile(
    r"(?<![\w-])(?:" + _SSH_COMMANDS + r")(?:\s+-\S+(?:\s+(?!-)[^\s@]+)?)*\s+\Z")
_SSH_COMMAND = re.compile(_SSH_COMMANDS)  # in every match of _SSH_BEFORE; a fast search
_SCP_AFTER = re.compile(r":(?!\d+(?![\w./~-]))[\w~./-]")


_SSH_NAMES = tuple(_SSH_COMMANDS.split("|"))


EMAIL_HINTS = ("://", *_SSH_NAMES)


def find_emails(
    text: str, lo: int, hi: int, absent: Collection[str] | None = None
) -> list[tuple[int, int]]:
    """Anchor on '@' (a fast literal search) and grow both sides from there.

    The look-backs for URL userinfo and SSH commands run only when ``text[lo:hi]``
    holds ``://`` or one of the command names at all (every match of those patterns
    does): ``absent`` names those known not to be there (:data:`EMAIL_HINTS`, from the
    prefilter); without it they are looked for once per call with ``str.find``.
    """
    if absent is None:
        absent = [h for h in EMAIL_HINTS if text.find(h, lo, hi) == -1]
    userinfo = "://" not in absent
    ssh = any(name not in absent for name in _SSH_NAMES)
    domain_match, simple_match = _EMAIL_DOMAIN.match, _EMAIL_DOMAIN_SIMPLE.match
    find = text.find
    found: list[tuple[int, int]] = []
    add = found.append
    at = find("@", lo, hi)
    while at != -1:
        p, at = at, find("@", at + 1, hi)
        # The run of local-part characters that ends at '@' (at most 64), stripped from
        # the right: searching forwards restarts at each of the 64 positions before it.
        before = text[max(lo, p - 64):p]
        run = len(before) - len(before.rstrip(_EMAIL_LOCAL_CHARS))
        if not run:
            continue
        domain = simple_match(text, p + 1, hi) or domain_match(text, p + 1, hi)
        if domain is None:
            continue
        start = p - run
        while start < p and text[start] in ".-":
            start += 1
        end = domain.end()
        if userinfo or ssh:
            back = max(lo, start - 160)
            if userinfo and find("://", back, start) != -1 \
                    and _USERINFO_BEFORE.search(text, back, start):
                continue
            if ssh and _SSH_COMMAND.search(text, back, start) \
                    and _SSH_BEFORE.search(text, back, start):
                continue
        if text.startswith(":", end) and _SCP_AFTER.match(text, end):
            continue
        add((start, end))
    return found


# Hyperscan anchors (see ``Detector.anchor``): left boundary, shape, right boundary.
_HB = r"(?:^|[^0-9A-Za-z_.+\-])"
_HB_DOT = r"(?:^|[^0-9A-Za-z_.])"
_HB_DASH = r"(?:^|[^0-9A-Za-z_.\-])"
_HR = r"(?:[^0-9A-Za-z_\-]|$)"
_HR_NUM = r"(?:[^0-9A-Za-z_.\-]|\.(?:[^0-9]|$)|$)"  # _R: nor a dot before a digit (2 chars)
_HR_IP = r"(?:[^0-9A-Za-z_]|$)"
_HS_SPACE = r"[\t-\r\x1c-\x1f ]"
_D = "[0-9]"

IPV4 = _first("[0-9]", r"\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)", r"[\w.]")
_SHARED_PREFIX = {"digits": ("[0-9]", r"[\w.]"), "upper": ("[A-Z]", r"[\w.\-]")}
_FIRST_FORM = re.compile(r"(\[[^\]]*\])\(\?<!(\[[^\]]*\])\1\)(.*)", re.S)


def combine(name: str, patterns: list[str]) -> re.Pattern[str]:
    """One pattern that matches where any of ``patterns`` (built by ``_first``) may.

    The first character class and a common look-behind are factored out, which keeps
    ``re``'s fast skip; an alternation of whole patterns would lose it (4x slower).
    """
    cls, before = _SHARED_PREFIX[name]
    alternatives = []
    for pattern in patterns:
        parts = _FIRST_FORM.fullmatch(pattern)
        if parts is None:
            raise ValueError(f"shared pattern not in _first form: {pattern!r}")
        first, own_before, rest = parts.groups()
        alternatives.append(f"(?<={first})(?<!{own_before}{first}){rest}")
    return re.compile(f"{cls}(?<!{before}{cls})(?:" + "|".join(alternatives) + ")")


IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:]*::|(?:[0-9A-Fa-f]{1,4}:){7})"
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_V6_SEED = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")


_V6_SEVEN = re.compile(r":(?:[0-9A-Fa-f]{1,4}:){6}")
"""In every run of seven groups ``hex:``, after its first group."""
IPV6_SEED = "::|:(?:[0-9A-Fa-f]{1,4}:){6}"
"""In every window holding a match of :data:`IPV6` (the early exit of :func:`find_ipv6`)."""


def find_ipv6(text: str, lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """Anchor on ``:hex:`` (cheap: starts with a literal) and match around it.

    Every match holds ``::`` or seven groups ``hex:`` (the look-ahead of :data:`IPV6`)
    inside ``text[lo:hi]``; without either (times of day in a log or an export are
    ``:hex:`` seeds too) there is nothing to match around the seeds.
    """
    if text.find("::", lo, hi) == -1 and _V6_SEVEN.search(text, lo, hi) is None:
        return  # IPV6_SEED's test, for windows the prefilter did not scan
    last_end = lo
    for seed in _V6_SEED.finditer(text, lo, hi):
        if seed.start() < last_end:
            continue
        start = seed.start()
        floor = max(lo, start - 40)
        while start > floor and text[start - 1] in _HEX_COLON:
            start -= 1
        full = IPV6.match(text, start, min(hi, start + 64))
        if full is not None and full.end() > seed.start():
            last_end = full.end()
            yield full.start(), full.end()


_IP_NEGATIVE_WORDS = ("version", "ver", "rel", "release", "build", "firmware", "fw", "rev",
                      "revision", "rv", "v")
_IP_NEGATIVE_TAIL = ".:=#\"'"
IP_NEGATIVE = re.compile(r"(?<![a-z])(?:" + "|".join(_IP_NEGATIVE_WORDS)
                         + r")\.?[\s:=#\"']*\Z")
_PHONE_NEGATIVE_WORDS = ("order", "invoice", "inv", "ref", "sku", "ticket", "tracking", "serial",
                         "isbn", "item", "part", "po", "case", "batch", "lot")
_PHONE_NEGATIVE_SUFFIXES = ("no", "nr", "id", "number", "#")
_PHONE_NEGATIVE_TAIL = ".:#="
PHONE_NEGATIVE = re.compile(
    r"(?<![a-z])(?:" + "|".join(_PHONE_NEGATIVE_WORDS) + r")(?:\s*(?:"
    + "|".join(_PHONE_NEGATIVE_SUFFIXES) + r"))?\.?[\s:#=]*\Z")
"""Words before a number that make it an identifier, not a phone (12 characters back)."""
NEGATIVE_ENDS: dict[re.Pattern[str], frozenset[str]] = {
    IP_NEGATIVE: frozenset(w[-1] for w in _IP_NEGATIVE_WORDS) | frozenset(_IP_NEGATIVE_TAIL),
    PHONE_NEGATIVE: frozenset(w[-1] for w in _PHONE_NEGATIVE_WORDS + _PHONE_NEGATIVE_SUFFIXES)
    | frozenset(_PHONE_NEGATIVE_TAIL),
}
"""The characters other than whitespace that a match of each built-in ``negative_before``
pattern can end with (each ends at the candidate, ``\\Z``): a candidate after any other
character needs no search."""

BUILTIN: tuple[Detector, ...] = (
    Detector("email", "PII", _AT, v.check_email, finder=find_emails, literals=("@",),
             hints=EMAIL_HINTS,
             context=("email", "e-mail", "mail", "contact"), context_boost=0.1, priority=40),
    Detector("phone_number", "PII",
             re.compile(r"\+(?<![\w+]\+)\d{1,3}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,4}"
                        r"(?:[ .\-]?\d{2,5}){1,4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, literals=("+",), priority=30),
    Detector("phone_number", "PII",
             re.compile(r"\((?<!\w\()\d{2,5}\)[ .\-]?\d{2,4}[ .\-]?\d{3,4}" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, literals=("(",), priority=30),
    Detector("phone_number", "PII",
             _first("[0-9]", r"\d{1,4}[ .\-]\d{2,4}[ .\-]\d{3,4}" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, priority=30, shared="digits",
             negative_before=PHONE_NEGATIVE,
             anchor=_HB + "[0-9]{2,5}[ .\\-][0-9]{2,4}[ .\\-][0-9]{3,4}" + _HR_NUM),
    Detector("phone_number", "PII", _first("[0-9]", r"\d{3,4} \d{6}" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, priority=30, shared="digits",
             negative_before=PHONE_NEGATIVE,
             anchor=_HB + "[0-9]{4,5} [0-9]{6}" + _HR_NUM),
    # National formats with a trunk 0 (checked against the policy's default regions):
    # "030 12345678", "0176/12345678" (area code and subscriber), "01 23 45 67 89".
    Detector("phone_number", "PII", _first("[0-9]", r"(?<=0)\d{2,4}[ /\-]\d{4,8}" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, priority=30, shared="digits",
             negative_before=PHONE_NEGATIVE,
             anchor=_HB + "0[0-9]{2,4}[ /\\-][0-9]{4,8}" + _HR_NUM),
    Detector("phone_number", "PII", _first("[0-9]", r"(?<=0)[1-9](?:[ .\-]\d\d){4}" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, priority=30, shared="digits",
             negative_before=PHONE_NEGATIVE,
             anchor=_HB + "0[1-9](?:[ .\\-][0-9]{2}){4}" + _HR_NUM),
    Detector("phone_number", "PII", _first("[0-9]", r"(?<=0)[1-9]\d{8,10}" + _R),
             v.check_phone_in, context=PII_PHONE_CONTEXT, priority=30, shared="digits",
             negative_before=PHONE_NEGATIVE, anchor=_HB + "0[1-9][0-9]{8,10}" + _HR_NUM),
    Detector("phone_number", "PII", _first("[0-9]", r"\d{9,10}" + _R), v.check_phone_in,
             context=PII_PHONE_CONTEXT, near=PII_PHONE_CONTEXT, priority=20),
    Detector("us_ssn", "PII", _first("[0-9]", r"\d\d(?:-\d\d-| \d\d |\d\d)\d{4}" + _R),
             v.check_us_ssn,
             context=SSN_CONTEXT, priority=60, shared="digits",
             anchor=_HB + "[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} |[0-9]{2})[0-9]{4}" + _HR_NUM),
    Detector("iban", "PII",
             _first("[A-Z]", r"[A-Z]\d\d(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![\w\-])",
                    r"[\w.\-]"),
             v.check_iban, context=("iban", "bank", "account"), context_boost=0.1, priority=85,
             shared="upper",
             anchor=_HB_DASH + "[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?" + _HR),
    Detector("ip_address", "PII", IPV4, v.check_ip, literals=(".",),
             context=("ip", "address", "host", "client", "remote", "src", "dst"),
             context_boost=0.2, negative_before=IP_NEGATIVE,
             priority=35, shared="digits",
             anchor=_HB_DOT + "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}" + _HR_IP),
    Detector("ip_address", "PII", IPV6, v.check_ip, literals=(":",), finder=find_ipv6,
             seed=IPV6_SEED,
             context=("ip", "ipv6", "address", "host"), context_boost=0.2, priority=35),
    Detector("uk_nino", "PII",
             _first("[A-CEGHJ-PR-TW-Z]", r"[A-CEGHJ-NPR-TW-Z](?:\d{6}|\s\d\d\s\d\d\s\d\d\s?)[A-D]"
                    r"(?![\w\-])", r"[\w.\-]"),
             v.check_uk_nino, context=("national insurance", "nino", "ni number", "ni no"),
             context_boost=0.2, priority=60, shared="upper",
             anchor=_HB_DASH + "[A-Z]{2}(?:[0-9]{6}|" + _HS_SPACE + "[0-9]{2}" + _HS_SPACE
             + "[0-9]{2}" + _HS_SPACE + "[0-9]{2}" + _HS_SPACE + "?)[A-D]" + _HR),
    Detector("credit_card", "PCI",
             _first("[1-9]", r"(?:\d{3}[ \-]?\d{4}[ \-]?\d{4}[ \-]?\d{1,7}"
                    r"|\d{3}[ \-]?\d{6}[ \-]?\d{4,5}|\d{11,18})" + _R),
             v.check_credit_card, context=CARD_CONTEXT, context_boost=0.1, priority=80,
             shared="digits",
             anchor=_HB + "[1-9](?:[0-9]{3}[ \\-]?[0-9]{4}[ \\-]?[0-9]{4}[ \\-]?[0-9]{1,7}"
             "|[0-9]{3}[ \\-]?[0-9]{6}[ \\-]?[0-9]{4,5}|[0-9]{11,18})" + _HR_NUM),
    Detector("us_npi", "PHI", _first("[12]", r"\d{9}" + _R), v.check_us_npi,
             context=NPI_CONTEXT, near=NPI_CONTEXT, near_window=200, priority=55),
    Detector("us_mbi", "PHI",
             _first("[1-9]", r"[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]"
                    r"[AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]{2}\d\d(?![\w\-])"),
             v.check_us_mbi, context=MBI_CONTEXT, priority=65, shared="digits",
             anchor=_HB + "[1-9][A-Z][A-Z0-9][0-9]-?[A-Z][A-Z0-9][0-9]-?[A-Z]{2}[0-9]{2}" + _HR),
    Detector("aws_access_key_id", "SECRET",
             re.compile(r"A(?<![A-Za-z0-9/+]A)(?:KIA|SIA|GPA|IDA|ROA|IPA|NPA|NVA|3T[A-Z0-9])"
                        r"[A-Z0-9]{16}(?![A-Za-z0-9/+])"),
             v.check_aws_key_id, literals=("A",), priority=90),
    Detector("aws_secret_access_key", "SECRET",
             re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
             v.check_aws_secret, context=AWS_SECRET_NEAR, context_boost=0.45,
             near=AWS_SECRET_NEAR, near_window=100, priority=85),
    Detector("github_token", "SECRET",
             re.compile(r"g(?<![A-Za-z0-9_]g)(?:h[pousr]_[A-Za-z0-9]{36,251}"
                        r"|ithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])"),
             v.check_token, literals=("gh", "github_pat_"), priority=90),
    Detector("slack_token", "SECRET",
             re.compile(r"x(?<![A-Za-z0-9]x)(?:ox[abposr]-\d{6,}-[0-9A-Za-z\-]{8,200}"
                        r"|app-\d-[A-Z0-9]{6,}-\d{6,}-[a-f0-9]{16,})(?![A-Za-z0-9\-])"),
             v.check_token, literals=("xox", "xapp-"), priority=90),
    Detector("stripe_secret_key", "SECRET",
             re.compile(r"[sr](?<![A-Za-z0-9_][sr])k_(?:live|test)_[0-9A-Za-z]{16,247}"
                        r"(?![A-Za-z0-9_])"),
             v.check_token, literals=("k_live_", "k_test_"), priority=90),
    Detector("google_api_key", "SECRET",
             re.compile(r"A(?<![A-Za-z0-9_\-]A)Iza[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])"),
             v.check_token, literals=("AIza",), priority=90),
    Detector("private_key", "SECRET",
             re.compile(r"-----BEGIN ((?:[A-Z0-9]+ ){0,2}PRIVATE KEY(?: BLOCK)?)-----"
                        r"[\s\S]{0,16000}?-----END \1-----"),
             v.check_private_key, literals=("PRIVATE KEY",), priority=100),
    Detector("jwt", "SECRET",
             re.compile(r"e(?<![A-Za-z0-9_\-]e)yJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{2,}"
                        r"\.[A-Za-z0-9_\-]*(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_\-])"),
             v.check_jwt, literals=("eyJ",), priority=90),
    # RFC 3986 userinfo: unreserved, percent-encoded and sub-delimiter characters, and
    # colons in the password; the user name may be empty (redis://:secret@host).
    Detector("password_in_url", "SECRET",
             re.compile(r"://[A-Za-z0-9\-._~!$&'()*+,;=%]{0,128}:"
                        r"([A-Za-z0-9\-._~!$&'()*+,;=%:]{1,128})@[A-Za-z0-9\[\]._\-]+"),
             v.check_url_password, group=1, literals=("://",), priority=95),
)
"""The built-in detectors; types outside every active pack are not run."""

BUILTIN_TYPES: dict[str, Category] = {d.type: d.category for d in BUILTIN}
