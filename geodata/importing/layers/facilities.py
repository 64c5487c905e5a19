"""城市部件: a point with a 16-digit code = county (6) + 大类 (2) + 小类 (2) + serial (6).

The category comes from the code; category columns in the file, when present, must agree
with it. Departments (主管/权属/养护) are given by code or by unique name and must exist.
"""

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
)
from geodata.importing.layers.buildings import check_in_jurisdiction
from geodata.importing.layers.grids import department_lookups, resolve_department
from geodata.models import District, Facility, FacilityType

STATUS_ALIASES = {"正常": "intact", "损坏": "damaged", "缺失": "missing", "遗失": "missing", "被占用": "occupied"}
DEPARTMENTS = (
    ("owner_department", "权属单位"),
    ("manager_department", "主管部门"),
    ("maintainer_department", "养护单位"),
)


class FacilityImporter(LayerImporter):
    key = "facilities"
    label = "城市部件"
    shape = Shape.POINT
    columns = (
        c.Column("code", "部件编码", ("部件标识码", "标识码", "编码", "bjbm", "bsm"), required=True),
        c.Column("major_code", "大类代码", ("大类编码", "dldm")),
        c.Column("minor_code", "小类代码", ("小类编码", "xldm")),
        c.Column("category", "小类名称", ("部件类别", "小类", "类别", "xlmc")),
        c.Column("name", "名称", ("部件名称", "mc")),
        c.Column("status", "状态", ("部件状态", "zt")),
        c.Column("address", "地址", ("位置描述", "dz")),
        c.Column("owner_department", "权属单位", ("qsdw",)),
        c.Column("manager_department", "主管部门", ("zgbm",)),
        c.Column("maintainer_department", "养护单位", ("养护部门", "yhdw")),
    )

    def parse_all(self, records: list[Record]) -> None:
        codes = [r.values["code"] for r in records]
        registered = existing(Facility, "code", codes, "name")
        districts = existing(District, "code", [x[:6] for x in codes], "name")
        types = {(t.major_code, t.minor_code): t for t in FacilityType.objects.all()}
        names = {r.values[field] for r in records for field, _ in DEPARTMENTS} - {""}
        by_code, by_name = department_lookups(names)
        for record in records:
            code = record.take(c.digits, record.values["code"], "部件编码", 16)
            if code:
                if code in registered:
                    record.problems.append(f"部件编码 {code} 已登记")
                if code[:6] not in districts:
                    record.problems.append(f"部件编码前6位 {code[:6]} 不是已登记的区县代码")
                self._category(record, code, types)
            record.data["name"] = record.take(c.max_length, record.values["name"], "名称", 100)
            record.data["address"] = record.take(c.max_length, record.values["address"], "地址", 200)
            status = record.values["status"]
            record.data["status"] = (
                record.take(c.choice, status, "状态", Facility.Status, extra=STATUS_ALIASES)
                if status
                else Facility.Status.INTACT
            )
            for field, label in DEPARTMENTS:
                record.data[f"{field}_id"] = resolve_department(record, record.values[field], label, by_code, by_name)

    def _category(self, record: Record, code: str, types: dict) -> None:
        major, minor = code[6:8], code[8:10]
        for column, label, expected in (("major_code", "大类代码", major), ("minor_code", "小类代码", minor)):
            given = record.values[column]
            if given and given.zfill(2) != expected:
                record.problems.append(f"{label} {given} 与部件编码中的 {expected} 不一致")
        facility_type = types.get((major, minor))
        if facility_type is None:
            record.problems.append(f"未知部件类别：大类 {major} 小类 {minor}（部件编码第7-10位），请对照部件类别表")
            return
        category = record.values["category"]
        if category and category not in {
            facility_type.minor_name,
            f"{facility_type.major_name}/{facility_type.minor_name}",
        }:
            record.problems.append(f"小类名称“{category}”与部件编码对应的类别“{facility_type.minor_name}”不一致")
        record.data["facility_type_id"] = facility_type.pk

    def check(self, records: list[Record], *, loaded_only: bool) -> CheckOutcome:
        duplicates_in_file(records, lambda r: r.values["code"], "部件编码")
        placed = [r for r in records if r.geometry is not None]
        check_in_jurisdiction(placed, [r.geometry for r in placed])
        return CheckOutcome()

    def write(self, records: list[Record]) -> dict[str, int]:
        count = copy_rows(
            Facility._meta.db_table,
            [
                "code",
                "facility_type_id",
                "name",
                "status",
                "location",
                "address",
                "owner_department_id",
                "manager_department_id",
                "maintainer_department_id",
                "is_demo",
            ],
            (
                [
                    r.values["code"],
                    r.data["facility_type_id"],
                    r.data["name"],
                    r.data["status"],
                    ewkb_hex(r.geometry),
                    r.data["address"],
                    r.data["owner_department_id"],
                    r.data["manager_department_id"],
                    r.data["maintainer_department_id"],
                    False,
                ]
                for r in records
            ),
        )
        return {"城市部件": count}

    def assignment_area(self, records: list[Record]):
        return envelope(r.geometry for r in records)
