"""Certificates from an ACME server (RFC 8555) with the ``acme`` and ``josepy`` packages.

:class:`AcmeIssuer` registers (or finds) the account of an account key, places orders,
resumes an order from its URL (so a retried job finalises the order it already placed
instead of ordering again), answers HTTP-01 or DNS-01 challenges through a
:class:`Solver`, finalises and returns the full chain. :meth:`AcmeIssuer.renewal_info`
asks the server's ARI resource (RFC 9773, :mod:`secops.certs.ari`) when the directory
offers ``renewalInfo``.
A ``rateLimited`` answer becomes :class:`AcmeRateLimited` with the time its
``Retry-After`` names.

Solvers: :class:`Http01Responder` (a built-in HTTP server on a configurable address,
serving ``/.well-known/acme-challenge/`` only while an order is answered),
:class:`Webroot` (files under a web server's document root) and
:class:`secops.certs.dns.DnsSolver` (a DNS provider plugin from the
``secops.dns_providers`` entry-point group; the built-in ``hook`` provider runs a
command).
"""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from secops.certs import ari
from secops.certs.model import CertsError

log = logging.getLogger("secops.certs")

ACME_PATH = "/.well-known/acme-challenge/"


class AcmeError(CertsError):
    """The ACME server refused or failed an order (message safe to show)."""


class AcmeRateLimited(AcmeError):
    def __init__(self, message: str, retry_at: dt.datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class Solver(Protocol):
    kind: str  # "http-01" | "dns-01"

    def present(self, domain: str, token_path: str, validation: str) -> None: ...

    def cleanup(self, domain: str, token_path: str, validation: str) -> None: ...


class Http01Responder:
    """Serves challenge responses from memory on ``host:port`` while it is open."""

    kind = "http-01"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.tokens: dict[str, str] = {}

    @contextmanager
    def running(self) -> Iterator[Http01Responder]:
        tokens = self.tokens

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                value = tokens.get(self.path) if self.path.startswith(ACME_PATH) else None
                self.send_response(200 if value else 404)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                if value:
                    self.wfile.write(value.encode())

            def log_message(self, *args: Any) -> None:
                pass

        try:
            server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise AcmeError(f"the HTTP-01 responder cannot listen on {self.host}:{self.port} "
                            f"({exc.strerror})") from None
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

    def present(self, domain: str, token_path: str, validation: str) -> None:
        self.tokens[token_path] = validation

    def cleanup(self, domain: str, token_path: str, validation: str) -> None:
        self.tokens.pop(token_path, None)


class Webroot:
    kind = "http-01"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file(self, token_path: str) -> Path:
        return self.root / token_path.lstrip("/")

    def present(self, domain: str, token_path: str, validation: str) -> None:
        path = self._file(token_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(validation)
        path.chmod(0o644)

    def cleanup(self, domain: str, token_path: str, validation: str) -> None:
        self._file(token_path).unlink(missing_ok=True)


class _ReplacingOrder(messages.NewOrder):
    """A newOrder naming the certificate it replaces (RFC 9773, section 5)."""

    replaces: str = jose.field("replaces", omitempty=True)


class _Network(client.ClientNetwork):
    """Keeps the last response, so a refusal's Retry-After can be read."""

    last_response: requests.Response | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        return response


def account_jwk(key_pem: str) -> tuple[jose.JWK, jose.JWASignature]:
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise CertsError("the ACME account key is not an unencrypted PEM private key") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return jose.JWKRSA(key=key), jose.RS256
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return jose.JWKEC(key=key), jose.ES256
    raise CertsError("the ACME account key must be RSA or EC P-256")


class AcmeIssuer:
    def __init__(self, directory_url: str, account_key_pem: str, *, verify: str | bool = True,
                 email: str | None = None, timeout: int = 30) -> None:
        key, alg = account_jwk(account_key_pem)
        self.net = _Network(key, alg=alg, verify_ssl=verify,  # type: ignore[arg-type]  # requests takes a path
                            user_agent="secops-certs", timeout=timeout)
        try:
            directory = client.ClientV2.get_directory(directory_url, self.net)
            self.client = client.ClientV2(directory, self.net)
            registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
            try:
                self.net.account = self.client.new_account(registration)
            except errors.ConflictError as exc:  # the key already has an account
                existing = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
                self.net.account = self.client.query_registration(existing)
        except (requests.RequestException, errors.Error, messages.Error) as exc:
            raise self._error("the ACME server could not be reached or refused the account", exc) from None

    def _error(self, what: str, exc: BaseException) -> AcmeError:
        if isinstance(exc, messages.Error) and exc.code == "rateLimited":
            response = self.net.last_response
            retry_at = (client.ClientV2.retry_after(response, 3600) if response is not None
                        else dt.datetime.now() + dt.timedelta(hours=1))
            return AcmeRateLimited(f"{what}: rate limited ({exc.detail})", retry_at)
        detail = exc.detail if isinstance(exc, messages.Error) else type(exc).__name__
        return AcmeError(f"{what}: {detail}")

    def new_order(self, csr_pem: bytes, replaces: str | None = None) -> messages.OrderResource:
        """Place an order; with ``replaces`` (the ARI certID of the certificate it renews)
        the order says so (RFC 9773, section 5) when the server offers ``renewalInfo``."""
        try:
            if replaces is None or "renewalInfo" not in self.client.directory.to_partial_json():
                return self.client.new_order(csr_pem)
            try:
                return self._new_order_replacing(csr_pem, replaces)
            except messages.Error as exc:
                if exc.code != "alreadyReplaced":
                    raise
                return self.client.new_order(csr_pem)  # that certificate was renewed already
        except (requests.RequestException, errors.Error, messages.Error) as exc:
            raise self._error("the order was refused", exc) from None

    def _new_order_replacing(self, csr_pem: bytes, replaces: str) -> messages.OrderResource:
        csr = x509.load_pem_x509_csr(csr_pem)
        names, addresses = crypto_util.get_identifiers_from_x509(csr.subject, csr.extensions)
        identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=n) for n in names]
        identifiers += [messages.Identifier(typ=messages.IDENTIFIER_IP, value=str(a)) for a in addresses]
        response = self.client._post(self.client.directory["newOrder"],
                                     _ReplacingOrder(identifiers=identifiers, replaces=replaces))
        body = messages.Order.from_json(response.json())
        authorizations = [self.client._authzr_from_response(self.client._post_as_get(url), uri=url)
                          for url in body.authorizations]
        return messages.OrderResource(body=body, uri=response.headers.get("Location"),
                                      authorizations=authorizations, csr_pem=csr_pem)

    def load_order(self, url: str, csr_pem: bytes) -> messages.OrderResource:
        """The order at ``url`` as it stands now, with its authorizations."""
        try:
            body = messages.Order.from_json(self.client._post_as_get(url).json())
            authorizations = [self.client._authzr_from_response(self.client._post_as_get(u), uri=u)
                              for u in body.authorizations]
        except (requests.RequestException, errors.Error, messages.Error, jose.DeserializationError) as exc:
            raise self._error("the recorded order cannot be read", exc) from None
        return messages.OrderResource(body=body, uri=url, csr_pem=csr_pem, authorizations=authorizations)

    def complete(self, order: messages.OrderResource, solver: Solver, *, timeout: float = 90.0) -> str:
        """Answer the pending challenges, finalise (unless already done), return the full chain."""
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
        answered: list[tuple[str, str, str]] = []
        try:
            if order.body.status in (messages.STATUS_PENDING,):
                for authz in order.authorizations:
                    if authz.body.status != messages.STATUS_PENDING:
                        continue
                    chall = next((c for c in authz.body.challenges
                                  if c.chall.typ == solver.kind), None)
                    if chall is None:
                        raise AcmeError(f"the server offers no {solver.kind} challenge for "
                                        f"{authz.body.identifier.value}")
                    response, validation = chall.response_and_validation(self.net.key)
                    domain = authz.body.identifier.value
                    path = chall.chall.path if isinstance(chall.chall, challenges.HTTP01) else ""
                    solver.present(domain, path, validation)
                    answered.append((domain, path, validation))
                    self.client.answer_challenge(chall, response)
            if order.body.status == messages.STATUS_VALID and order.body.certificate:
                return str(self.client._post_as_get(order.body.certificate,
                                                    content_type="application/pem-certificate-chain").text)
            if order.body.status != messages.STATUS_READY:
                order = self.client.poll_authorizations(order, deadline)
            done = self.client.finalize_order(order, deadline)
            return str(done.fullchain_pem)
        except AcmeError:
            raise
        except CertsError as exc:  # a solver's failure
            raise AcmeError(str(exc)) from None
        except (requests.RequestException, errors.Error, messages.Error) as exc:
            raise self._error("the order failed", exc) from None
        finally:
            for domain, path, validation in answered:
                try:
                    solver.cleanup(domain, path, validation)
                except CertsError as exc:  # the order's outcome stands; a stale record is left
                    log.warning("ACME challenge cleanup for %s failed: %s", domain, exc)

    def renewal_info(self, cert_pem: bytes, now: dt.datetime) -> ari.RenewalInfo | None:
        """The server's ARI answer for a certificate (RFC 9773), or None when the directory
        has no ``renewalInfo`` or the certificate has no ARI identifier."""
        base = self.client.directory.to_partial_json().get("renewalInfo")
        if not isinstance(base, str):
            return None
        try:
            url = f"{base.rstrip('/')}/{ari.cert_id(x509.load_pem_x509_certificate(cert_pem))}"
        except (ValueError, CertsError):
            return None
        try:
            response = self.net.session.get(url, verify=self.net.verify_ssl, timeout=30,
                                            headers={"User-Agent": "secops-certs"})
        except requests.RequestException as exc:
            raise AcmeError(f"renewalInfo could not be fetched ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise AcmeError(f"renewalInfo answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise AcmeError("renewalInfo is not JSON") from None
        try:
            return ari.parse_renewal_info(body, response.headers, now)
        except CertsError as exc:
            raise AcmeError(str(exc)) from None


def make_csr(key_pem: bytes, domains: list[str]) -> bytes:
    return crypto_util.make_csr(key_pem, domains)
