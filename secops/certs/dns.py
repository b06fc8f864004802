"""DNS-01 providers: how a TXT record ``_acme-challenge.<domain>`` is published and removed.

A provider is a :class:`DnsProvider` subclass registered under the ``secops.dns_providers``
entry-point group, its entry-point name being its slug. A distribution publishes one with::

    [project.entry-points."secops.dns_providers"]
    mydns = "mydns_secops:MyDnsProvider"

A deployment (or the ACME configuration as a whole) names a provider and gives it
*settings*: plain JSON values, checked against :attr:`DnsProvider.settings_schema`.
Secrets never travel in settings: a provider lists the names it needs in
:attr:`DnsProvider.secrets`, and the platform reads each through the secret reader as
``certs_dns_<slug>_<name>`` (``/run/secrets/certs_dns_<slug>_<name>``,
``SECOPS_CERTS_DNS_<SLUG>_<NAME>_FILE`` or ``SECOPS_CERTS_DNS_<SLUG>_<NAME>``) and hands
them to the constructor. The built-in ``hook`` provider runs a command
(``argv + ["add"|"remove", "_acme-challenge.<domain>", <value>]``, no shell).

A provider raises any exception to fail a challenge; :class:`DnsSolver` turns it into
an :class:`~secops.certs.acme_issuer.AcmeError` naming the provider, with the values of
its secrets masked.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar

from secops.certs.model import CertsError

ENTRY_POINT_GROUP = "secops.dns_providers"
_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class DnsProvider:
    """Base of DNS-01 providers: a slug, validated settings, secrets by name."""

    slug: ClassVar[str] = ""
    #: setting name -> accepted JSON type(s)
    settings_schema: ClassVar[Mapping[str, type | tuple[type, ...]]] = {}
    required: ClassVar[tuple[str, ...]] = ()
    #: names of the secrets the provider needs, read as certs_dns_<slug>_<name>
    secrets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> None:
        self.settings = dict(settings)
        self.secret_values = dict(secrets)

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings, checked: known names of the right type, the required ones present."""
        if not isinstance(settings, Mapping):
            raise CertsError("DNS provider settings must be a JSON object")
        for name, value in settings.items():
            if name in cls.secrets:
                raise CertsError(f"{name} is a secret of the DNS provider {cls.slug}: provide it as "
                                 f"{secret_sources(secret_name(cls.slug, name))}, not in its settings")
            expected = cls.settings_schema.get(name)
            if expected is None:
                known = ", ".join(sorted(cls.settings_schema)) or "none"
                raise CertsError(f"the DNS provider {cls.slug} has no setting {name!r} (known: {known})")
            if isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple)
                                                        else (expected,)):
                raise CertsError(f"the DNS provider setting {name} has the wrong type")
            if not isinstance(value, expected):
                raise CertsError(f"the DNS provider setting {name} has the wrong type")
        missing = [name for name in cls.required if name not in settings]
        if missing:
            raise CertsError(f"the DNS provider {cls.slug} needs the setting(s) {', '.join(missing)}")
        return dict(settings)

    def add_txt(self, name: str, value: str) -> None:
        raise NotImplementedError

    def remove_txt(self, name: str, value: str) -> None:
        raise NotImplementedError


class HookProvider(DnsProvider):
    """Runs ``argv + ["add"|"remove", name, value]`` (no shell); a non-zero exit fails."""

    slug = "hook"
    settings_schema: ClassVar[Mapping[str, type | tuple[type, ...]]] = {"argv": list,
                                                                         "timeout": (int, float)}
    required = ("argv",)

    @classmethod
    def validate(cls, settings: Mapping[str, Any]) -> dict[str, Any]:
        checked = super().validate(settings)
        argv = checked["argv"]
        if not argv or not all(isinstance(word, str) and word for word in argv):
            raise CertsError("the hook provider's argv must be a non-empty list of strings")
        if not 0 < float(checked.get("timeout", 120)) <= 3600:
            raise CertsError("the hook provider's timeout must be between 0 and 3600 seconds")
        return checked

    def _run(self, action: str, name: str, value: str) -> None:
        argv = [*self.settings["argv"], action, name, value]
        try:
            done = subprocess.run(argv, capture_output=True, check=False,  # noqa: S603 - argv, no shell
                                  timeout=float(self.settings.get("timeout", 120)))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CertsError(f"the DNS-01 hook could not run ({type(exc).__name__})") from None
        if done.returncode != 0:
            raise CertsError(f"the DNS-01 hook exited with status {done.returncode} on {action}")

    def add_txt(self, name: str, value: str) -> None:
        self._run("add", name, value)

    def remove_txt(self, name: str, value: str) -> None:
        self._run("remove", name, value)


BUILT_IN: dict[str, type[DnsProvider]] = {"hook": HookProvider}


def secret_name(slug: str, name: str) -> str:
    return f"certs_dns_{slug}_{name}".replace("-", "_").lower()


def secret_sources(name: str) -> str:
    return f"/run/secrets/{name}, SECOPS_{name.upper()}_FILE or SECOPS_{name.upper()}"


def available() -> list[str]:
    """Slugs of the installed providers (entry points and built-ins)."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} | set(BUILT_IN))


def provider_class(slug: str) -> type[DnsProvider]:
    """The provider registered as ``slug``; a :class:`CertsError` naming the installed
    ones when there is none or it does not load."""
    if not _SLUG.match(slug or ""):
        raise CertsError("a DNS provider name is lower-case letters, digits, '-' and '_'")
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == slug]
    if not found:
        if slug in BUILT_IN:
            return BUILT_IN[slug]
        raise CertsError(f"no DNS provider named {slug!r} is installed (entry-point group "
                         f"{ENTRY_POINT_GROUP}; installed: {', '.join(available())})")
    try:
        loaded = found[0].load()
    except Exception as exc:  # noqa: BLE001 - a plugin's import can fail in any way
        raise CertsError(f"the DNS provider {slug!r} does not load ({type(exc).__name__})") from None
    if not (isinstance(loaded, type) and issubclass(loaded, DnsProvider)):
        raise CertsError(f"the DNS provider {slug!r} is not a secops.certs.dns.DnsProvider")
    return loaded


def build(slug: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> DnsProvider:
    cls = provider_class(slug)
    return cls(cls.validate(settings), secrets)


class DnsSolver:
    """A provider as an ACME DNS-01 solver (``present``/``cleanup``)."""

    kind = "dns-01"

    def __init__(self, provider: DnsProvider) -> None:
        self.provider = provider

    def _call(self, action: str, domain: str, value: str) -> None:
        name = f"_acme-challenge.{domain}"
        try:
            if action == "add":
                self.provider.add_txt(name, value)
            else:
                self.provider.remove_txt(name, value)
        except CertsError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin fails in its own ways
            message = str(exc)
            for secret in self.provider.secret_values.values():
                if secret:
                    message = message.replace(secret, "***")
            raise CertsError(f"the DNS provider {self.provider.slug} failed to {action} {name}: "
                             f"{type(exc).__name__}: {message[:300]}") from None

    def present(self, domain: str, token_path: str, validation: str) -> None:
        self._call("add", domain, validation)

    def cleanup(self, domain: str, token_path: str, validation: str) -> None:
        self._call("remove", domain, validation)
