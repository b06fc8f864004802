"""Privacy (GDPR): personal-data map, access export, erasure with verification, receipts.

Data model::

    load_map(path) -> DataMap ── stores ── tables (identities, references, fields, legal hold)
    SqlConnector(datamap, resolve_secret)            the only module that talks SQL
    export_subject(datamap, subject, connector) -> {"subject", "records", "mentions"}
    erase_subject(datamap, subject, connector, key=...) -> ErasureResult (actions, verification)
    receipt_body(result, datamap, subject) -> dict;  receipt.sign(body, key) / receipt.verify
    ropa(datamap) -> records of processing (Art 30)

The engine reads no settings and no secrets: callers pass the hash key, the signing key
and a resolver for store URLs kept as secrets. Personal values never leave it except in
an export; erasure results and receipts carry counts, strategies and a keyed subject
hash only.
"""

from secops.privacy.datamap import DataMap, Field, Processing, Store, Table, load_map, parse_map
from secops.privacy.erase import ErasureResult, erase_subject, receipt_body, subject_hash
from secops.privacy.errors import (
    MapError,
    PrivacyError,
    ReceiptError,
    StoreFailed,
    StoreRejected,
    StoreUnavailable,
)
from secops.privacy.export import export_subject
from secops.privacy.graph import Linked, discover, parse_identities
from secops.privacy.mentions import MentionFinder
from secops.privacy.strategies import STRATEGIES, register

__all__ = [
    "STRATEGIES",
    "DataMap",
    "ErasureResult",
    "Field",
    "Linked",
    "MapError",
    "MentionFinder",
    "PrivacyError",
    "Processing",
    "ReceiptError",
    "Store",
    "StoreFailed",
    "StoreRejected",
    "StoreUnavailable",
    "Table",
    "discover",
    "erase_subject",
    "export_subject",
    "load_map",
    "parse_identities",
    "parse_map",
    "receipt_body",
    "register",
    "subject_hash",
]
