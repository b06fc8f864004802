"""Policies: which detectors run, how sure they must be, and what a finding means.

A policy is a list of *packs* read from YAML or TOML files (the four shipped ones live
in ``secops/dlp/policies/``). A pack names a category, the types it covers, the
minimum score a finding needs, the action (``report``, ``redact``, ``mask``,
``block``) and the classification level its findings give a document. Custom
detectors (regex, optional named validator, context words, score) sit in the same
files and behave like built-in ones.

Packs are merged by name, so a site file named ``pii.yaml`` with ``pack: PII``
replaces the shipped PII pack. A type may belong to one pack only.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import phonenumbers
import yaml

from secops.dlp import redos
from secops.dlp.detectors import BUILTIN, BUILTIN_TYPES, Detector
from secops.dlp.errors import PolicyError
from secops.dlp.model import ACTIONS, CATEGORIES, LEVELS, Action, Category, Level
from secops.dlp.validators import DEFAULT_PHONE_REGIONS, NAMED_VALIDATORS, check_phone_in

SHIPPED_PACKS = ("pii.yaml", "pci.yaml", "phi.yaml", "secrets.yaml")


@dataclass(frozen=True, slots=True)
class Rule:
    """What the policy says about one type."""

    category: Category
    min_score: float
    action: Action
    level: Level
    pack: str


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    category: Category
    types: tuple[str, ...]
    min_score: float
    action: Action
    level: Level
    custom: tuple[Detector, ...] = ()
    phone_regions: tuple[str, ...] = ()
    """Regions (ISO 3166 codes) whose national format a phone number without a country
    code may be written in, tried in order (``phone_regions: [US, GB, DE, FR]``)."""


def _choice(value: Any, allowed: Iterable[str], what: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise PolicyError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return cast(str, value)


def _custom_detector(raw: Mapping[str, Any], category: Category) -> Detector:
    type_ = str(raw.get("type", ""))
    if not re.fullmatch(r"[a-z][a-z0-9_]{1,63}", type_):
        raise PolicyError(f"custom detector type {type_!r} must be snake_case")
    if type_ in BUILTIN_TYPES:
        raise PolicyError(f"custom detector {type_!r} reuses a built-in type name")
    flags = re.IGNORECASE if raw.get("ignore_case") else 0
    try:
        pattern = re.compile(str(raw["pattern"]), flags)
    except (KeyError, re.error) as exc:
        raise PolicyError(f"custom detector {type_!r}: bad or missing pattern ({exc})") from None
    if pattern.fullmatch(""):
        raise PolicyError(f"custom detector {type_!r}: pattern matches the empty string")
    try:
        redos.check(pattern.pattern, flags)
    except redos.CatastrophicPattern as exc:
        raise PolicyError(f"custom detector {type_!r}: pattern can backtrack catastrophically: "
                          f"{exc}; rewrite it (character classes, bounded counts, atomic "
                          "groups or possessive quantifiers)") from None
    validator_name = raw.get("validator")
    validator = None
    if validator_name is not None:
        validator = NAMED_VALIDATORS.get(str(validator_name))
        if validator is None:
            names = ", ".join(sorted(NAMED_VALIDATORS))
            raise PolicyError(f"custom detector {type_!r}: validator must be one of {names}")
    score = float(raw.get("score", 0.6))
    check_validator = validator

    def check(value: str) -> float | None:
        if check_validator is not None and not check_validator(value):
            return None
        return score

    context = tuple(str(w).lower() for w in raw.get("context", ()))
    return Detector(
        type=type_,
        category=category,
        pattern=pattern,
        check=check,
        group=raw.get("group", 0),
        context=context,
        context_boost=float(raw.get("context_boost", 0.3)),
        near=context if raw.get("require_context") else (),
        priority=int(raw.get("priority", 45)),
    )


def pack_from_mapping(raw: Mapping[str, Any], source: str = "<policy>") -> Pack:
    """Validate one pack definition (the content of one policy file)."""
    try:
        category = cast(Category, _choice(raw.get("category"), CATEGORIES, "category"))
        min_score = float(raw.get("min_score", 0.5))
        if not 0.0 <= min_score <= 1.0:
            raise PolicyError("min_score must be between 0 and 1")
        custom = tuple(_custom_detector(d, category) for d in raw.get("detectors", ()))
        regions = raw.get("phone_regions", ())
        if isinstance(regions, str) or not isinstance(regions, (list, tuple)):
            raise PolicyError("phone_regions must be a list of region codes")
        regions = tuple(str(r).upper() for r in regions)
        unknown_regions = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown_regions:
            raise PolicyError(f"phone_regions: unknown region codes {unknown_regions}")
        types = tuple(str(t) for t in raw.get("types", ()))
        unknown = [t for t in types if t not in BUILTIN_TYPES]
        if unknown:
            raise PolicyError(f"unknown types {unknown}; custom types go under 'detectors'")
        return Pack(
            name=str(raw.get("pack", category)),
            category=category,
            types=types + tuple(d.type for d in custom),
            min_score=min_score,
            action=cast(Action, _choice(raw.get("action", "report"), ACTIONS, "action")),
            level=cast(Level, _choice(raw.get("level", "confidential"), LEVELS, "level")),
            custom=custom,
            phone_regions=regions,
        )
    except PolicyError as exc:
        raise PolicyError(f"{source}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{source}: malformed pack ({exc})") from None


def _read(path: Path) -> Mapping[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None
    if not isinstance(data, Mapping):
        raise PolicyError(f"{path}: a pack file must hold a mapping")
    return data


@dataclass(frozen=True, slots=True)
class Policy:
    """An ordered set of packs; see the module docstring."""

    packs: tuple[Pack, ...]

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for pack in self.packs:
            for type_ in pack.types:
                if type_ in seen and seen[type_] != pack.name:
                    raise PolicyError(f"type {type_!r} is in packs {seen[type_]} and {pack.name}")
                seen[type_] = pack.name

    @classmethod
    def default(cls) -> Policy:
        """The four shipped packs: PII, PCI, PHI and SECRETS."""
        root = resources.files("secops.dlp") / "policies"
        packs = []
        for name in SHIPPED_PACKS:
            data = yaml.safe_load(root.joinpath(name).read_text(encoding="utf-8"))
            packs.append(pack_from_mapping(data, name))
        return cls(tuple(packs))

    @classmethod
    def load(cls, *paths: str | Path, include_default: bool = True) -> Policy:
        """Shipped packs (optionally) overlaid with the packs in ``paths``."""
        packs: dict[str, Pack] = {}
        if include_default:
            packs = {p.name: p for p in cls.default().packs}
        for raw_path in paths:
            path = Path(raw_path)
            files = [path]
            if path.is_dir():
                files = sorted(path.glob("*.y*ml")) + sorted(path.glob("*.toml"))
            for file in files:
                pack = pack_from_mapping(_read(file), str(file))
                packs[pack.name] = pack
        return cls(tuple(packs.values()))

    @classmethod
    def from_mappings(cls, *packs: Mapping[str, Any]) -> Policy:
        """Build a policy from already-parsed pack definitions (e.g. stored in a database)."""
        return cls(tuple(pack_from_mapping(p) for p in packs))

    @property
    def types(self) -> tuple[str, ...]:
        """Every type the policy's packs switch on, in pack order."""
        return tuple(t for p in self.packs for t in p.types)

    def restricted(self, types: Iterable[str]) -> Policy:
        """The same policy with only ``types`` switched on (each must be one of its
        types); a pack left without any type is dropped. Every other setting of a pack
        (minimum score, action, level) stays as it is, and so do the policy's phone
        regions, even when the pack that set them is dropped."""
        wanted = tuple(dict.fromkeys(str(t) for t in types))
        if not wanted:
            raise PolicyError("name at least one type to keep")
        unknown = [t for t in wanted if t not in self.types]
        if unknown:
            raise PolicyError(f"unknown types: {', '.join(unknown)} "
                              f"(the policy's types: {', '.join(sorted(self.types))})")
        keep = set(wanted)
        packs: list[Pack] = []
        for pack in self.packs:
            kept = tuple(t for t in pack.types if t in keep)
            if kept:
                packs.append(dataclasses.replace(
                    pack, types=kept, custom=tuple(d for d in pack.custom if d.type in keep),
                    # the regions in force, wherever they were set (see phone_regions)
                    phone_regions=pack.phone_regions if packs else self.phone_regions))
        return Policy(tuple(packs))

    def rules(self) -> dict[str, Rule]:
        return {
            t: Rule(p.category, p.min_score, p.action, p.level, p.name)
            for p in self.packs
            for t in p.types
        }

    @property
    def phone_regions(self) -> tuple[str, ...]:
        """The first pack's ``phone_regions`` that sets any (US when none does)."""
        return next((p.phone_regions for p in self.packs if p.phone_regions),
                    DEFAULT_PHONE_REGIONS)

    def detectors(self) -> list[tuple[Detector, Rule]]:
        """Every detector the policy switches on, with its rule."""
        rules = self.rules()
        phone_check = functools.partial(check_phone_in, regions=self.phone_regions)
        active = [(dataclasses.replace(d, check=phone_check) if d.check is check_phone_in else d,
                   rules[d.type]) for d in BUILTIN if d.type in rules]
        active += [(d, rules[d.type]) for p in self.packs for d in p.custom]
        return active
