"""Phone-number checks from compiled numbering plans against libphonenumber itself.

``validators.valid_number`` answers ``phonenumbers.is_valid_number`` from per-region
patterns compiled once, and ``check_phone_in`` reads simple international values
(``+CC`` and digit groups) without ``phonenumbers.parse``. The oracle is the library:
its own ``is_valid_number`` and ``check_phone_in`` as written on the library calls alone
(:func:`_reference`), on numbers Faker writes for many countries, the library's example
numbers for every region and type, their neighbours (a digit changed, added or
dropped) and random digit strings, valid and not.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from faker import Faker

from secops.dlp import validators as v

SEED = 28
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "it_IT", "es_ES", "nl_NL", "pt_BR", "ru_RU",
           "ja_JP", "zh_CN", "en_IN", "en_AU", "en_CA", "es_MX", "pl_PL", "sv_SE", "tr_TR",
           "ar_EG", "he_IL", "ko_KR", "de_AT", "de_CH", "da_DK", "fi_FI", "no_NO", "cs_CZ",
           "hu_HU", "el_GR", "ro_RO", "uk_UA", "id_ID", "th_TH", "vi_VN", "en_NZ", "ka_GE",
           "es_AR", "es_CO", "es_CL", "fr_CH", "en_IE", "pt_PT", "zh_TW", "fa_IR", "bg_BG")
TYPES = tuple(t for t in vars(phonenumbers.PhoneNumberType).values() if isinstance(t, int))
SEPARATORS = (" ", "-", ".")


def _reference(value: str, regions: tuple[str, ...]) -> float | None:
    """``check_phone_in`` on the library's calls alone: parse, is_valid_number,
    is_possible_number, region_code_for_number."""
    number = v.digits(value)
    if not 7 <= len(number) <= 15 or len(set(number)) <= 2:
        return None
    if not value.startswith("+") and (v._looks_like_date(value) or v._card_fragment(value)
                                      or v._SSN_SHAPE.fullmatch(value)):
        return None
    parsed = possible = None
    for region in ((None,) if value.startswith("+") else regions):
        if region is not None and not v._dialled_nationally(value, region):
            continue
        try:
            candidate = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(candidate):
            parsed = candidate
            break
        if possible is None and phonenumbers.is_possible_number(candidate):
            possible = candidate
    if parsed is None:
        return None if possible is None or not v._phone_layout(value) else 0.5
    national = str(parsed.national_number)
    if parsed.country_code == 1 and national[3:6] == "555" and national[6:8] == "01":
        return None
    if value.startswith("+"):
        return 0.7
    prefix = v.region_prefix(parsed)
    if number == value and prefix and value.startswith(prefix):
        return 0.5
    return 0.6 if number != value else 0.3


def _neighbours(rng: random.Random, digits: str) -> list[str]:
    i = rng.randrange(len(digits))
    changed = digits[:i] + str((int(digits[i]) + rng.randint(1, 9)) % 10) + digits[i + 1:]
    return [digits, changed, digits + str(rng.randint(0, 9)), digits[:-1]]


def _numbers() -> list[phonenumbers.PhoneNumber]:
    """Example numbers of every region and type, their neighbours, Faker's numbers and
    random national numbers for every calling code."""
    rng = random.Random(SEED)
    found: list[phonenumbers.PhoneNumber] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            nsn = phonenumbers.national_significant_number(example)
            for other in _neighbours(rng, nsn):
                found.append(phonenumbers.PhoneNumber(country_code=example.country_code,
                                                      national_number=int(other or "0")))
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(12):
            nsn = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789",
                                                               k=rng.randint(1, 14)))
            found.append(phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn)))
    for value in _faker_values():
        try:
            found.append(phonenumbers.parse(value, "US"))
        except phonenumbers.NumberParseException:
            pass
    found.append(phonenumbers.PhoneNumber(country_code=999, national_number=1234567))
    found.append(phonenumbers.parse("+39 06 6988 0000", None))  # Italian leading zero
    return found


def _faker_values() -> list[str]:
    values = []
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(SEED)
        values += [fake.phone_number() for _ in range(40)]
    return values


def test_compiled_plans_agree_with_is_valid_number() -> None:
    numbers = _numbers()
    answers = [phonenumbers.is_valid_number(n) for n in numbers]
    for number, expected in zip(numbers, answers, strict=True):
        nsn = phonenumbers.national_significant_number(number)
        assert v.valid_number(number.country_code, nsn) == expected, number
    assert 2000 < sum(answers) < len(answers) - 2000  # both answers well exercised


def _written(rng: random.Random, number: phonenumbers.PhoneNumber) -> list[str]:
    """Ways people write a number: international and E.164 (with each separator),
    national, and random regroupings of its digits after the calling code."""
    out = []
    for style in (phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                  phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.NATIONAL):
        text = phonenumbers.format_number(number, style)
        out += [text, text.replace(" ", rng.choice(SEPARATORS))]
    nsn = phonenumbers.national_significant_number(number)
    cuts = sorted(rng.sample(range(1, len(nsn)), k=min(len(nsn) - 1, rng.randint(0, 3))))
    groups = [nsn[a:b] for a, b in zip([0, *cuts], [*cuts, len(nsn)], strict=True)]
    sep = rng.choice(SEPARATORS)
    out.append(f"+{number.country_code}{rng.choice(('', *SEPARATORS))}{sep.join(groups)}")
    return out


def _values() -> list[str]:
    rng = random.Random(SEED)
    values = []
    for number in _numbers():
        values += _written(rng, number)
    values += _faker_values()
    for _ in range(3000):  # random plus-led digit groups, most of them no number at all
        groups = ["".join(rng.choices("0123456789", k=rng.randint(1, 5)))
                  for _ in range(rng.randint(1, 5))]
        values.append("+" + rng.choice(SEPARATORS).join(groups))
    values += ["+1 415-555-2671", "+1 415-555-0123", "+1 415 555 0199", "+44 20 7946 0018",
               "+800 1234 5678", "+0 123 4567", "+39 06 6988 0000", "+7 800 555-35-35",
               "+54 9 11 1234-5678", "+52 1 55 1234 5678", "+49 (0)30 1234567",
               "+1 415-555-2671 ext 12", "+44 7700 900123", "+1 (415) 555-2671",
               "+12345678901234567", "+1234", "+999 123 4567", "+262 269 12 34 56"]
    return values


@pytest.mark.parametrize("regions", [("US",), ("US", "GB", "DE", "FR")])
def test_check_phone_in_agrees_with_the_library(regions: tuple[str, ...]) -> None:
    values = _values()
    scores = {}
    for value in values:
        scores[value] = expected = _reference(value, regions)
        assert v.check_phone_in(value, regions) == expected, value
    simple = [x for x in values if v._SIMPLE_INTERNATIONAL.fullmatch(x)]
    assert len(simple) > 5000  # the shape read without phonenumbers.parse is well covered
    assert sum(scores[x] == 0.7 for x in simple) > 2000
    assert sum(scores[x] is None for x in simple) > 1000
    assert {scores[x] for x in values} >= {None, 0.3, 0.5, 0.6, 0.7}


def test_without_the_librarys_private_prefix_steps_every_value_asks_the_library(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The short path leans on two private functions of phonenumbers; a release without
    them must give the same answers through phonenumbers.parse, not fail."""
    values = _values()[:4000]
    monkeypatch.setattr(v, "_STRIP_PREFIX", None)
    assert v._parse_simple_international("+44 20 7946 0018") is None
    regions = ("US", "GB", "DE", "FR")
    assert [v.check_phone_in(x, regions) for x in values] == [
        _reference(x, regions) for x in values]
