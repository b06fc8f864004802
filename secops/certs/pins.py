"""SPKI pinning rules shared by checks, renewal and deployment.

A target's pins are ``pin-sha256`` values (base64 SHA-256 of a SubjectPublicKeyInfo):
usually the current key and at least one backup key kept offline. A served chain
satisfies the pins when any of its certificates' keys is pinned (pinning an issuing CA's
key is allowed, as in HPKP). A new certificate for a pinned target is acceptable only
when its chain satisfies the pins, so a renewal must either keep the key or move to a
key that was pinned as a backup beforehand.
"""

from __future__ import annotations

from collections.abc import Iterable

from secops.certs.model import CertsError


def satisfies(pins: Iterable[str], chain_spki: Iterable[str]) -> bool:
    pinned = set(pins)
    return not pinned or bool(pinned.intersection(chain_spki))


def require_pinned(target: str, pins: Iterable[str], chain_spki: list[str]) -> None:
    """Refuse a certificate for ``target`` whose chain matches none of its pins."""
    if not satisfies(pins, chain_spki):
        raise CertsError(
            f"{target} is pinned and the new certificate's key (pin-sha256 {chain_spki[0]}) "
            "matches none of its pins: keep the current key, or add the new key's pin as a "
            "backup pin and let clients pick it up before rotating")
