"""Import of households and residents (户与人口) from one table, one row per resident."""

import datetime as dt

from django.contrib.gis.geos import Point

from geodata import pii
from geodata.importing.report import ImportMode
from geodata.importing.services import layer_import
from geodata.models import Household, Person
from geodata.services import register_assign_grids
from tests.factories import BuildingFactory, HouseholdFactory, PersonFactory, valid_id_number
from tests.geodata.import_files import X0, Y0, csv_file, read_csv_rows

ELDER = valid_id_number(11, dt.date(1941, 5, 2))  # serial 011: odd, male
DAUGHTER = valid_id_number(22, dt.date(1975, 8, 30))  # serial 022: even, female
TENANT = valid_id_number(33, dt.date(1990, 1, 15))


def wrong_check_digit(id_number: str) -> str:
    return id_number[:-1] + ("1" if id_number[-1] == "0" else "0")


def row(**values) -> dict:
    base = dict.fromkeys(
        [
            "户编号",
            "楼栋编码",
            "单元",
            "房号",
            "户类型",
            "户主姓名",
            "联系电话",
            "姓名",
            "性别",
            "身份证号",
            "手机",
            "关注类别",
        ],
        "",
    )
    base.update(values)
    return base


def buildings():
    south_west = BuildingFactory(code="B01", location=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))
    north_east = BuildingFactory(code="B02", location=Point(X0 + 0.003, Y0 + 0.003, srid=4326))
    register_assign_grids()
    return south_west, north_east


def test_a_gbk_register_creates_households_and_encrypted_residents(district, tmp_path):
    buildings()
    rows = [
        row(
            户编号="H001",
            楼栋编码="B01",
            单元="1",
            房号="0302",
            户类型="户籍",
            户主姓名="张大爷",
            联系电话="023-68123456",
            姓名="张大爷",
            性别="男",
            身份证号=ELDER,
            手机="13800001111",
            关注类别="独居老人，低保",
        ),
        row(户编号="H001", 姓名="张小红", 身份证号=DAUGHTER.lower()),
        row(户编号="H002", 楼栋编码="B02", 户类型="出租户", 姓名="李租客", 身份证号=TENANT, 关注类别=""),
        row(户编号="H003", 楼栋编码="B02", 房号="101"),  # an empty household, no resident yet
    ]
    path = csv_file(tmp_path / "人口.csv", rows, encoding="gbk")

    report = layer_import(layer="population", path=path)

    assert report.ok, report.lines()
    assert report.encoding == "GBK/GB18030"
    assert report.created == {"户": 3, "实有人口": 3}
    h1, h2, h3 = Household.objects.order_by("code").select_related("building", "grid")
    assert (h1.building.code, h1.unit, h1.room, h1.household_type, h1.head_name) == (
        "B01",
        "1",
        "0302",
        "registered",
        "张大爷",
    )
    assert (h1.phone_masked, pii.decrypt(h1.phone_encrypted)) == ("023*****3456", "023-68123456")
    assert (h1.grid.code, h2.grid.code, h3.grid.code) == ("500104001001003", "500104001001002", "500104001001002")
    assert (h2.household_type, h3.room, h3.persons.count()) == ("rental", "101", 0)
    elder = Person.objects.get(name="张大爷")
    assert (elder.household, elder.sex, elder.birth_date, elder.ethnicity) == (h1, "M", dt.date(1941, 5, 2), "汉族")
    assert elder.tags == ["elderly_alone", "low_income"]
    assert elder.id_number_masked == pii.mask_id_number(ELDER)
    assert ELDER not in elder.id_number_encrypted and pii.decrypt(elder.id_number_encrypted) == ELDER
    assert elder.id_number_hash == pii.lookup_hash(ELDER)
    assert (elder.phone_masked, pii.decrypt(elder.phone_encrypted)) == ("138****1111", "13800001111")
    daughter = Person.objects.get(name="张小红")
    assert (daughter.sex, daughter.birth_date, daughter.household) == ("F", dt.date(1975, 8, 30), h1)


def test_bad_check_digits_and_inconsistent_sex_or_birth_date_refuse_the_file(district, tmp_path):
    buildings()
    bad_check = wrong_check_digit(ELDER)
    rows = [
        row(户编号="H001", 楼栋编码="B01", 姓名="甲", 身份证号=bad_check),
        row(户编号="H001", 姓名="乙", 身份证号=DAUGHTER, 性别="男"),
        row(户编号="H001", 姓名="丙", 身份证号=TENANT, 出生日期="1990-01-16"),
        row(户编号="H001", 姓名="丁", 身份证号="5.00104199001150E+17"),
        row(户编号="H001", 姓名="戊", 身份证号="50010419900230001X"),
    ]
    path = csv_file(tmp_path / "p.csv", [dict(r, 出生日期=r.get("出生日期", "")) for r in rows])

    report = layer_import(layer="population", path=path)

    assert report.refused
    assert Household.objects.count() == Person.objects.count() == 0
    expected_char = pii.id_number_check_char(ELDER[:17])
    assert [(p.row, p.messages) for p in report.row_problems] == [
        (2, [f"身份证号校验位错误：应为 {expected_char}，实为 {bad_check[-1]}"]),
        (3, ["性别与身份证号不符（身份证号第17位奇数为男、偶数为女）"]),
        (4, ["出生日期 1990-01-16 与身份证号中的 1990-01-15 不符"]),
        (5, ["身份证号被表格保存成了数字（科学计数法），末尾数字已丢失；请把该列设为文本后重新填写"]),
        (6, ["身份证号中的出生日期 19900230 无效"]),
    ]


def test_duplicates_unknown_buildings_and_conflicting_household_columns(district, tmp_path):
    buildings()
    registered = PersonFactory(household=HouseholdFactory(code="H900", building=BuildingFactory(code="B09")))
    registered_id = pii.decrypt(registered.id_number_encrypted)
    rows = [
        row(户编号="H001", 楼栋编码="B01", 户主姓名="王五", 姓名="王五", 身份证号=ELDER),
        row(户编号="H001", 户主姓名="王六", 姓名="王六", 身份证号=DAUGHTER),
        row(户编号="H002", 楼栋编码="B99", 姓名="赵一", 身份证号=TENANT),
        row(户编号="H003", 楼栋编码="B02", 姓名="钱二", 身份证号=ELDER),
        row(户编号="H004", 楼栋编码="B02", 姓名="孙三", 身份证号=registered_id),
        row(户编号="H900", 楼栋编码="B01", 姓名="周四", 身份证号=valid_id_number(44)),
        row(户编号="H005", 姓名="吴五", 身份证号=valid_id_number(55), 手机="12345", 关注类别="重点"),
    ]
    path = csv_file(tmp_path / "p.csv", rows)

    report = layer_import(layer="population", path=path, mode=ImportMode.PARTIAL)

    assert [(p.row, p.key, p.messages) for p in report.row_problems] == [
        (3, "H001", ["户 H001 的户主姓名“王六”与第 2 行的“王五”不一致"]),
        (
            4,
            "H002",
            ["楼栋编码 B99 未登记，请先导入楼栋", "新户 H002 缺少有效的楼栋编码（新户须填写已登记的楼栋编码）"],
        ),
        (5, "H003", ["身份证号与第 2 行重复"]),
        (6, "H004", ["该身份证号已登记（户 H900）"]),
        (7, "H900", ["楼栋编码“B01”与已登记的户 H900 不一致（登记为“B09”）"]),
        (
            8,
            "H005",
            [
                "手机“12345”格式无效（手机11位，固话如 023-68123456）",
                "关注类别“重点”无法识别，可用：独居老人、低保、残疾、重点人员、留守儿童、优抚对象",
                "新户 H005 缺少有效的楼栋编码（新户须填写已登记的楼栋编码）",
            ],
        ),
    ]
    # H002-H005 are not created: each had only refused rows.
    assert sorted(Household.objects.values_list("code", flat=True)) == ["H001", "H900"]
    assert sorted(Person.objects.values_list("name", flat=True)) == sorted(["王五", registered.name])
    rejected = read_csv_rows(report.problems_file)
    assert [r["户编号"] for r in rejected] == ["H001", "H002", "H003", "H004", "H900", "H005"]
    assert rejected[0]["身份证号"] == DAUGHTER  # handed back whole so that the row can be fixed


def test_a_fixed_row_imported_later_joins_its_household(district, tmp_path):
    buildings()
    first = csv_file(
        tmp_path / "a.csv",
        [
            row(户编号="H001", 楼栋编码="B01", 户类型="常住", 姓名="甲", 身份证号=ELDER),
            row(户编号="H001", 楼栋编码="B01", 户类型="常住", 姓名="乙", 身份证号=wrong_check_digit(DAUGHTER)),
        ],
    )
    report = layer_import(layer="population", path=first, mode=ImportMode.PARTIAL)
    assert report.rows_loaded == 1

    fixed = csv_file(
        tmp_path / "b.csv", [row(户编号="H001", 楼栋编码="B01", 户类型="常住", 姓名="乙", 身份证号=DAUGHTER)]
    )
    again = layer_import(layer="population", path=fixed)

    assert again.ok, again.lines()
    assert again.created == {"户": 0, "实有人口": 1}
    assert Household.objects.count() == 1
    assert sorted(Household.objects.get().persons.values_list("name", flat=True)) == ["乙", "甲"]
