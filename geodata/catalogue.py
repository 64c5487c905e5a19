"""The facility category catalogue (部件 大类/小类), loaded from fixtures/facility_types.json.

Production needs it as much as the demo: facility codes (DESIGN.md §3) embed these codes,
and the case categories of `events` refer to the same 大类/小类.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction

from geodata.models import FacilityType

CATALOGUE_PATH = Path(settings.BASE_DIR) / "fixtures" / "facility_types.json"
_TWO_DIGITS = re.compile(r"^[0-9]{2}$")


class CatalogueError(ValueError):
    """The catalogue file is malformed; the message says where, in Chinese."""


@dataclass(frozen=True)
class CatalogueEntry:
    major_code: str
    major_name: str
    minor_code: str
    minor_name: str

    @property
    def code(self) -> str:
        return self.major_code + self.minor_code


def catalogue_entries(*, path: Path = CATALOGUE_PATH) -> list[CatalogueEntry]:
    """The entries of the catalogue file, checked: two-digit codes, names present, no duplicates."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [
            CatalogueEntry(
                major_code=str(major["code"]),
                major_name=str(major["name"]).strip(),
                minor_code=str(minor["code"]),
                minor_name=str(minor["name"]).strip(),
            )
            for major in data["majors"]
            for minor in major["minors"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CatalogueError(f"部件类别目录 {path} 无法读取：{error}") from error
    seen: set[str] = set()
    for entry in entries:
        if not (_TWO_DIGITS.match(entry.major_code) and _TWO_DIGITS.match(entry.minor_code)):
            raise CatalogueError(f"部件类别 {entry.major_name}/{entry.minor_name} 的大类、小类代码须为两位数字")
        if not (entry.major_name and entry.minor_name):
            raise CatalogueError(f"部件类别 {entry.code} 缺少名称")
        if entry.code in seen:
            raise CatalogueError(f"部件类别代码 {entry.code} 重复")
        seen.add(entry.code)
    return entries


@transaction.atomic
def facility_catalogue_load(*, entries: list[CatalogueEntry], overwrite: bool = False) -> dict[str, int]:
    """Create the categories that are missing; rename existing ones only with `overwrite`.

    Idempotent (rows are matched by 大类 + 小类 code) and never deletes: facilities and case
    categories refer to these rows. Returns the number of rows created, updated, unchanged.
    """
    existing = {(t.major_code, t.minor_code): t for t in FacilityType.objects.select_for_update()}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    missing, renamed = [], []
    for entry in entries:
        current = existing.get((entry.major_code, entry.minor_code))
        if current is None:
            missing.append(
                FacilityType(
                    major_code=entry.major_code,
                    major_name=entry.major_name,
                    minor_code=entry.minor_code,
                    minor_name=entry.minor_name,
                )
            )
        elif overwrite and (current.major_name, current.minor_name) != (entry.major_name, entry.minor_name):
            current.major_name, current.minor_name = entry.major_name, entry.minor_name
            renamed.append(current)
        else:
            counts["unchanged"] += 1
    # ignore_conflicts: a concurrent loader (or events' category loader) may create the same
    # codes first; the unique constraint decides, and the row is then simply there.
    FacilityType.objects.bulk_create(missing, ignore_conflicts=True)
    FacilityType.objects.bulk_update(renamed, ["major_name", "minor_name"])
    counts["created"] = FacilityType.objects.count() - len(existing)
    counts["unchanged"] += len(missing) - counts["created"]
    counts["updated"] = len(renamed)
    return counts
