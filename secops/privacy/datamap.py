"""The personal-data map: where a data subject's personal data lives, and how it is erased.

A map is a YAML file (format in docs/privacy.md)::

    DataMap(path, digest, stores, processing, controller)
      Store(name, url | url_secret, tables: parents before children)
        Table(name, primary_key, identities {type: column}, references {column: (table, column)},
              erase "delete" | "update", fields {column: Field(category, erase strategy)},
              legal_hold, retention_days, retention_column)
      Processing(purpose, lawful_basis, categories, recipients, retention, ...)

Loading checks everything that can be checked without a database: the structure, the
strategy names (the registry of :mod:`secops.privacy.strategies`), the tables named by
``references``, cycles among references (refused: a walk must end), identity columns of
kept rows that would stay readable, and parents deleted under children that are kept.
Every error names the file, the line and the dotted key. What needs the store (tables
and columns exist, types and nullability fit the strategies, indexes) is checked by
:func:`secops.privacy.connector.check_store`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from secops.privacy.errors import MapError
from secops.privacy.strategies import STRATEGIES

EraseMode = Literal["delete", "update"]
LAWFUL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
FREE_TEXT = "free_text"
Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Field:
    column: str
    category: str
    erase: str


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    primary_key: tuple[str, ...]
    identities: dict[str, str]
    references: dict[str, tuple[str, str]]
    erase: EraseMode
    fields: dict[str, Field]
    legal_hold: str | None = None
    retention_days: int | None = None
    retention_column: str | None = None

    @property
    def deletes_rows(self) -> bool:
        """Rows are deleted only when asked and never under a legal hold."""
        return self.erase == "delete" and self.legal_hold is None

    def erased_fields(self) -> list[Field]:
        return [f for f in self.fields.values() if f.erase != "keep"]


@dataclass(frozen=True, slots=True)
class Store:
    name: str
    url: str | None
    url_secret: str | None
    tables: dict[str, Table]  # parents before children (topological order)

    def children_first(self) -> list[Table]:
        return list(reversed(self.tables.values()))


@dataclass(frozen=True, slots=True)
class Processing:
    purpose: str
    lawful_basis: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    retention: str
    subjects: tuple[str, ...] = ()
    transfers: str | None = None
    measures: str | None = None


@dataclass(frozen=True)
class DataMap:
    path: str
    digest: str  # SHA-256 of the file's bytes, quoted by receipts
    stores: dict[str, Store]
    processing: tuple[Processing, ...]
    controller: dict[str, str] = field(default_factory=dict)
    lines: dict[Path_, int] = field(default_factory=dict, repr=False)

    def line(self, *key: str | int) -> int | None:
        """The line of ``key`` in the file (or of its nearest parent)."""
        path: Path_ = tuple(key)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def error(self, problem: str, *key: str | int) -> MapError:
        return MapError(problem, file=self.path, line=self.line(*key), key=_dotted(key))

    def identity_types(self) -> set[str]:
        return {t for s in self.stores.values() for tb in s.tables.values() for t in tb.identities}

    def fields(self) -> Iterator[tuple[Store, Table, Field]]:
        for store in self.stores.values():
            for table in store.tables.values():
                for f in table.fields.values():
                    yield store, table, f


def _dotted(key: tuple[str | int, ...]) -> str:
    return ".".join(str(k) for k in key)


# -- YAML with line numbers ---------------------------------------------------------


def _plain(
    node: yaml.Node,
    path: Path_,
    lines: dict[Path_, int],
    where: str,
    constructor: yaml.constructor.SafeConstructor,
) -> Any:
    """Turn a composed node into dicts/lists/scalars, noting each key's line."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node)
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise MapError(
                    "keys must be names", file=where, line=key_node.start_mark.line + 1, key=_dotted(path)
                )
            key = str(key)
            if key in out:
                raise MapError(
                    "duplicate key", file=where, line=key_node.start_mark.line + 1, key=_dotted((*path, key))
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, (*path, key), lines, where, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), lines, where, constructor) for i, item in enumerate(node.value)]
    return constructor.construct_object(node)


def _compose(text: str, where: str) -> tuple[Any, dict[Path_, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise MapError(
            f"not valid YAML ({exc.problem})", file=where, line=mark.line + 1 if mark else None, key=""
        ) from None
    except yaml.YAMLError as exc:
        raise MapError(f"not valid YAML ({type(exc).__name__})", file=where, line=None, key="") from None
    if node is None:
        raise MapError("the map is empty", file=where, line=None, key="")
    lines: dict[Path_, int] = {}
    constructor = yaml.SafeLoader("")
    try:
        return _plain(node, (), lines, where, constructor), lines
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise MapError(
            f"unreadable value ({exc.problem})", file=where, line=mark.line + 1 if mark else None, key=""
        ) from None


# -- validation ---------------------------------------------------------------------


class _Reader:
    """Typed access to the raw document with errors located in the file."""

    def __init__(self, where: str, lines: dict[Path_, int]) -> None:
        self.where, self.lines = where, lines

    def error(self, problem: str, path: Path_) -> MapError:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return MapError(problem, file=self.where, line=self.lines.get(probe), key=_dotted(path))

    def mapping(self, value: Any, path: Path_, *, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error("must be a mapping", path)
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.error(f"unknown key (allowed: {', '.join(allowed)})", (*path, key))
        return value

    def text(self, value: Any, path: Path_, *, required: bool = True) -> str | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error("must be a non-empty string", path)
        return value

    def names(self, value: Any, path: Path_) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error("must be a list of names", path)
        return tuple(value)


_TABLE_KEYS = (
    "primary_key",
    "identities",
    "references",
    "erase",
    "fields",
    "legal_hold",
    "retention_days",
    "retention_column",
    "description",
)
_FIELD_KEYS = ("category", "erase", "description")
_PROCESSING_KEYS = (
    "purpose",
    "lawful_basis",
    "categories",
    "recipients",
    "retention",
    "subjects",
    "transfers",
    "measures",
)


def load_map(path: str | Path) -> DataMap:
    """Read and validate a map file; raises :class:`MapError` naming file, line and key."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MapError(
            f"cannot read the map ({exc.strerror or type(exc).__name__})", file=where, line=None, key=""
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MapError("the map is not UTF-8 text", file=where, line=None, key="") from None
    return parse_map(text, where=where, digest=hashlib.sha256(data).hexdigest())


def parse_map(text: str, *, where: str = "<map>", digest: str | None = None) -> DataMap:
    raw, lines = _compose(text, where)
    r = _Reader(where, lines)
    doc = r.mapping(raw, (), allowed=("version", "controller", "stores", "processing"))
    if doc.get("version") != 1:
        raise r.error("must be 1", ("version",))
    controller_raw = r.mapping(doc.get("controller") or {}, ("controller",))
    controller = {str(k): str(v) for k, v in controller_raw.items()}
    stores_raw = r.mapping(doc.get("stores"), ("stores",))
    if not stores_raw:
        raise r.error("names no store", ("stores",))
    stores = {name: _store(r, name, value) for name, value in stores_raw.items()}
    processing_raw = doc.get("processing") or []
    if not isinstance(processing_raw, list):
        raise r.error("must be a list", ("processing",))
    processing = tuple(_processing(r, i, item) for i, item in enumerate(processing_raw))
    return DataMap(
        path=where,
        digest=digest or hashlib.sha256(text.encode()).hexdigest(),
        stores=stores,
        processing=processing,
        controller=controller,
        lines=lines,
    )


def _store(r: _Reader, name: str, raw: Any) -> Store:
    base: Path_ = ("stores", name)
    doc = r.mapping(raw, base, allowed=("url", "url_secret", "tables", "description"))
    url, secret = doc.get("url"), doc.get("url_secret")
    if (url is None) == (secret is None):
        raise r.error("give exactly one of url and url_secret", base)
    if url is not None:
        r.text(url, (*base, "url"))
    if secret is not None:
        r.text(secret, (*base, "url_secret"))
    tables_raw = r.mapping(doc.get("tables"), (*base, "tables"))
    if not tables_raw:
        raise r.error("names no table", (*base, "tables"))
    tables = {t: _table(r, (*base, "tables", t), t, v, set(tables_raw)) for t, v in tables_raw.items()}
    ordered = _topological(r, base, tables)
    _check_deletions(r, base, ordered)
    return Store(name=name, url=url, url_secret=secret, tables=ordered)


def _table(r: _Reader, base: Path_, name: str, raw: Any, table_names: set[str]) -> Table:
    doc = r.mapping(raw, base, allowed=_TABLE_KEYS)
    pk_raw = doc.get("primary_key")
    if pk_raw is None:
        raise r.error("missing primary_key", base)
    pk = r.names(pk_raw, (*base, "primary_key"))
    if not pk:
        raise r.error("missing primary_key", (*base, "primary_key"))
    identities: dict[str, str] = {}
    for kind, column in r.mapping(doc.get("identities") or {}, (*base, "identities")).items():
        identities[kind] = r.text(column, (*base, "identities", kind)) or ""
    references: dict[str, tuple[str, str]] = {}
    for column, target in r.mapping(doc.get("references") or {}, (*base, "references")).items():
        key = (*base, "references", column)
        target = r.text(target, key) or ""
        parent, dot, parent_column = target.partition(".")
        if not dot or not parent or not parent_column:
            raise r.error("must read table.column", key)
        if parent not in table_names:
            raise r.error(f"unknown table {parent!r} (not in this store's tables)", key)
        references[column] = (parent, parent_column)
    erase = doc.get("erase", "update")
    if erase not in ("delete", "update"):
        raise r.error("must be delete or update", (*base, "erase"))
    fields: dict[str, Field] = {}
    for column, spec in r.mapping(doc.get("fields") or {}, (*base, "fields")).items():
        key = (*base, "fields", column)
        spec = r.mapping(spec, key, allowed=_FIELD_KEYS)
        category = r.text(spec.get("category"), (*key, "category")) or ""
        strategy = spec.get("erase")
        if strategy is None:
            raise r.error("missing erase strategy", key)
        if strategy not in STRATEGIES:
            raise r.error(
                f"unknown strategy {strategy!r} (known: {', '.join(sorted(STRATEGIES))})", (*key, "erase")
            )
        fields[column] = Field(column=column, category=category, erase=strategy)
    legal_hold = r.text(doc.get("legal_hold"), (*base, "legal_hold"), required=False)
    retention_days = doc.get("retention_days")
    if retention_days is not None and (
        not isinstance(retention_days, int) or isinstance(retention_days, bool) or retention_days < 1
    ):
        raise r.error("must be a whole number of days, at least 1", (*base, "retention_days"))
    retention_column = r.text(doc.get("retention_column"), (*base, "retention_column"), required=False)
    if retention_days is not None and retention_column is None:
        raise r.error("retention_days needs retention_column (the row's date)", (*base, "retention_days"))
    table = Table(
        name=name,
        primary_key=pk,
        identities=identities,
        references=references,
        erase=erase,
        fields=fields,
        legal_hold=legal_hold,
        retention_days=retention_days,
        retention_column=retention_column,
    )
    if not table.deletes_rows:
        for kind, column in identities.items():
            f = fields.get(column)
            if f is None or f.erase == "keep":
                raise r.error(
                    f"identity column {column!r} of kept rows must be a field erased by a "
                    "strategy other than keep (else the subject stays identifiable)",
                    (*base, "identities", kind),
                )
    return table


def _topological(r: _Reader, base: Path_, tables: dict[str, Table]) -> dict[str, Table]:
    """Parents before children; a cycle of references is an error naming its members."""
    done: dict[str, Table] = {}
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name) :] + [name]
            first = tables[cycle[-2]]
            column = next(c for c, (p, _) in first.references.items() if p == name)
            raise r.error(
                "references form a cycle: " + " -> ".join(cycle),
                (*base, "tables", first.name, "references", column),
            )
        visiting.append(name)
        for parent, _ in tables[name].references.values():
            visit(parent)
        visiting.pop()
        done[name] = tables[name]

    for name in tables:
        visit(name)
    return done


def _check_deletions(r: _Reader, base: Path_, tables: Mapping[str, Table]) -> None:
    """A deleted parent must not leave kept children pointing at it."""
    for child in tables.values():
        if child.deletes_rows:
            continue
        for column, (parent, _) in child.references.items():
            kept_link = child.fields.get(column) is None or child.fields[column].erase != "null"
            if tables[parent].deletes_rows and kept_link:
                why = "is on legal hold" if child.legal_hold else "is erased by update"
                raise r.error(
                    f"{parent} rows are deleted but {child.name}.{column} keeps pointing at "
                    f"them ({child.name} {why}): erase {parent} by update, or {column} "
                    "with null",
                    (*base, "tables", parent, "erase"),
                )


def _processing(r: _Reader, i: int, raw: Any) -> Processing:
    base: Path_ = ("processing", i)
    doc = r.mapping(raw, base, allowed=_PROCESSING_KEYS)
    basis = doc.get("lawful_basis")
    if basis not in LAWFUL_BASES:
        raise r.error(f"must be one of {', '.join(LAWFUL_BASES)}", (*base, "lawful_basis"))
    return Processing(
        purpose=r.text(doc.get("purpose"), (*base, "purpose")) or "",
        lawful_basis=basis,
        categories=r.names(doc.get("categories"), (*base, "categories")),
        recipients=r.names(doc.get("recipients"), (*base, "recipients")),
        retention=r.text(doc.get("retention"), (*base, "retention")) or "",
        subjects=r.names(doc.get("subjects"), (*base, "subjects")),
        transfers=r.text(doc.get("transfers"), (*base, "transfers"), required=False),
        measures=r.text(doc.get("measures"), (*base, "measures"), required=False),
    )
