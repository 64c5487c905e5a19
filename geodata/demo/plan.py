"""The demo's parameters, read from fixtures/demo_district.json (names, counts, weights)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from django.conf import settings

PLAN_PATH = Path(settings.BASE_DIR) / "fixtures" / "demo_district.json"
# What the generated data depends on besides the plan: a change to any of these files gives
# a new demo version, so load_demo replaces a stale demo instead of keeping it.
_GENERATOR_FILES = [
    *(
        Path(__file__).parent / name
        for name in ("plan.py", "draw.py", "layout.py", "population.py", "design.py", "facilities.py")
    ),
    # The grid-design tool designs the dense street's grids.
    Path(settings.BASE_DIR) / "geodata" / "grid_design.py",
    Path(settings.BASE_DIR) / "fixtures" / "facility_types.json",
]


@dataclass(frozen=True)
class StreetPlan:
    code: str
    name: str
    seed_lonlat: tuple[float, float]
    communities: int
    grids: int | None  # total for the dense street; None: a few per community

    @property
    def is_town(self) -> bool:
        # Street codes 100-199 are 镇 (DESIGN.md §3).
        return self.code[6] == "1"


@dataclass(frozen=True)
class FacilityMix:
    type_code: str  # 大类 + 小类, 4 digits
    weight: float
    placement: str  # "edge": along the grid's streets; "area": anywhere off the buildings
    maintainer: str
    manager: str
    owner: str


@dataclass(frozen=True)
class DemoPlan:
    raw: dict[str, Any]
    digest: str

    @classmethod
    def load(cls, path: Path = PLAN_PATH) -> DemoPlan:
        text = path.read_bytes()
        digest = hashlib.sha256(text)
        for source in _GENERATOR_FILES:
            digest.update(source.read_bytes())
        return cls(raw=json.loads(text), digest=digest.hexdigest()[:12])

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @property
    def version(self) -> str:
        """Changes whenever the plan or the generator changes, so a stale demo is replaced."""
        return f"{self.raw['version']}-{self.digest}"

    @property
    def label(self) -> str:
        return self.raw["label"]

    @property
    def district_code(self) -> str:
        return self.raw["district"]["code"]

    @property
    def reference_date(self) -> dt.date:
        return dt.date.fromisoformat(self.raw["reference_date"])

    @property
    def grid_valid_from(self) -> dt.date:
        return dt.date.fromisoformat(self.raw["grid_valid_from"])

    @cached_property
    def streets(self) -> list[StreetPlan]:
        return [
            StreetPlan(
                code=s["code"],
                name=s["name"],
                seed_lonlat=(s["seed"][0], s["seed"][1]),
                communities=s["communities"],
                grids=s.get("grids"),
            )
            for s in self.raw["streets"]
        ]

    @property
    def dense_street(self) -> str:
        return self.raw["dense_street"]

    @cached_property
    def facility_mix(self) -> list[FacilityMix]:
        return [
            FacilityMix(
                type_code=m["type"],
                weight=float(m["weight"]),
                placement=m["placement"],
                maintainer=m["maintainer"],
                manager=m["manager"],
                owner=m["owner"],
            )
            for m in self.raw["facility_mix"]
        ]
