"""The purposes catalogue, loaded from TOML."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consentdesk.domain.model import Channel, DomainError, Jurisdiction, LawfulBasis, Purpose
from consentdesk.domain.resources import resource_path


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The purposes a desk can capture consent for, in display order."""

    purposes: tuple[Purpose, ...]

    def __iter__(self) -> Iterator[Purpose]:
        return iter(self.purposes)

    def __len__(self) -> int:
        return len(self.purposes)

    def get(self, purpose_id: str) -> Purpose:
        for p in self.purposes:
            if p.id == purpose_id:
                return p
        raise DomainError(f"unknown purpose {purpose_id!r}")

    def group(self, group: str) -> tuple[Purpose, ...]:
        return tuple(p for p in self.purposes if p.group == group)

    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.group for p in self.purposes))

    def channels(self) -> tuple[Channel, ...]:
        """Every channel any purpose uses, in enum order."""
        used = {ch for p in self.purposes for ch in p.channels}
        return tuple(ch for ch in Channel if ch in used)

    def check(self, purpose_id: str, channel: Channel) -> Purpose:
        p = self.get(purpose_id)
        if channel not in p.channels:
            raise DomainError(f"purpose {purpose_id!r} does not apply to channel {channel!s}")
        return p


def _flag(raw: Mapping[str, Any], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _purpose(raw: Mapping[str, Any]) -> Purpose:
    try:
        validity = raw.get("validity_days")
        return Purpose(
            id=str(raw["id"]),
            title=str(raw["title"]),
            description=str(raw["description"]),
            lawful_basis=LawfulBasis(raw["lawful_basis"]),
            channels=tuple(Channel(c) for c in raw["channels"]),
            group=str(raw.get("group", raw["id"])),
            validity_days=int(validity) if validity is not None else None,
            jurisdictions=tuple(
                Jurisdiction(j) for j in raw.get("jurisdictions", ["gdpr", "ccpa"])
            ),
            sale_or_sharing=_flag(raw, "sale_or_sharing"),
            sensitive=_flag(raw, "sensitive"),
            translations=tuple(
                (str(lang), str(text["title"]), str(text["description"]))
                for lang, text in raw.items()
                if isinstance(text, Mapping)
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DomainError(f"bad purpose entry {raw.get('id', '?')!r}: {exc}") from exc


def parse_catalogue(data: Mapping[str, Any]) -> Catalogue:
    purposes = tuple(_purpose(p) for p in data.get("purpose", []))
    ids = [p.id for p in purposes]
    if len(set(ids)) != len(ids):
        raise DomainError("purpose ids must be unique")
    if not purposes:
        raise DomainError("the catalogue has no purposes")
    return Catalogue(purposes)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load ``resources/purposes.toml`` (or *path*)."""
    path = path or resource_path("purposes.toml")
    try:
        with path.open("rb") as fh:
            return parse_catalogue(tomllib.load(fh))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DomainError(f"cannot read purposes catalogue {path}: {exc}") from exc
