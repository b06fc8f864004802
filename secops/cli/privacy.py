"""``secops privacy``: the privacy engine as a command (docs/privacy.md).

Local mode (``--local``) runs :mod:`secops.privacy` in this process against the stores
the map names. Contracts:

* ``export --local --map MAP --identity TYPE=VALUE ... --json``: one JSON object
  ``{"subject", "records", "mentions"}``; exit 0, or 2 with a one-line error.
* ``erase --local --map MAP --identity TYPE=VALUE ... --json``: ``{"subject_hash",
  "actions", "verified", "receipt"}``; exit 0 verified, 1 personal data left, 2 error (a
  store whose transaction failed is rolled back and named on stderr).
* ``receipt verify FILE``: exit 0 good signature, 1 altered or signed by another key,
  2 unreadable file or key. ``receipt public-key`` prints the key to verify with.
* ``map check MAP``: exit 0 (warnings on stderr, e.g. a queried column without an
  index) or 2 with the error's file, line and key.
* ``ropa --map MAP --format md|json|csv``: records of processing (Art 30).

Secrets come from the secret reader: ``PRIVACY_HMAC`` (key of pseudonyms and subject
hashes, at least 32 characters) and ``PRIVACY_SIGNING_KEY`` (Ed25519: PEM, or a 32-byte
seed in hex or base64); a store's ``url_secret`` names another secret.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from secops.config import SECRET_MIN_LENGTH, read_secret
from secops.errors import ConfigurationError, SecOpsError

EXIT_OK, EXIT_LEFT, EXIT_ERROR = 0, 1, 2
HMAC_SECRET, SIGNING_SECRET = "privacy_hmac", "privacy_signing_key"  # pragma: allowlist secret (secret names)
LOCAL_ONLY = "give --local: the engine runs in this process against the map's stores"
F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """A SecOpsError becomes ``error: ...`` on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SecOpsError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def _secret_text(name: str) -> str | None:
    value = read_secret(name)
    return value.get_secret_value() if value is not None else None


def hash_key() -> bytes:
    value = _secret_text(HMAC_SECRET)
    if value is None:
        raise ConfigurationError(
            f"secret {HMAC_SECRET.upper()} is not set (SECOPS_{HMAC_SECRET.upper()} "
            "or its _FILE; see docs/privacy.md)"
        )
    if len(value) < SECRET_MIN_LENGTH:
        raise ConfigurationError(
            f"secret {HMAC_SECRET.upper()} is shorter than {SECRET_MIN_LENGTH} characters"
        )
    return value.encode("utf-8")


def signing_key() -> Any:
    from secops.privacy.receipt import load_private_key

    value = _secret_text(SIGNING_SECRET)
    if value is None:
        raise ConfigurationError(
            f"secret {SIGNING_SECRET.upper()} is not set (SECOPS_{SIGNING_SECRET.upper()} "
            "or its _FILE; see docs/privacy.md)"
        )
    return load_private_key(value)


def _connector(map_path: str) -> Any:
    from secops.privacy import load_map
    from secops.privacy.connector import SqlConnector

    return SqlConnector(load_map(map_path), _secret_text)


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
    sys.stdout.flush()


@click.group("privacy")
def privacy() -> None:
    """GDPR: personal-data map, access export, verified erasure, receipts, Art 30 records."""


_map_option = click.option(
    "--map", "map_path", required=True, type=click.Path(dir_okay=False), help="The personal-data map (YAML)."
)
_identity_option = click.option(
    "--identity",
    "identities",
    multiple=True,
    required=True,
    metavar="TYPE=VALUE",
    help="An identity of the subject (repeatable).",
)


@privacy.command("export")
@click.option("--local", is_flag=True, help="Run the engine in this process.")
@_map_option
@_identity_option
@click.option("--json", "as_json", is_flag=True, help="Print the export as one JSON object.")
@click.option(
    "--no-mentions", is_flag=True, help="Skip the search of other subjects' free text (mentions: [])."
)
@_one_line_errors
def export_cmd(
    local: bool, map_path: str, identities: tuple[str, ...], as_json: bool, no_mentions: bool
) -> None:
    """Print every row linked to the subject, and other rows' text that mentions them."""
    from secops.privacy import export_subject, parse_identities

    if not local:
        raise click.UsageError(LOCAL_ONLY)
    connector = _connector(map_path)
    try:
        subject = parse_identities(identities, connector.datamap)
        result = export_subject(connector.datamap, subject, connector, mentions=not no_mentions)
    finally:
        connector.close()
    if as_json:
        _emit(result)
        return
    click.echo(f"{len(result['records'])} records, {len(result['mentions'])} mentions")
    for r in result["records"]:
        click.echo(f"  {r['store']}.{r['table']} {json.dumps(r['primary_key'])}")
    for m in result["mentions"]:
        click.echo(f"  mention: {m['store']}.{m['table']}.{m['column']} {json.dumps(m['primary_key'])}")


@privacy.command("erase")
@click.option("--local", is_flag=True, help="Run the engine in this process.")
@_map_option
@_identity_option
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@click.option(
    "--receipt",
    "receipt_path",
    type=click.Path(dir_okay=False),
    help="Also write the signed receipt to this file.",
)
@_one_line_errors
def erase_cmd(
    local: bool, map_path: str, identities: tuple[str, ...], as_json: bool, receipt_path: str | None
) -> None:
    """Erase the subject's personal data, verify, and sign a receipt (exit 0/1/2)."""
    from secops.privacy import erase_subject, parse_identities, receipt_body
    from secops.privacy.receipt import sign

    if not local:
        raise click.UsageError(LOCAL_ONLY)
    key, signer = hash_key(), signing_key()
    connector = _connector(map_path)
    try:
        subject = parse_identities(identities, connector.datamap)
        result = erase_subject(connector.datamap, subject, connector, key=key)
    finally:
        connector.close()
    receipt = sign(receipt_body(result, connector.datamap, subject), signer)
    if receipt_path:
        Path(receipt_path).write_text(json.dumps(receipt, indent=2) + "\n", encoding="utf-8")
    out = {
        "subject_hash": result.subject_hash,
        "actions": [a.to_dict() for a in result.actions],
        "verified": result.verified,
        "receipt": receipt,
    }
    if as_json:
        _emit(out)
    else:
        for a in result.actions:
            click.echo(f"{a.store}.{a.table}: {a.strategy} {a.rows} rows")
        click.echo("verified" if result.verified else "NOT verified: personal data left")
    for s in result.stores:
        if s.status != "committed":
            click.echo(f"error: store {s.store!r} {s.status.replace('_', ' ')}: {s.error}", err=True)
    for s in result.stores:
        if s.verify_error:
            click.echo(f"error: store {s.store!r} erased but not verified: {s.verify_error}", err=True)
        for table, n in sorted(s.remaining.items()):
            click.echo(f"left: {s.store}.{table}: {n} rows still hold personal data", err=True)
    unproven = any(s.verify_error for s in result.stores)
    sys.exit(EXIT_ERROR if result.failed or unproven else EXIT_OK if result.verified else EXIT_LEFT)


@privacy.group("receipt")
def receipt_group() -> None:
    """Check erasure receipts."""


@receipt_group.command("verify")
@click.option(
    "--public-key",
    "public_key_path",
    type=click.Path(dir_okay=False),
    help="Ed25519 public key (PEM, hex or base64); default: that of PRIVACY_SIGNING_KEY.",
)
@click.argument("file", type=click.Path(dir_okay=False))
@_one_line_errors
def receipt_verify(public_key_path: str | None, file: str) -> None:
    """Check FILE's signature (a receipt, or the output of erase --json)."""
    from secops.privacy.errors import ReceiptError
    from secops.privacy.receipt import load_public_key, verify

    try:
        document = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReceiptError(f"{file}: not a readable JSON file ({type(exc).__name__})") from None
    if public_key_path:
        try:
            public = load_public_key(Path(public_key_path).read_bytes())
        except OSError as exc:
            raise ReceiptError(f"{public_key_path}: {exc.strerror}") from None
    else:
        public = signing_key().public_key()
    receipt = document.get("receipt", document) if isinstance(document, dict) else document
    try:
        body = verify(receipt, public)
    except ReceiptError as exc:
        click.echo(f"invalid: {exc.message}", err=True)
        sys.exit(EXIT_LEFT)
    state = "verified" if body.get("verification", {}).get("verified") else "NOT verified"
    click.echo(f"valid: receipt {body.get('receipt_id')} ({state}, {len(body.get('actions', []))} actions)")


@receipt_group.command("public-key")
@_one_line_errors
def receipt_public_key() -> None:
    """Print the PEM public key of PRIVACY_SIGNING_KEY (give it to whoever checks receipts)."""
    from secops.privacy.receipt import public_pem

    click.echo(public_pem(signing_key()), nl=False)


@privacy.group("map")
def map_group() -> None:
    """Personal-data maps."""


@map_group.command("check")
@click.argument("map_path", metavar="MAP", type=click.Path(dir_okay=False))
@_one_line_errors
def map_check(map_path: str) -> None:
    """Validate MAP and check it against its stores (exit 0, or 2 with the error)."""
    from secops.privacy.connector import check_map

    connector = _connector(map_path)
    try:
        warnings = check_map(connector)
    finally:
        connector.close()
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    dm = connector.datamap
    tables = sum(len(s.tables) for s in dm.stores.values())
    click.echo(f"ok: {map_path}: {len(dm.stores)} stores, {tables} tables, {len(warnings)} warnings")


@privacy.command("ropa")
@_map_option
@click.option("--format", "fmt", type=click.Choice(["md", "json", "csv"]), default="md", show_default=True)
@_one_line_errors
def ropa_cmd(map_path: str, fmt: str) -> None:
    """Print the records of processing activities (Art 30) from the map."""
    from secops.privacy import load_map
    from secops.privacy.ropa import render

    sys.stdout.write(render(load_map(map_path), fmt))
    sys.stdout.flush()


@privacy.command("retention")
@click.option("--local", is_flag=True, help="Run the engine in this process.")
@_map_option
@click.option("--dry-run", is_flag=True, help="Count what would be erased; change nothing.")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="With --dry-run: preview what expires on this date (default today).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@_one_line_errors
def retention_cmd(local: bool, map_path: str, dry_run: bool, as_of: Any, as_json: bool) -> None:
    """Erase rows past their table's retention_days (and the rows that reference them)."""
    import datetime as dt

    from secops.privacy.retention import apply_retention

    if not local:
        raise click.UsageError(LOCAL_ONLY)
    if as_of is not None and not dry_run:
        raise click.UsageError("--as-of previews only: give it with --dry-run")
    now = as_of.replace(tzinfo=dt.UTC) if as_of is not None else dt.datetime.now(dt.UTC)
    key = hash_key()
    connector = _connector(map_path)
    try:
        outcomes = apply_retention(connector.datamap, connector, key=key, now=now, dry_run=dry_run)
    finally:
        connector.close()
    if as_json:
        _emit({"dry_run": dry_run, "stores": [o.to_dict() for o in outcomes]})
    else:
        for o in outcomes:
            for a in o.actions:
                verb = "would" if dry_run else "did"
                click.echo(f"{a.store}.{a.table}: {verb} {a.strategy} {a.rows} rows")
    failed = [o for o in outcomes if o.status in ("rolled_back", "unavailable")]
    for o in failed:
        click.echo(f"error: store {o.store!r} {o.status.replace('_', ' ')}: {o.error}", err=True)
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


@privacy.group("consents")
def consents_group() -> None:
    """The platform's consent ledger."""


@consents_group.command("verify")
@_one_line_errors
def consents_verify() -> None:
    """Check the consent ledger's hash chain (exit 0 intact, 1 broken)."""
    from secops.config import get_settings
    from secops.db.session import session_scope
    from secops.services import consents

    with session_scope() as session:
        result = consents.verify(session=session, settings=get_settings())
    if result.ok:
        click.echo(f"ok: {result.checked} consent entries, chain intact")
        return
    click.echo(
        f"broken: entry {result.broken_seq} {result.reason} ({result.checked} entries checked before it)",
        err=True,
    )
    sys.exit(EXIT_LEFT)
