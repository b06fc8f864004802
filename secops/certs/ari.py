"""ACME Renewal Information (ARI, RFC 9773): when the CA suggests renewing a certificate.

The certificate's ARI identifier (:func:`cert_id`) is the base64url (no padding) of its
Authority Key Identifier's ``keyIdentifier``, a ``.``, and the base64url of the DER
content octets of its serial number (so a serial with its high bit set gains a leading
zero byte). The client fetches ``<renewalInfo>/<certID>`` and reads a
``suggestedWindow`` (``start`` < ``end``, RFC 3339), an optional ``explanationURL`` and
the ``Retry-After`` header, which says when to ask again (6 hours when absent; held
between one minute and one day). :func:`choose_renewal_time` picks a uniformly random
moment inside the window, or now when the window has already passed. A certificate
without an Authority Key Identifier has no ARI identifier: the caller falls back to
renewing at two thirds of its lifetime.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from cryptography import x509

from secops.certs.model import CertsError

DEFAULT_RETRY = dt.timedelta(hours=6)
MIN_RETRY, MAX_RETRY = dt.timedelta(minutes=1), dt.timedelta(days=1)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def serial_octets(serial: int) -> bytes:
    """The content octets of the DER INTEGER ``serial`` (positive, minimal, two's complement)."""
    if serial < 0:
        raise CertsError("a certificate serial number is positive")
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def cert_id(cert: x509.Certificate) -> str:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise CertsError("the certificate has no Authority Key Identifier: no ARI identifier") from None
    if not aki.key_identifier:
        raise CertsError("the certificate's Authority Key Identifier has no keyIdentifier")
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial_octets(cert.serial_number))}"


@dataclass(frozen=True)
class RenewalInfo:
    start: dt.datetime
    end: dt.datetime
    explanation_url: str | None
    next_check: dt.datetime  # when to ask again (Retry-After)


def _instant(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise CertsError(f"renewalInfo: {what} is not an RFC 3339 time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise CertsError(f"renewalInfo: {what} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise CertsError(f"renewalInfo: {what} has no time zone")
    return parsed.astimezone(dt.UTC)


def retry_after(headers: Mapping[str, str], now: dt.datetime) -> dt.datetime:
    """When to fetch renewalInfo again, from ``Retry-After`` (seconds or an HTTP date)."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    delay = DEFAULT_RETRY
    if raw is not None:
        raw = raw.strip()
        try:
            delay = dt.timedelta(seconds=int(raw)) if raw.isdigit() else \
                parsedate_to_datetime(raw).astimezone(dt.UTC) - now
        except (TypeError, ValueError, OverflowError):
            delay = DEFAULT_RETRY
    return now + min(max(delay, MIN_RETRY), MAX_RETRY)


def parse_renewal_info(body: Any, headers: Mapping[str, str], now: dt.datetime) -> RenewalInfo:
    if not isinstance(body, Mapping) or not isinstance(body.get("suggestedWindow"), Mapping):
        raise CertsError("renewalInfo: no suggestedWindow")
    window = body["suggestedWindow"]
    start, end = _instant(window.get("start"), "start"), _instant(window.get("end"), "end")
    if end <= start:
        raise CertsError("renewalInfo: the suggested window ends before it starts")
    explanation = body.get("explanationURL")
    return RenewalInfo(start, end, explanation if isinstance(explanation, str) else None,
                       retry_after(headers, now))


def choose_renewal_time(info: RenewalInfo, now: dt.datetime, rng: random.Random | None = None) -> dt.datetime:
    """A uniformly random moment in the suggested window; ``now`` when that moment has passed."""
    span = (info.end - info.start).total_seconds()
    chosen = info.start + dt.timedelta(seconds=(rng or random.SystemRandom()).uniform(0, span))
    return max(chosen, now)
