"""区划: districts (6-digit codes), streets (9) and communities (12) in one file.

The level of a row comes from the length of its code, and its parent from the code's prefix:
the parent may be registered already or come earlier or later in the same file. A child must
lie within its parent, and regions of one level must not overlap.
"""

import numpy as np

from geodata.importing import columns as c
from geodata.importing.geometry import Shape, overhang
from geodata.importing.layers.base import (
    CheckOutcome,
    LayerImporter,
    Record,
    copy_rows,
    duplicates_in_file,
    envelope,
    ewkb_hex,
    existing,
    report_overlaps,
    shapes_of,
)
from geodata.models import Community, District, Street

LEVELS: dict[int, type[District | Street | Community]] = {6: District, 9: Street, 12: Community}
LEVEL_LABELS = {6: "区县", 9: "街道/镇", 12: "社区/村"}
PARENT_FIELD = {9: "district_id", 12: "street_id"}


class RegionImporter(LayerImporter):
    key = "regions"
    label = "区划"
    shape = Shape.MULTIPOLYGON
    columns = (
        c.Column("code", "区划代码", ("代码", "编码", "行政区划代码", "xzqdm", "qhdm", "dm"), required=True),
        c.Column("name", "名称", ("区划名称", "xzqmc", "qhmc", "mc"), required=True),
    )

    def parse_all(self, records: list[Record]) -> None:
        codes = [r.values["code"] for r in records]
        self.registered = {
            length: existing(model, "code", [x for x in codes if len(x) == length], "id", "name")
            for length, model in LEVELS.items()
        }
        parent_codes = {x[: len(x) - 3] for x in codes if len(x) in (9, 12)}
        self.registered_parents = {
            length: existing(LEVELS[length], "code", [x for x in parent_codes if len(x) == length], "id", "name")
            for length in (6, 9)
        }
        for record in records:
            code = record.values["code"]
            if len(code) not in LEVELS or not code.isdigit():
                record.problems.append(f"区划代码应为6位（区县）、9位（街道/镇）或12位（社区/村）数字，收到“{code}”")
            else:
                record.data["level"] = len(code)
                if code in self.registered[len(code)]:
                    record.problems.append(f"区划代码 {code} 已登记（{self.registered[len(code)][code]['name']}）")
            name = record.take(c.required, record.values["name"], "名称")
            record.data["name"] = name and record.take(c.max_length, name, "名称", 100)

    def check(self, records: list[Record], *, loaded_only: bool) -> CheckOutcome:
        duplicates_in_file(records, lambda r: r.values["code"] if "level" in r.data else None, "区划代码")
        in_file = {r.values["code"]: r for r in records if "level" in r.data}
        for level in (6, 9, 12):
            rows = [r for r in records if r.data.get("level") == level and r.geometry is not None]
            if not rows:
                continue
            shapes = np.array([r.geometry for r in rows], dtype=object)
            if level != 6:
                self._check_parents(rows, shapes, in_file, loaded_only=loaded_only)
            model = LEVELS[level]
            bbox = envelope(r.geometry for r in rows)
            registered = model.objects.filter(geom__bboverlaps=bbox).order_by("code")
            labels = [f"{LEVEL_LABELS[level]} {code} {name}" for code, name in registered.values_list("code", "name")]
            report_overlaps(
                rows,
                shapes,
                labels,
                np.array(shapes_of(registered), dtype=object),
                metric=self.metric,
                tolerance_m2=self.tolerance_m2,
            )
        return CheckOutcome()

    def _check_parents(self, rows, shapes, in_file, *, loaded_only: bool) -> None:
        for record, shape in zip(rows, shapes, strict=True):
            code = record.values["code"]
            parent_code = code[: len(code) - 3]
            parent_label = LEVEL_LABELS[len(parent_code)]
            parent_row = in_file.get(parent_code)
            if parent_row is not None:
                if loaded_only and not parent_row.ok:
                    record.problems.append(f"上级{parent_label} {parent_code}（第 {parent_row.row} 行）有问题未导入")
                    continue
                parent_shape = parent_row.geometry
            elif parent_code in self.registered_parents[len(parent_code)]:
                parent_shape = shapes_of(LEVELS[len(parent_code)].objects.filter(code=parent_code))[0]
            else:
                record.problems.append(f"上级{parent_label} {parent_code} 未登记，也不在本文件中")
                continue
            if parent_shape is None:
                continue
            outside, where = overhang(shape, parent_shape, metric=self.metric)
            if outside > self.tolerance_m2:
                record.problems.append(f"超出上级{parent_label} {parent_code} 的边界 {outside:.1f} m²，位置 {where}")

    def write(self, records: list[Record]) -> dict[str, int]:
        created = {}
        for level, model in LEVELS.items():
            rows = [r for r in records if r.data["level"] == level]
            parent_ids: dict[str, int] = {}
            if level != 6:
                parent_codes = {r.values["code"][: level - 3] for r in rows}
                parent_ids = {
                    x: row["id"] for x, row in existing(LEVELS[level - 3], "code", parent_codes, "id").items()
                }
            columns = ["code", "name", "geom", "is_demo"] + ([PARENT_FIELD[level]] if level != 6 else [])
            created[str(model._meta.verbose_name)] = copy_rows(
                model._meta.db_table,
                columns,
                (
                    [r.values["code"], r.data["name"], ewkb_hex(r.geometry), False]
                    + ([parent_ids[r.values["code"][: level - 3]]] if level != 6 else [])
                    for r in rows
                ),
            )
        return created
