"""楼栋: a footprint polygon, or a point where only a point is known.

The location point of a footprint is its point on surface (inside even for L- or U-shaped
buildings). The grid of a building is not read from the file: it is derived after the
write by geodata.services.register_assign_grids, one set-based statement.
"""

import numpy as np
import shapely

from geodata.importing import columns as c
from geodata.importing.geometry import Shape
from geodata.importing.layers.base import (
    CheckOutcome,
    LayerImporter,
    Record,
    copy_rows,
    duplicates_in_file,
    envelope,
    ewkb_hex,
    existing,
    jurisdiction,
    outside_jurisdiction_message,
)
from geodata.models import Building


def check_in_jurisdiction(records: list[Record], points: list) -> None:
    area = jurisdiction()
    inside = shapely.covers(area, np.array(points, dtype=object)) if area is not None else [False] * len(points)
    for record, point, ok in zip(records, points, inside, strict=True):
        if not ok:
            record.problems.append(outside_jurisdiction_message(point, area))


class BuildingImporter(LayerImporter):
    key = "buildings"
    label = "楼栋"
    shape = Shape.POINT_OR_POLYGON
    columns = (
        c.Column("code", "楼栋编码", ("编码", "楼栋号", "ldbm", "buildingcode"), required=True),
        c.Column("address", "地址", ("楼栋地址", "门牌地址", "dz"), required=True),
        c.Column("floors", "层数", ("楼层数", "总层数", "cs")),
        c.Column("use", "用途", ("房屋用途", "yt")),
    )

    def parse_all(self, records: list[Record]) -> None:
        registered = existing(Building, "code", [r.values["code"] for r in records], "address")
        for record in records:
            code = record.take(c.required, record.values["code"], "楼栋编码")
            if code:
                record.take(c.max_length, code, "楼栋编码", 32)
                if code in registered:
                    record.problems.append(f"楼栋编码 {code} 已登记（{registered[code]['address']}）")
            address = record.take(c.required, record.values["address"], "地址")
            record.data["address"] = address and record.take(c.max_length, address, "地址", 200)
            record.data["floors"] = record.take(c.positive_int, record.values["floors"], "层数", default=1)
            use = record.values["use"]
            record.data["use"] = record.take(c.choice, use, "用途", Building.Use) if use else Building.Use.RESIDENTIAL
            if record.geometry is not None:
                if record.geometry.geom_type == "Point":
                    record.data["footprint"], record.data["location"] = None, record.geometry
                else:
                    record.data["footprint"] = record.geometry
                    record.data["location"] = shapely.point_on_surface(record.geometry)

    def check(self, records: list[Record], *, loaded_only: bool) -> CheckOutcome:
        duplicates_in_file(records, lambda r: r.values["code"], "楼栋编码")
        placed = [r for r in records if "location" in r.data]
        check_in_jurisdiction(placed, [r.data["location"] for r in placed])
        return CheckOutcome()

    def write(self, records: list[Record]) -> dict[str, int]:
        count = copy_rows(
            Building._meta.db_table,
            ["code", "address", "floors", "use", "footprint", "location", "is_demo"],
            (
                [
                    r.values["code"],
                    r.data["address"],
                    r.data["floors"],
                    r.data["use"],
                    ewkb_hex(r.data["footprint"]),
                    ewkb_hex(r.data["location"]),
                    False,
                ]
                for r in records
            ),
        )
        return {"楼栋": count}

    def assignment_area(self, records: list[Record]):
        return envelope(r.data["location"] for r in records)
