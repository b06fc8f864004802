"""Validators: a candidate the pattern found becomes a finding only if one agrees.

Each check takes the matched value and returns a base score (0..1) or ``None`` to
reject it. Checksums come from python-stdnum and phonenumbers; what is written here
is only the part no library covers (issuer prefixes, MBI shape, token shapes).

Documentation placeholders are rejected everywhere by one rule, documented in
docs/dlp.md: a value is a placeholder when it is *explicitly marked* as an example
(``EXAMPLE``, ``xxxx``, ``your...``, ``<...>``, ``${...}``) or *reserved for
documentation by the body that issues such values*: RFC 2606/6761 domains with a
generic local part (``user@example.com``; ``jane.roe@example.com`` is still reported),
RFC 5737/3849 address blocks, NANP 555-0100..0199, SSNs the SSA withdrew or never
issues (078-05-1120, 219-09-9999, 457-55-5462, 123-45-6789, one digit repeated).
Published test card numbers (4111 1111 1111 1111) are *not* placeholders: they are
indistinguishable from card numbers in data, and card scanners must find them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
from collections.abc import Callable

import phonenumbers
import phonenumbers.phonenumberutil as _pnu
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.exceptions import InvalidChecksum, InvalidFormat, ValidationError
from stdnum.iso7064 import mod_97_10
from stdnum.us import ssn as stdnum_ssn

Check = Callable[[str], "float | None"]

_NON_DIGITS = re.compile(r"\D")
_MARKERS = re.compile(r"example|xxxx|your[_-]?|dummy|placeholder|redacted|[<>{}$]", re.I)


def digits(value: str) -> str:
    return _NON_DIGITS.sub("", value)


def is_marked_placeholder(value: str) -> bool:
    """True for values that announce themselves as examples."""
    return _MARKERS.search(value) is not None


_ASCII_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DROP_ASCII_ALNUM = str.maketrans(dict.fromkeys(_ASCII_ALNUM))


def _consistent_separators(value: str) -> bool:
    """At most one kind of character other than letters and digits."""
    if value.isascii():  # ASCII letters and digits are the ASCII str.isalnum() ones
        seps = value.translate(_DROP_ASCII_ALNUM)
        return not seps or seps.count(seps[0]) == len(seps)
    return len({c for c in value if not c.isalnum()}) <= 1


# Issuer prefix ranges (inclusive, compared on the first len(lo) digits) and lengths.
_ISSUERS: tuple[tuple[str, str, frozenset[int]], ...] = (
    ("4", "4", frozenset({13, 16, 19})),  # Visa
    ("51", "55", frozenset({16})),  # Mastercard
    ("2221", "2720", frozenset({16})),  # Mastercard 2-series
    ("34", "34", frozenset({15})),  # American Express
    ("37", "37", frozenset({15})),
    ("300", "305", frozenset({14, 16, 17, 18, 19})),  # Diners Club
    ("36", "36", frozenset({14, 16, 17, 18, 19})),
    ("38", "39", frozenset({14, 16, 17, 18, 19})),
    ("6011", "6011", frozenset({16, 17, 18, 19})),  # Discover
    ("644", "649", frozenset({16, 17, 18, 19})),
    ("65", "65", frozenset({16, 17, 18, 19})),
    ("622126", "622925", frozenset({16, 17, 18, 19})),
    ("3528", "3589", frozenset({16, 17, 18, 19})),  # JCB
    ("62", "62", frozenset({16, 17, 18, 19})),  # UnionPay
    ("81", "81", frozenset({16, 17, 18, 19})),
    ("2200", "2204", frozenset({16, 17, 18, 19})),  # Mir
    ("5018", "5018", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),  # Maestro
    ("5020", "5020", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("5038", "5038", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("5893", "5893", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("6304", "6304", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("6759", "6759", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    ("6761", "6763", frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
)


def card_issuer_ok(number: str) -> bool:
    """A known issuer range admits this prefix with this length."""
    n = len(number)
    for lo, hi, lengths in _ISSUERS:
        if n in lengths and lo <= number[: len(lo)] <= hi:
            return True
    return False


_ASCII_DIGITS = re.compile(r"[0-9]+")
_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_LUHN_DOUBLED = str.maketrans("0123456789", "".join(map(str, _LUHN_DOUBLE)))


def luhn_valid(number: str) -> bool:
    """``stdnum.luhn.is_valid``; ASCII digit strings (what the detectors match) are
    checked here without its per-character index lookups (several times faster)."""
    if _ASCII_DIGITS.fullmatch(number) is None:
        return luhn.is_valid(number)
    # every other digit from the right doubled (its digit sum: one digit again), then
    # the digit sum of the whole as the sum of the ASCII codes less 48 per digit
    summed = number[-1::-2] + number[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(summed.encode()) - 48 * len(summed)) % 10 == 0


def check_credit_card(value: str) -> float | None:
    number = digits(value)
    if not 13 <= len(number) <= 19 or not _consistent_separators(value):
        return None
    if len(set(number)) == 1 or not card_issuer_ok(number) or not luhn_valid(number):
        return None
    return 0.85 if number != value else 0.75


def ssn_valid(number: str) -> bool:
    """``stdnum.us.ssn.is_valid``; nine ASCII digits are checked here with its rules
    (area not 000, 666 or 9xx, group not 00, serial not 0000, not on its blacklist)."""
    if len(number) != 9 or _ASCII_DIGITS.fullmatch(number) is None:
        return stdnum_ssn.is_valid(number)
    area, group, serial = number[:3], number[3:5], number[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}-{group}-{serial}" not in stdnum_ssn._ssn_blacklist


_SSN_PLACEHOLDERS = frozenset({"123456789", "078051120", "219099999", "457555462"})


def check_us_ssn(value: str) -> float | None:
    number = digits(value)
    if len(number) != 9 or number in _SSN_PLACEHOLDERS or len(set(number)) == 1:
        return None
    if not _consistent_separators(value) or not ssn_valid(number):
        return None
    if "-" in value:
        return 0.6
    return 0.5 if " " in value else 0.3  # bare nine digits need context


_IBAN_COMPACT = str.maketrans({" ": None, "-": None, ".": None, "`": "'"})


@functools.lru_cache(maxsize=256)
def _iban_structure(country: str) -> re.Pattern[str] | None:
    """The BBAN pattern python-stdnum's registry gives a country code, or None."""
    info = stdnum_iban._ibandb.info(country)
    if not info or not info[0][1]:
        return None
    return stdnum_iban._struct_to_re(info[0][1].get("bban", ""))


_BASE36_DIGITS = str.maketrans({c: str(int(c, 36)) for c in _ASCII_ALNUM})


def _mod_97_10_validate(number: str) -> None:
    """``stdnum.iso7064.mod_97_10.validate``; ASCII letters and digits are turned into
    base-10 digits with one table instead of a conversion per character."""
    if not (number.isascii() and number.isalnum()):
        mod_97_10.validate(number)
        return
    if int(number.translate(_BASE36_DIGITS)) % 97 != 1:
        raise InvalidChecksum()


def _iban_validate(value: str) -> None:
    """``stdnum.iban.validate`` with its registry look-up and BBAN pattern cached per
    country (the look-up walks the whole registry on every call): the same checks in
    the same order, raising the same errors."""
    if value.isascii():  # stdnum's clean() maps only "`" among ASCII characters
        number = value.translate(_IBAN_COMPACT).strip().upper()
    else:
        number = stdnum_iban.compact(value)
    _mod_97_10_validate(number[4:] + number[:4])
    structure = _iban_structure(number[:2]) if len(number) >= 2 else None
    if structure is None:
        stdnum_iban.validate(value)  # the library's own answer for what is left
        return
    if not structure.match(number[4:]):
        raise InvalidFormat()
    module = stdnum_iban._get_cc_module(number[:2])
    if module:
        module.validate(number)


def check_iban(value: str) -> float | None:
    if not _consistent_separators(value):
        return None
    try:
        _iban_validate(value)
    except ValidationError:
        # ISO 13616 itself is the country's length and format plus the mod-97 check
        # digits; some national check digits python-stdnum adds on top reject
        # published examples (the IBAN registry's Belgian one), so a value that passes
        # the ISO checks alone still counts, a little less surely.
        try:
            stdnum_iban.validate(value, check_country=False)
        except ValidationError:
            return None
        return 0.8
    return 0.9


DEFAULT_PHONE_REGIONS = ("US",)
_DATE_SHAPES = re.compile(
    r"(?:(?P<d1>\d{1,2})[./\- ](?P<m1>\d{1,2})[./\- ](?P<y1>(?:19|20)\d\d)"
    r"|(?P<y2>(?:19|20)\d\d)[./\- ](?P<m2>\d{1,2})[./\- ](?P<d2>\d{1,2})"
    r"|(?P<m3>\d{1,2})[./\- ](?P<d3>\d{1,2})[./\- ](?P<y3>(?:19|20)\d\d))")


def _looks_like_date(value: str) -> bool:
    """``12.03.2024``, ``2024-03-12``, ``03/12/2024``: a day, a month and a year."""
    m = _DATE_SHAPES.fullmatch(value)
    if m is None:
        return False
    for day, month in (("d1", "m1"), ("d2", "m2"), ("d3", "m3")):
        if m.group(day) is not None:
            d, mo = int(m.group(day)), int(m.group(month))
            if 1 <= d <= 31 and 1 <= mo <= 12:
                return True
            if 1 <= mo <= 31 and 1 <= d <= 12:
                return True
    return False


_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")  # a US social security number's layout


def _card_fragment(value: str) -> bool:
    """Groups of four digits not starting with a trunk 0 (``4111 1111 1111``)."""
    groups = re.split(r"[ .\-]", value)
    return len(groups) >= 3 and all(len(g) == 4 for g in groups) and not value.startswith("0")


@functools.lru_cache(maxsize=256)
def _trunk_prefix(region: str) -> str:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    prefix = metadata.national_prefix if metadata is not None else None
    # NANP's "1" is optional in national dialling; most other plans require theirs.
    return "" if not prefix or (metadata is not None and metadata.country_code == 1) else prefix


def region_prefix(parsed: phonenumbers.PhoneNumber) -> str:
    region = phonenumbers.region_code_for_number(parsed)
    return _trunk_prefix(region) if region else ""


def _dialled_nationally(value: str, region: str) -> bool:
    """A number without a country code is in ``region``'s national format only if it
    starts with the region's trunk prefix (0 in the UK, Germany, France): nine digits
    without it are an identifier in those plans, not a number to dial."""
    prefix = _trunk_prefix(region)
    return not prefix or value.lstrip("(").startswith(prefix)


_PHONE_LAYOUT = re.compile(
    r"(?:\+\d{1,3}[ .\-]?(?:\(0\)[ .\-]?)?|\(?0)\d{1,4}\)?[ .\-/]\d{2,8}(?:[ .\-]\d{2,8}){0,3}"
    r"|\+\d{1,3}\s?(?:\(0\)\s?)?\d{6,12}")


def _phone_layout(value: str) -> bool:
    return _PHONE_LAYOUT.fullmatch(value) is not None


_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
               "uan", "voicemail", "fixed_line")
"""The number types libphonenumber's ``_number_type_helper`` tries, in its order; a
mobile number counts too unless the plan says mobile and fixed-line look the same."""


def _desc_admits(desc: phonenumbers.PhoneNumberDesc | None, length: int) -> str | None:
    """The national-number pattern of ``desc`` if a number of ``length`` digits can
    match it (libphonenumber's ``_is_number_matching_desc``: the pattern must be set,
    and the length among the possible lengths when those are given)."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return desc.national_number_pattern


class _NumberPlan:
    """One region's numbering plan, compiled: whether a national significant number is
    of a known type, as ``_number_type_helper(nsn, metadata) != UNKNOWN`` decides,
    with one full match per length instead of up to eleven."""

    __slots__ = ("_by_length", "_metadata")

    def __init__(self, metadata: phonenumbers.PhoneMetadata) -> None:
        self._metadata = metadata
        self._by_length: dict[int, tuple[re.Pattern[str], re.Pattern[str]] | None] = {}

    def _compiled(self, length: int) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
        metadata = self._metadata
        general = _desc_admits(metadata.general_desc, length)
        names = _TYPE_DESCS if metadata.same_mobile_and_fixed_line_pattern \
            else (*_TYPE_DESCS, "mobile")
        typed = [p for p in (_desc_admits(getattr(metadata, n), length) for n in names) if p]
        if general is None or not typed:
            return None
        return re.compile(general), re.compile("|".join(f"(?:{p})" for p in typed))

    def valid(self, nsn: str) -> bool:
        length = len(nsn)
        try:
            compiled = self._by_length[length]
        except KeyError:
            compiled = self._by_length[length] = self._compiled(length)
        return compiled is not None and compiled[0].fullmatch(nsn) is not None \
            and compiled[1].fullmatch(nsn) is not None


@functools.lru_cache(maxsize=512)
def _calling_code_plans(
    country_code: int,
) -> tuple[tuple[str, re.Pattern[str] | None, _NumberPlan | None, _NumberPlan | None], ...]:
    """For each region of a calling code, in libphonenumber's order: its code, its
    leading-digits pattern, its plan as ``region_code_for_number`` reads it, and its
    plan as ``is_valid_number_for_region`` reads it (None when that call says no)."""
    plans = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        found = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        leading = re.compile(found.leading_digits) \
            if found is not None and found.leading_digits is not None else None
        own = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
            country_code, region.upper())
        if own is not None and region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY and (
                found is None or found.country_code != country_code):
            own = None
        plan = _NumberPlan(found) if found is not None else None
        plans.append((region, leading, plan,
                      None if own is None else plan if own is found else _NumberPlan(own)))
    return tuple(plans)


def valid_number(country_code: int, nsn: str) -> bool:
    """``phonenumbers.is_valid_number`` of the number with this calling code and national
    significant number (``phonenumbers.national_significant_number``), from plans
    compiled once per region (``tests/dlp`` compares both on generated numbers): the
    region ``region_code_for_number`` picks, then that region's plan."""
    plans = _calling_code_plans(country_code)
    if len(plans) == 1:
        own = plans[0][3]
        return own is not None and own.valid(nsn)
    for _, leading, plan, own in plans:
        if plan is None:
            continue
        if leading is not None:
            if leading.match(nsn):
                return own is not None and own.valid(nsn)
        elif plan.valid(nsn):  # picked for being valid by the plan it is checked by
            return own is not None and (own is plan or own.valid(nsn))
    return False


def _valid(numobj: phonenumbers.PhoneNumber) -> bool:
    return valid_number(numobj.country_code or 0,  # parse always sets it
                        phonenumbers.national_significant_number(numobj))


_SIMPLE_INTERNATIONAL = re.compile(r"\+[0-9]+(?:[ .\-][0-9]+)*")
"""'+', then ASCII digits in groups split by one space, dot or dash: a number
``phonenumbers.parse`` reads as the plus sign, the calling code and the national
number, with no extension, letters or parentheses to interpret."""


def _parse_simple_international(value: str) -> tuple[int, str] | None:
    """``phonenumbers.parse(value)``'s calling code and national significant number for a
    value of :data:`_SIMPLE_INTERNATIONAL` shape, or None for what this does not
    follow (an unknown calling code, a national number with a leading zero or of
    an impossible length): the caller then asks the library."""
    number = value[1:].translate(_NO_SEPARATORS)
    if len(number) <= 2 or number[0] == "0" or _STRIP_PREFIX is None or _TEST_LENGTH is None:
        return None
    for size in (1, 2, 3):
        country_code = int(number[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = number[size:]
    if len(national) < 2:
        return None
    found = _parsing_metadata(country_code)
    if found is None:
        return None
    metadata, prefix = found
    if prefix is not None and prefix.match(national):  # else the library keeps it as is
        _, stripped, _ = _STRIP_PREFIX(national, metadata)
        if _TEST_LENGTH(stripped, metadata) not in _SHORT_OR_INVALID:
            national = stripped
    if not 2 <= len(national) <= 17 or national[0] == "0":
        return None
    return country_code, national


@functools.lru_cache(maxsize=512)
def _parsing_metadata(
    country_code: int,
) -> tuple[phonenumbers.PhoneMetadata, re.Pattern[str] | None] | None:
    """The metadata ``phonenumbers.parse`` reads a number with this calling code by, and
    its national prefix for parsing, compiled (None when it has none)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code))
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    return metadata, re.compile(prefix) if prefix else None


_NO_SEPARATORS = str.maketrans("", "", " .-")
# libphonenumber's own steps for a national prefix, private to it: with a release that
# lacks them every number goes through phonenumbers.parse instead (same answers, slower)
_STRIP_PREFIX = getattr(_pnu, "_maybe_strip_national_prefix_carrier_code", None)
_TEST_LENGTH = getattr(_pnu, "_test_number_length", None)
_SHORT_OR_INVALID = (_pnu.ValidationResult.TOO_SHORT, _pnu.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
                     _pnu.ValidationResult.INVALID_LENGTH)


def _fictional(country_code: int, national: str) -> bool:
    """NANP's fictional range 555-0100 to 555-0199."""
    return country_code == 1 and national[3:6] == "555" and national[6:8] == "01"


def check_phone(value: str, region: str = "US") -> float | None:
    return check_phone_in(value, (region,))


def check_phone_in(value: str, regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS) -> float | None:
    """A phone number valid in its own country (``+44 ...``) or, written in national
    format, in one of ``regions`` (tried in order); dates and card-number fragments are
    not phone numbers whatever the numbering plans say."""
    number = digits(value)
    if not 7 <= len(number) <= 15 or len(set(number)) <= 2:
        return None
    if not value.startswith("+") and (_looks_like_date(value) or _card_fragment(value)
                                      or _SSN_SHAPE.fullmatch(value)):
        return None
    if _SIMPLE_INTERNATIONAL.fullmatch(value):
        simple = _parse_simple_international(value)
        if simple is not None and valid_number(*simple):
            return None if _fictional(*simple) else 0.7
    parsed = None
    possible = None
    for region in ((None,) if value.startswith("+") else regions):
        if region is not None and not _dialled_nationally(value, region):
            continue
        try:
            candidate = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if _valid(candidate):
            parsed = candidate
            break
        if possible is None and phonenumbers.is_possible_number(candidate):
            possible = candidate
    if parsed is None:
        # A number of a plausible length for its plan, laid out as people write phone
        # numbers (a trunk prefix or country code, and separators or an area code in
        # parentheses), is a phone even when its range is not allocated (Ofcom's drama
        # ranges such as 0115 496 0xxx, numbers not yet in libphonenumber's data).
        if possible is None or not _phone_layout(value):
            return None
        return 0.5
    if _fictional(parsed.country_code or 0, str(parsed.national_number)):
        return None
    if value.startswith("+"):
        return 0.7
    if number == value and region_prefix(parsed) and value.startswith(region_prefix(parsed)):
        return 0.5  # "03069990824": a trunk prefix and a valid national number
    return 0.6 if number != value else 0.3  # bare digit runs need context


def _phone_ceiling(value: str) -> float:
    return 0.7 if value.startswith("+") else 0.6


def score_bound(check: Callable[..., float | None]) -> Callable[[str], float] | None:
    """The most ``check`` can score a value (a cheap function of the value), for checks
    costly enough to be worth running lazily (:meth:`secops.dlp.engine.Classifier`
    resolves candidates in score order and skips a check whose candidate has already
    lost); ``None`` for the others. Phone numbers: 0.7 with a country code, else 0.6
    (the scores ``check_phone_in`` returns)."""
    func = getattr(check, "func", check)  # a policy's functools.partial with its regions
    if func is check_phone_in or check is check_phone_gb:
        return _phone_ceiling
    return None


def check_phone_gb(value: str) -> float | None:
    return check_phone(value, "GB")


_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


_DOC_V4_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")


_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4_VALID = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
"""Four octets ``ipaddress`` accepts: ASCII digits, no leading zero, at most 255."""


def _ipv4_fast(value: str) -> float | None | bool:
    """``check_ip`` for dotted quads of ASCII digits, as ``ipaddress`` parses them (no
    leading zeros, octets up to 255); ``False`` when the value is not of that shape."""
    if _IPV4_VALID.fullmatch(value) is not None:  # the loop below would accept each part
        unspecified = value == "0.0.0.0"  # noqa: S104  # nosec B104 - compared, nothing bound
        if unspecified or value.startswith(_DOC_V4_PREFIXES) or value.count("255") == 4:
            return None  # unspecified, RFC 5737 documentation, broadcast-like
        return 0.6
    parts = value.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not 0 < len(part) <= 3 or _ASCII_DIGITS.fullmatch(part) is None:
            return False
        if (len(part) > 1 and part[0] == "0") or int(part) > 255:
            return None
    if parts == ["0"] * 4 or value.startswith(_DOC_V4_PREFIXES):  # unspecified, RFC 5737
        return None
    if value.count("255") == 4:
        return None
    return 0.6


def check_ip(value: str) -> float | None:
    if _IPV4_VALID.fullmatch(value) is not None:  # _ipv4_fast's first case, inline
        unspecified = value == "0.0.0.0"  # noqa: S104  # nosec B104 - compared, nothing bound
        if unspecified or value.startswith(_DOC_V4_PREFIXES) or value.count("255") == 4:
            return None  # unspecified, RFC 5737 documentation, broadcast-like
        return 0.6
    fast = _ipv4_fast(value)
    if fast is not False:
        return fast  # type: ignore[return-value]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    if addr.is_unspecified or any(addr in net for net in _DOC_NETS):
        return None
    if addr.version == 4 and value.count("255") == 4:
        return None
    groups = [g for g in value.split(":") if g]
    if addr.version == 6 and value != "::1" and (
        len(groups) < 2 or (len(groups) < 4 and not any(c.isdigit() for c in value))
    ):
        return None  # "a::b"-like fragments of code
    return 0.6


_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def check_uk_nino(value: str) -> float | None:
    compact = value.replace(" ", "").upper()
    if compact[:2] in _NINO_BAD_PREFIX or not _consistent_separators(value):
        return None
    return 0.7 if " " in value else 0.6


def check_us_npi(value: str) -> float | None:
    number = digits(value)
    if len(number) != 10 or len(set(number)) == 1 or not luhn.is_valid("80840" + number):
        return None
    return 0.45  # ten digits collide with phone numbers and timestamps: needs context


def check_us_mbi(value: str) -> float | None:
    if not _consistent_separators(value):
        return None
    return 0.55 if "-" in value else 0.5


def check_aws_key_id(value: str) -> float | None:
    return None if is_marked_placeholder(value) else 0.9


def check_aws_secret(value: str) -> float | None:
    if is_marked_placeholder(value):
        return None
    has_upper = any(c.isupper() for c in value)
    has_lower = any(c.islower() for c in value)
    has_digit = any(c.isdigit() for c in value)
    if not (has_upper and has_lower and has_digit):
        return None  # hex digests, git SHAs and words are not secret keys
    return 0.45  # only reported near a keyword


_TOKEN_PREFIX = re.compile(r"^(?:[a-z]+_(?:live_|test_|pat_)?|xox[a-z]-|xapp-|AIza)")


def check_token(value: str) -> float | None:
    """Prefixed vendor tokens: the prefix is the evidence; reject marked examples."""
    if is_marked_placeholder(value):
        return None
    body = _TOKEN_PREFIX.sub("", value)
    if len(set(body) - set("_-")) < 6:
        return None  # ghp_aaaa..., xoxb-0000-...
    return 0.9


def check_private_key(value: str) -> float | None:
    body = value.split("-----")[2] if value.count("-----") >= 4 else ""
    body = re.sub(r"^[A-Za-z-]+:.*$", "", body, flags=re.M)  # Proc-Type/DEK-Info headers
    if len(re.sub(r"[^A-Za-z0-9+/=]", "", body)) < 64:
        return None  # "-----BEGIN PRIVATE KEY-----\n...\n-----END ..." in docs
    return 0.95


def _b64url_json(segment: str) -> object:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def check_jwt(value: str) -> float | None:
    head = value.split(".", 1)[0]
    try:
        header = _b64url_json(head)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or "alg" not in header:
        return None
    return 0.85


_PASSWORD_PLACEHOLDERS = frozenset(
    {"password", "pass", "passwd", "pwd", "pw", "secret", "mypassword", "yourpassword",
     "changeme", "user", "username", "example", "placeholder", "xxx", "***", "redacted"}
)


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


# A password slot filled by a template or an example, not a password: ${DB_PASS},
# $DB_PASS, {{ pass }}, <password>, %(password)s, and the words of _MARKERS. RFC 3986
# allows "$" in a password, so a "$" alone marks nothing.
_URL_PASSWORD_MARKERS = re.compile(
    r"example|xxxx|your[_-]?|dummy|placeholder|redacted|^\$\{|^\$[A-Z_][A-Z0-9_]*$|\{\{"
    r"|^<.*>$|^%\(", re.I)


def check_url_password(value: str) -> float | None:
    value = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), value)
    if value.lower() in _PASSWORD_PLACEHOLDERS or _URL_PASSWORD_MARKERS.search(value):
        return None
    if set(value) <= {"*", "x", "X", "."} or value.startswith("%("):
        return None
    return 0.8


_EMAIL_PLACEHOLDER_LOCALS = frozenset(
    {"user", "username", "name", "email", "mail", "someone", "somebody", "you", "me",
     "yourname", "your.name", "your_name", "youremail", "your.email", "first.last",
     "firstname.lastname", "foo", "bar", "foo.bar", "test", "example", "address"}
)
_RESERVED_SUFFIXES = (".example", ".test", ".invalid", ".localhost")
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})


_MACHINE_LOCAL = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9a-fA-F.$-]*[0-9])[0-9a-fA-F.$-]{16,}")


_MACHINE_FIRST = frozenset("0123456789abcdefABCDEF.$-")
_ASSET_SUFFIXES = frozenset({"png", "jpg", "gif", "svg", "webp", "js", "css"})


def check_email(value: str) -> float | None:
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    reserved = domain in _RESERVED_DOMAINS or domain.endswith(_RESERVED_SUFFIXES)
    if reserved and (local.lower() in _EMAIL_PLACEHOLDER_LOCALS or is_marked_placeholder(local)):
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    if domain[domain.rfind(".") + 1:] in _ASSET_SUFFIXES:
        return None  # retina asset names like logo@2x.png
    # every match of _MACHINE_LOCAL is 16 characters or more, starting with one of them
    if len(local) >= 16 and local[0] in _MACHINE_FIRST and _MACHINE_LOCAL.fullmatch(local):
        return None  # Message-IDs and other identifiers: <uuid@host>, <hex.hex@host>
    return 0.8


def validator_bool(check: Check) -> Callable[[str], bool]:
    return lambda value: check(value) is not None


NAMED_VALIDATORS: dict[str, Callable[[str], bool]] = {
    "luhn": lambda v: luhn.is_valid(digits(v)) if digits(v) else False,
    "iban": validator_bool(check_iban),
    "us_ssn": validator_bool(check_us_ssn),
    "credit_card": validator_bool(check_credit_card),
    "phone_number": validator_bool(check_phone),
    "ip_address": validator_bool(check_ip),
    "jwt": validator_bool(check_jwt),
    "not_placeholder": lambda v: not is_marked_placeholder(v),
}
"""Validators a policy's custom detector may name."""
