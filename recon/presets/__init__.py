"""Provider presets: what a vendor's export looks like, as data (one TOML file each).

A preset names its source and says whether the vendor documents the columns; where it
does not, ``documented`` is false and ``notes`` says what is our reading. ``recon init``
uses a preset to write the ``[external]`` table and to check a file's header against the
columns the preset expects.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    source: str
    documented: bool
    columns: tuple[str, ...]
    notes: str
    external: dict[str, Any]

    @property
    def statuses(self) -> dict[str, str]:
        return dict(self.external.get("statuses", {}))


def names() -> list[str]:
    """Every preset's name, sorted."""
    folder = resources.files(__package__)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`ConfigError` listing the names otherwise."""
    if name not in names():
        raise ConfigError(f"no preset {name!r}; presets: {', '.join(names())}")
    doc = tomllib.loads(resources.files(__package__).joinpath(f"{name}.toml").read_text("utf-8"))
    return Preset(
        name=doc["name"],
        title=doc["title"],
        source=doc["source"],
        documented=bool(doc["documented"]),
        columns=tuple(doc["columns"]),
        notes=doc.get("notes", "").strip(),
        external=dict(doc["external"]),
    )
