"""户与人口: one row per resident, with the columns of their household, as street offices keep
their 实有人口 registers. A row without a name and ID number registers an empty household.

Household columns may be repeated on every row of the household or given once; values that
are given must agree between rows and with a household that is already registered. A new
household needs a registered building. ID numbers are checked (GB 11643 check digit, birth
date, and sex and birth date agreeing with the other columns), stored encrypted with a keyed
hash, and must be unique in the file and in the register.

A row rejected for a problem of the person only still contributes the household columns it
gives correctly, so that the household and its other residents are loaded and the fixed row
can be imported again later: it will then join the existing household.
"""

import operator
from collections import defaultdict

from geodata import pii
from geodata.importing import columns as c
from geodata.importing.layers.base import CheckOutcome, LayerImporter, Record, copy_rows, existing
from geodata.importing.sources import looks_like_spreadsheet_number
from geodata.models import Building, Household, Person, PersonTag

HOUSEHOLD_TYPE_ALIASES = {"户籍": "registered", "常住": "resident", "流动": "floating", "出租": "rental"}
SEX_ALIASES = {"男": "M", "女": "F", "m": "M", "f": "F", "1": "M", "2": "F", "male": "M", "female": "F"}
HOUSEHOLD_FIELDS = {
    "building_code": "楼栋编码",
    "unit": "单元",
    "room": "房号",
    "household_type": "户类型",
    "head_name": "户主姓名",
    "household_phone": "户联系电话",
}
PERSON_COLUMNS = ("name", "sex", "birth_date", "ethnicity", "id_number", "phone", "tags")


class PopulationImporter(LayerImporter):
    key = "population"
    label = "户与人口"
    shape = None
    key_column = "household_code"
    columns = (
        c.Column("household_code", "户编号", ("户号", "户编码", "hbh"), required=True),
        c.Column("building_code", "楼栋编码", ("楼栋号", "ldbm")),
        c.Column("unit", "单元", ("单元号", "dy")),
        c.Column("room", "房号", ("房间号", "室号", "fh")),
        c.Column("household_type", "户类型", ("户别", "hlx")),
        c.Column("head_name", "户主姓名", ("户主", "hzxm")),
        c.Column("household_phone", "户联系电话", ("联系电话", "户电话", "lxdh")),
        c.Column("name", "姓名", ("xm",)),
        c.Column("sex", "性别", ("xb",)),
        c.Column("birth_date", "出生日期", ("csrq",)),
        c.Column("ethnicity", "民族", ("mz",)),
        c.Column("id_number", "身份证号", ("身份证号码", "公民身份号码", "证件号码", "sfzh")),
        c.Column("phone", "手机", ("手机号", "手机号码", "个人电话", "sjh")),
        c.Column("tags", "关注类别", ("人员类别", "标签", "gzlb")),
    )

    def parse_all(self, records: list[Record]) -> None:
        self.buildings = existing(Building, "code", [r.values["building_code"] for r in records], "id", "grid_id")
        person_values = operator.itemgetter(*PERSON_COLUMNS)
        for record in records:
            code: str | None = record.values["household_code"]
            if not code or len(code) > 40:  # the parsers (and their messages) for a bad code only
                code = record.take(c.required, code, "户编号")
                if code:
                    record.take(c.max_length, code, "户编号", 40)
            record.data["household"] = self._household_part(record)
            if any(person_values(record.values)):
                record.data["person"] = self._person_part(record)

    def _household_part(self, record: Record) -> dict[str, str]:
        v = record.values
        part: dict[str, str | None] = {}
        if v["building_code"]:
            if v["building_code"] in self.buildings:
                part["building_code"] = v["building_code"]
            else:
                record.problems.append(f"楼栋编码 {v['building_code']} 未登记，请先导入楼栋")
        for name, label, length in (("unit", "单元", 10), ("room", "房号", 20), ("head_name", "户主姓名", 50)):
            value = v[name]
            if value:  # the parser (and its message) only for a value that is too long: most are not
                part[name] = value if len(value) <= length else record.take(c.max_length, value, label, length)
        if v["household_type"]:
            part["household_type"] = record.take(
                c.choice, v["household_type"], "户类型", Household.Type, extra=HOUSEHOLD_TYPE_ALIASES
            )
        if v["household_phone"]:
            part["household_phone"] = _phone(record, v["household_phone"], "户联系电话")
        return {name: value for name, value in part.items() if value is not None}

    def _person_part(self, record: Record) -> dict | None:
        v = record.values
        name = record.take(c.required, v["name"], "姓名")
        name = name and record.take(c.max_length, name, "姓名", 50)
        id_number = _id_number(record, v["id_number"])
        sex = birth_date = None
        if v["sex"]:
            sex = SEX_ALIASES.get(v["sex"].lower())
            if sex is None:
                record.problems.append(f"性别“{v['sex']}”无法识别，请填写 男 或 女")
        birth_date = record.take(c.date, v["birth_date"], "出生日期")
        if id_number:
            id_sex = "M" if int(id_number[16]) % 2 else "F"
            id_birth = pii.birth_date_from_id_number(id_number)
            if sex and sex != id_sex:
                record.problems.append("性别与身份证号不符（身份证号第17位奇数为男、偶数为女）")
            if birth_date and birth_date != id_birth:
                record.problems.append(f"出生日期 {birth_date} 与身份证号中的 {id_birth} 不符")
            sex, birth_date = sex or id_sex, birth_date or id_birth
        ethnicity = record.take(c.max_length, v["ethnicity"] or "汉族", "民族", 20)
        phone = _phone(record, v["phone"], "手机") if v["phone"] else ""
        tags = [record.take(c.choice, tag, "关注类别", PersonTag) for tag in c.split_list(v["tags"])]
        if not record.ok:
            return None
        return {
            "name": name,
            "sex": sex,
            "birth_date": birth_date,
            "ethnicity": ethnicity,
            "id_number": id_number,
            "id_hash": pii.lookup_hash(id_number or ""),
            "phone": phone,
            "tags": list(dict.fromkeys(tags)),
        }

    def check(self, records: list[Record], *, loaded_only: bool) -> CheckOutcome:
        groups: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            if record.values["household_code"]:
                groups[record.values["household_code"]].append(record)
        registered = existing(
            Household,
            "code",
            list(groups),
            "id",
            "building__code",
            "unit",
            "room",
            "household_type",
            "head_name",
            "phone_encrypted",
        )
        self.merged = {}
        for code, rows in groups.items():
            self.merged[code] = self._merge(code, rows, registered.get(code))
        self._check_persons(records)
        return CheckOutcome()

    def _merge(self, code: str, rows: list[Record], registered: dict | None) -> dict:
        if registered is None and len(rows) == 1:  # a new household on one row: nothing to compare
            part = rows[0].data["household"]
            if "building_code" not in part:
                rows[0].problems.append(f"新户 {code} 缺少有效的楼栋编码（新户须填写已登记的楼栋编码）")
            return {"registered": None, **part}
        merged: dict[str, tuple[str, Record]] = {}
        for record in rows:
            for name, value in record.data["household"].items():
                label = HOUSEHOLD_FIELDS[name]
                if registered is not None:
                    stored = _registered_value(registered, name)
                    if value != stored:
                        record.problems.append(f"{label}“{value}”与已登记的户 {code} 不一致（登记为“{stored}”）")
                    continue
                if name not in merged:
                    merged[name] = (value, record)
                elif merged[name][0] != value:
                    first_value, first = merged[name]
                    record.problems.append(f"户 {code} 的{label}“{value}”与第 {first.row} 行的“{first_value}”不一致")
        if registered is None and "building_code" not in merged:
            for record in rows:
                record.problems.append(f"新户 {code} 缺少有效的楼栋编码（新户须填写已登记的楼栋编码）")
        return {"registered": registered, **{name: value for name, (value, _) in merged.items()}}

    def _check_persons(self, records: list[Record]) -> None:
        people = [r for r in records if r.data.get("person")]
        hashes = [r.data["person"]["id_hash"] for r in people]
        registered = {
            id_hash: row["household__code"]
            for id_hash, row in existing(Person, "id_number_hash", hashes, "household__code").items()
        }
        first_row: dict[str, Record] = {}
        for record in people:
            id_hash = record.data["person"]["id_hash"]
            if id_hash in registered:
                record.problems.append(f"该身份证号已登记（户 {registered[id_hash]}）")
            if id_hash in first_row:
                record.problems.append(f"身份证号与第 {first_row[id_hash].row} 行重复")
            else:
                first_row[id_hash] = record

    def write(self, records: list[Record]) -> dict[str, int]:
        new_codes = sorted(
            {r.values["household_code"] for r in records}
            - {code for code, merged in self.merged.items() if merged["registered"]}
        )
        # Encrypted in batches (pii.encrypt_many): one AES context per column, not per value.
        household_phones = [self.merged[code].get("household_phone", "") for code in new_codes]
        households = copy_rows(
            Household._meta.db_table,
            [
                "code",
                "building_id",
                "unit",
                "room",
                "household_type",
                "head_name",
                "phone_encrypted",
                "phone_masked",
                "grid_id",
                "is_demo",
            ],
            map(self._household_row, new_codes, household_phones, pii.encrypt_many(household_phones)),
        )
        people = [(r, r.data["person"]) for r in records if r.data.get("person")]
        household_ids = existing(Household, "code", [r.values["household_code"] for r, _ in people], "id")
        id_tokens = pii.encrypt_many([p["id_number"] for _, p in people])
        phone_tokens = pii.encrypt_many([p["phone"] for _, p in people])
        persons = copy_rows(
            Person._meta.db_table,
            [
                "household_id",
                "name",
                "sex",
                "birth_date",
                "ethnicity",
                "id_number_encrypted",
                "id_number_hash",
                "id_number_masked",
                "phone_encrypted",
                "phone_masked",
                "tags",
                "is_demo",
            ],
            (
                [
                    household_ids[r.values["household_code"]]["id"],
                    p["name"],
                    p["sex"],
                    p["birth_date"],
                    p["ethnicity"],
                    id_token,
                    p["id_hash"],
                    pii.mask_id_number(p["id_number"]),
                    phone_token,
                    pii.mask_phone(p["phone"]),
                    p["tags"],
                    False,
                ]
                for (r, p), id_token, phone_token in zip(people, id_tokens, phone_tokens, strict=True)
            ),
        )
        return {"户": households, "实有人口": persons}

    def _household_row(self, code: str, phone: str, phone_token: str) -> list:
        merged = self.merged[code]
        building = self.buildings[merged["building_code"]]
        return [
            code,
            building["id"],
            merged.get("unit", ""),
            merged.get("room", ""),
            merged.get("household_type", Household.Type.RESIDENT),
            merged.get("head_name", ""),
            phone_token,
            pii.mask_phone(phone),
            # Households carry their building's grid (see Household.grid); the building's grid
            # itself was derived spatially when the building was registered.
            building["grid_id"],
            False,
        ]


def _registered_value(household: dict, name: str) -> str:
    if name == "building_code":
        return household["building__code"]
    if name == "household_phone":
        return pii.decrypt(household["phone_encrypted"])
    return household[name]


def _phone(record: Record, value: str, label: str) -> str | None:
    try:
        return pii.normalize_phone(value)
    except pii.InvalidPhone:
        record.problems.append(f"{label}“{value}”格式无效（手机11位，固话如 023-68123456）")
        return None


def _id_number(record: Record, value: str) -> str | None:
    if not value:
        record.problems.append("身份证号为空")
        return None
    if looks_like_spreadsheet_number(value):
        record.problems.append("身份证号被表格保存成了数字（科学计数法），末尾数字已丢失；请把该列设为文本后重新填写")
        return None
    try:
        return pii.normalize_id_number(value)
    except pii.InvalidIdNumber as error:
        record.problems.append(str(error))
        return None
