"""A labelled DLP corpus generated in code from fixed seeds.

Positives are valid values (checksums computed here, independently of the engine's
validators where possible) written in many shapes and contexts; hard negatives are the
look-alikes: checksum-invalid cards, SSNs and IBANs, identifiers, digests, versions,
placeholders and documentation values. Every sample is (text, [(type, start, end), ...]).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid

Sample = tuple[str, list[tuple[str, int, int]]]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15),
                                 ("37", 15), ("6011", 16), ("65", 16), ("3530", 16), ("4", 13)])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn_digit(body)
    style = rng.choice(["plain", "space", "dash"])
    if style == "plain":
        return number
    sep = " " if style == "space" else "-"
    if length == 15:
        return sep.join([number[:4], number[4:10], number[10:]])
    return sep.join(number[i : i + 4] for i in range(0, length, 4))


def ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def iban(rng: random.Random) -> str:
    country = rng.choice(["DE", "NL", "GB"])
    upper, digits = string.ascii_uppercase, string.digits
    if country == "DE":
        bban = _rand(rng, 18, digits)
    elif country == "NL":
        bban = _rand(rng, 4, upper) + _rand(rng, 10, digits)
    else:
        bban = _rand(rng, 4, upper) + _rand(rng, 14, digits)
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    value = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    if rng.random() < 0.5:
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def phone(rng: random.Random) -> str:
    area = rng.choice(["212", "415", "617", "312", "206", "303", "512", "646"])
    exch = str(rng.randint(200, 999))
    if exch == "555":
        exch = "556"
    line = f"{rng.randint(0, 9999):04d}"
    return rng.choice([f"({area}) {exch}-{line}", f"{area}-{exch}-{line}", f"{area}.{exch}.{line}",
                       f"+1 {area} {exch} {line}", f"+1-{area}-{exch}-{line}",
                       "+44 20 7946 0" + f"{rng.randint(0, 999):03d}"])


def email(rng: random.Random) -> str:
    first = rng.choice(["jane", "john", "li.wei", "maria", "o.brien", "kofi", "anna-lena"])
    last = rng.choice(["roe", "smith", "garcia", "okafor", "x99", "tanaka"])
    domain = rng.choice(["gmail.com", "acme-corp.io", "mail.example.co.uk", "uni.edu", "web.de"])
    return f"{first}.{last}@{domain}"


def ipv4(rng: random.Random) -> str:
    while True:
        first = rng.choice([10, 172, 81, 8, 100, 151, 45])
        addr = f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if not addr.startswith(("192.0.2.", "198.51.100.", "203.0.113.")):
            return addr


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    groups[0] = rng.choice(["2a00", "fe80", "2607", "2001"])
    if groups[0] == "2001":
        groups[1] = "4860"
    if rng.random() < 0.5:
        return ":".join(groups[:3]) + "::" + groups[7]
    return ":".join(groups)


def nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNPRSTWXY")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        first, second = "A", "B"
    d = "".join(rng.choice(string.digits) for _ in range(6))
    suffix = rng.choice("ABCD")
    if rng.random() < 0.5:
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
    return f"{first}{second}{d}{suffix}"


def npi(rng: random.Random) -> str:
    body = rng.choice("12") + "".join(rng.choice(string.digits) for _ in range(8))
    return body + luhn_digit("80840" + body)


def mbi(rng: random.Random) -> str:
    letters = "ACDEFGHJKMNPQRTUVWXY"
    an = letters + string.digits
    c = [rng.choice("123456789"), rng.choice(letters), rng.choice(an), rng.choice(string.digits),
         rng.choice(letters), rng.choice(an), rng.choice(string.digits), rng.choice(letters),
         rng.choice(letters), rng.choice(string.digits), rng.choice(string.digits)]
    value = "".join(c)
    return f"{value[:4]}-{value[4:7]}-{value[7:]}" if rng.random() < 0.5 else value


def _rand(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def aws_key_id(rng: random.Random) -> str:
    return rng.choice(["AKIA", "ASIA"]) + _rand(rng, 16, string.ascii_uppercase + string.digits)


def aws_secret(rng: random.Random) -> str:
    while True:
        value = _rand(rng, 40, string.ascii_letters + string.digits + "/+")
        if any(c.isdigit() for c in value) and any(c.isupper() for c in value) and \
                any(c.islower() for c in value):
            return value


def github(rng: random.Random) -> str:
    return rng.choice(["ghp_", "gho_", "ghs_"]) + _rand(rng, 36)


def slack(rng: random.Random) -> str:
    return (f"xox{rng.choice('bpa')}-{rng.randint(10**10, 10**12)}-{rng.randint(10**10, 10**12)}-"
            + _rand(rng, 24))


def stripe(rng: random.Random) -> str:
    return rng.choice(["sk_live_", "sk_test_", "rk_live_"]) + _rand(rng, 24)


def google(rng: random.Random) -> str:
    return "AIza" + _rand(rng, 35, string.ascii_letters + string.digits + "_-")


def private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    body = base64.b64encode(rng.randbytes(rng.choice([120, 600, 1190]))).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": str(rng.randint(1, 10**6)), "iat": 1700000000}).encode())
    return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"


def url_password(rng: random.Random) -> tuple[str, str]:
    password = _rand(rng, rng.randint(8, 16)) + rng.choice(["!", "_", "9", "x"])
    scheme = rng.choice(["postgres", "mysql", "https", "redis", "amqp"])
    return f"{scheme}://{rng.choice(['app', 'admin', 'svc'])}:", password


GENERATORS = {
    "credit_card": card, "us_ssn": ssn, "iban": iban, "phone_number": phone, "email": email,
    "uk_nino": nino, "us_npi": npi, "us_mbi": mbi, "aws_access_key_id": aws_key_id,
    "aws_secret_access_key": aws_secret, "github_token": github, "slack_token": slack,
    "stripe_secret_key": stripe, "google_api_key": google, "private_key": private_key,
    "jwt": jwt,
}
CONTEXTS = {
    "us_npi": ["NPI: {}", "Rendering provider NPI {}", "npi={}"],
    "aws_secret_access_key": ["aws_secret_access_key = {}", "AWS_SECRET_ACCESS_KEY={}",
                              '"SecretAccessKey": "{}"'],
}
TEMPLATES = [
    "{}", "Value: {}.", "  {} ", "customer,{},2024-01-02", '{{"field": "{}"}}',
    "<td>{}</td>", "key={}\n", "Please see ({}) for details", "x\t{}\ty",
]


def positives(seed: int = 1234, per_type: int = 40) -> list[Sample]:
    rng = random.Random(seed)
    samples: list[Sample] = []
    for type_, gen in GENERATORS.items():
        for _ in range(per_type):
            value = gen(rng)
            template = rng.choice(CONTEXTS.get(type_, TEMPLATES))
            lead = rng.choice(["", "Some text. ", "line 1\r\n", "ünïcödé — "])
            text = lead + template.format(value)
            start = text.index(value)
            samples.append((text, [(type_, start, start + len(value))]))
    for _ in range(per_type):
        for value in (ipv4(rng), ipv6(rng)):
            text = rng.choice(["client {} connected", "host={}", "from [{}]", "{}"]).format(value)
            start = text.index(value)
            samples.append((text, [("ip_address", start, start + len(value))]))
        prefix, password = url_password(rng)
        text = f"DATABASE_URL={prefix}{password}@db.internal:5432/app"
        start = text.index(password, len("DATABASE_URL=") + len(prefix) - 1)
        samples.append((text, [("password_in_url", start, start + len(password))]))
    # a mixed record: several types in one text, offsets after non-ASCII and CRLF
    for _ in range(per_type // 2):
        parts = [("email", email(rng)), ("us_ssn", ssn(rng)), ("credit_card", card(rng)),
                 ("aws_access_key_id", aws_key_id(rng))]
        text, labels = "Ünïcode header\r\n", []
        for type_, value in parts:
            text += f"{type_}: "
            labels.append((type_, len(text), len(text) + len(value)))
            text += value + "\r\n"
        samples.append((text, labels))
    return samples


def hard_negatives(seed: int = 99, count: int = 30) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(count):
        # Luhn-invalid card-like runs, and Luhn-valid numbers without an issuer prefix
        good = card(rng).replace(" ", "").replace("-", "")
        bad_digit = str((int(good[-1]) + 1) % 10)
        out.append(f"order {good[:-1]}{bad_digit} shipped")
        body = "9" + "".join(rng.choice(string.digits) for _ in range(14))
        out.append(f"ref {body + luhn_digit(body)}")
        body = "1" + "".join(rng.choice(string.digits) for _ in range(14))
        out.append(f"tracking {body + luhn_digit(body)}")
        # invalid SSNs (area 000/666/9xx, group 00, serial 0000) and placeholders
        serial = f"-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
        out.append(rng.choice(["000", "666", "912"]) + serial)
        out.append(f"{rng.randint(100, 665)}-00-{rng.randint(1000, 9999)}")
        out.append(f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-0000")
        # invalid IBAN (checksum off by one)
        value = iban(rng).replace(" ", "")
        out.append(f"IBAN {value[:2]}{(int(value[2:4]) % 97) + 1:02d}{value[4:]}")
        # UUIDs, hex digests, git SHAs, base64 blobs, version strings
        out.append(f"id {uuid.UUID(int=rng.getrandbits(128))}")
        digest = hashlib.sha256(rng.randbytes(16)).hexdigest()
        out.append(f"sha256:{digest} sha1 {hashlib.sha1(rng.randbytes(8)).hexdigest()}")
        out.append(f"commit {hashlib.sha1(rng.randbytes(8)).hexdigest()[:rng.choice([7, 12, 40])]}")
        out.append(f"aws_secret_access_key = {hashlib.sha1(rng.randbytes(8)).hexdigest()}")
        out.append("data:" + base64.b64encode(rng.randbytes(rng.choice([60, 300]))).decode())
        out.append(f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}")
        out.append("v" + ".".join(str(rng.randint(0, 9)) for _ in range(4)))
        out.append(f"build 10.{rng.randint(0, 300)}.{rng.randint(256, 999)}.1")
        epoch = rng.randint(1_600_000_000, 1_800_000_000)
        out.append(f"epoch {epoch} took {rng.randint(1, 99999)} ms")
        day = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        out.append(f"price {rng.randint(1, 9999)}.{rng.randint(10, 99)} on {day}")
    out += [
        "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "user@example.com", "you@example.org", "name@domain.test", "logo@2x.png",
        "123-45-6789", "078-05-1120", "111-11-1111", "call 555-0123 or (212) 555-0142",
        "postgres://user:password@localhost/db", "https://admin:${DB_PASSWORD}@db/x",
        "redis://:<password>@cache:6379", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "xoxb-your-token-here",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxIn0.c2ln", "192.0.2.10 and 2001:db8::1 and 0.0.0.0",
        "MAC 00:1a:2b:3c:4d:5e at 12:30:45", "std::vector<int> a::b", "QQ123456C",
        "time 2024-05-01T12:30:45.123Z", "tel 0000000000", "ISBN 978-3-16-148410-0",
    ]
    return out
