"""The spatial register: regions, grids, buildings, households, persons, facilities.

Storage SRID is settings.STORAGE_SRID (4326). Every spatial column has a named GiST index
and a validity check; areas are computed by the database on geography.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.db.models import Q
from django.utils import timezone

SRID = settings.STORAGE_SRID


class GeographyArea(models.Func):
    """Area in square metres on the spheroid; immutable, so usable in a generated column."""

    template = "ST_Area(%(expressions)s::geography)"
    output_field = models.FloatField()


class WebMercator(models.Func):
    """The geometry in EPSG:3857 (web mercator), for vector tiles; immutable, so usable in a generated column."""

    template = "ST_Transform(%(expressions)s, 3857)"


def _valid(field: str, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(name=name, condition=Q(**{f"{field}__isvalid": True}))


def _digits(field: str, count: int, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(name=name, condition=Q(**{f"{field}__regex": rf"^[0-9]{{{count}}}$"}))


class Department(models.Model):
    """An organisation that handles cases or is responsible for places: 专业部门 or 责任单位."""

    class Kind(models.TextChoices):
        PROFESSIONAL = "professional", "专业部门"
        RESPONSIBLE_UNIT = "responsible_unit", "责任单位"
        STREET_OFFICE = "street_office", "街道科室"
        OTHER = "other", "其他"

    code = models.CharField("部门编码", max_length=32, unique=True)
    name = models.CharField("名称", max_length=100)
    kind = models.CharField("类型", max_length=32, choices=Kind.choices, default=Kind.PROFESSIONAL)
    phone = models.CharField("联系电话", max_length=30, blank=True)
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        verbose_name = "部门/单位"
        verbose_name_plural = "部门/单位"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class Region(models.Model):
    code = models.CharField("代码", max_length=12, unique=True)
    name = models.CharField("名称", max_length=100)
    geom = models.MultiPolygonField("边界", srid=SRID, spatial_index=False)
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        abstract = True
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class District(Region):
    """区/县, coded by GB/T 2260 (6 digits)."""

    class Meta(Region.Meta):
        verbose_name = "区县"
        verbose_name_plural = "区县"
        indexes = [GistIndex(fields=["geom"], name="district_geom_gist")]
        constraints = [_valid("geom", "district_geom_valid"), _digits("code", 6, "district_code_6_digits")]


class Street(Region):
    """街道/镇: district code + 3 digits (001-099 街道, 100-199 镇)."""

    district = models.ForeignKey(District, verbose_name="区县", on_delete=models.PROTECT, related_name="streets")

    class Meta(Region.Meta):
        verbose_name = "街道/镇"
        verbose_name_plural = "街道/镇"
        indexes = [GistIndex(fields=["geom"], name="street_geom_gist")]
        constraints = [_valid("geom", "street_geom_valid"), _digits("code", 9, "street_code_9_digits")]


class Community(Region):
    """社区/村: street code + 3 digits."""

    street = models.ForeignKey(Street, verbose_name="街道", on_delete=models.PROTECT, related_name="communities")

    class Meta(Region.Meta):
        verbose_name = "社区/村"
        verbose_name_plural = "社区/村"
        indexes = [GistIndex(fields=["geom"], name="community_geom_gist")]
        constraints = [_valid("geom", "community_geom_valid"), _digits("code", 12, "community_code_12_digits")]


class Grid(models.Model):
    """网格: a single polygon inside one community, coded community code + 3-digit serial.

    A grid is valid from valid_from (inclusive) to valid_to (exclusive, null = still valid).
    Redrawing ends old grids and starts new ones; codes are never reused for another area.
    """

    code = models.CharField("网格编码", max_length=15, unique=True)
    name = models.CharField("名称", max_length=100)
    community = models.ForeignKey(Community, verbose_name="社区", on_delete=models.PROTECT, related_name="grids")
    responsible_unit = models.ForeignKey(
        Department, verbose_name="责任主体", null=True, blank=True, on_delete=models.PROTECT, related_name="grids"
    )
    geom = models.PolygonField("边界", srid=SRID, spatial_index=False)
    area_m2 = models.GeneratedField(
        expression=GeographyArea("geom"), output_field=models.FloatField(), db_persist=True, verbose_name="面积(m²)"
    )
    # Vector tiles are cut in web mercator; storing the transformed polygon saves the
    # per-request ST_Transform of every grid in the tile (docs/performance.md §5). Tiles
    # still choose their grids with grid_geom_gist, so this column needs no index of its own.
    geom_3857 = models.GeneratedField(
        expression=WebMercator("geom"),
        output_field=models.PolygonField(srid=3857, spatial_index=False),
        db_persist=True,
        verbose_name="边界(Web墨卡托)",
    )
    valid_from = models.DateField("启用日期", default=timezone.localdate)
    valid_to = models.DateField("停用日期", null=True, blank=True)
    workers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="GridAssignment", related_name="grids", verbose_name="网格员", blank=True
    )
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        verbose_name = "网格"
        verbose_name_plural = "网格"
        ordering = ["code"]
        indexes = [GistIndex(fields=["geom"], name="grid_geom_gist")]
        constraints = [
            _valid("geom", "grid_geom_valid"),
            _digits("code", 15, "grid_code_15_digits"),
            models.CheckConstraint(
                name="grid_validity_period_ordered",
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"


class GridCell(models.Model):
    """A cell of 1/8000° (≈ 12 × 14 m) lying strictly inside one grid, for the grid's validity period.

    Kept by triggers on geodata_grid (migration 0007_grid_cells), whatever writes the grids.
    A row exists only where no other grid with an overlapping validity period touches the
    cell, so the point → grid look-up (geodata.services) can take the cell's grid without
    a spatial test; points in cells without a row (near an edge) get the exact test.
    """

    CELLS_PER_DEGREE = 8000
    # Derived rows, kept by database triggers: whoever deletes or replaces grids need not
    # carry them over (geodata.demo.store.outside_references skips such models).
    DERIVED_BY_TRIGGERS = True

    cell_y = models.IntegerField("行")
    cell_x = models.IntegerField("列")
    grid = models.ForeignKey(Grid, verbose_name="网格", on_delete=models.CASCADE, related_name="+", db_index=False)
    valid_from = models.DateField("启用日期")
    valid_to = models.DateField("停用日期", null=True, blank=True)

    class Meta:
        verbose_name = "网格内部格元"
        verbose_name_plural = "网格内部格元"
        constraints = [
            models.UniqueConstraint(
                fields=["cell_y", "cell_x", "grid"], name="grid_cell_key", include=["valid_from", "valid_to"]
            ),
        ]
        indexes = [models.Index(fields=["grid"], name="grid_cell_grid_idx")]

    def __str__(self) -> str:
        return f"({self.cell_y}, {self.cell_x}) 网格{self.grid_id}"


class GridAssignment(models.Model):
    """Which grid worker (网格员) patrols which grid."""

    grid = models.ForeignKey(Grid, on_delete=models.CASCADE, related_name="assignments")
    worker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grid_assignments")
    is_primary = models.BooleanField("专职网格员", default=True)
    since = models.DateField("起始日期", default=timezone.localdate)

    class Meta:
        verbose_name = "网格员分配"
        verbose_name_plural = "网格员分配"
        constraints = [models.UniqueConstraint(fields=["grid", "worker"], name="grid_assignment_unique")]


class Building(models.Model):
    """楼栋: a footprint where known, and always a location point (inside the footprint)."""

    class Use(models.TextChoices):
        RESIDENTIAL = "residential", "住宅"
        COMMERCIAL = "commercial", "商业"
        MIXED = "mixed", "商住"
        OFFICE = "office", "办公"
        PUBLIC = "public", "公共服务"
        INDUSTRIAL = "industrial", "工业"
        OTHER = "other", "其他"

    code = models.CharField("楼栋编码", max_length=32, unique=True)
    address = models.CharField("地址", max_length=200)
    floors = models.PositiveSmallIntegerField("层数", default=1)
    use = models.CharField("用途", max_length=16, choices=Use.choices, default=Use.RESIDENTIAL)
    footprint = models.MultiPolygonField("基底轮廓", srid=SRID, null=True, blank=True, spatial_index=False)
    location = models.PointField("位置", srid=SRID, spatial_index=False)
    grid = models.ForeignKey(
        Grid, verbose_name="网格", null=True, blank=True, on_delete=models.SET_NULL, related_name="buildings"
    )
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        verbose_name = "楼栋"
        verbose_name_plural = "楼栋"
        ordering = ["code"]
        indexes = [
            GistIndex(fields=["footprint"], name="building_footprint_gist"),
            GistIndex(fields=["location"], name="building_location_gist"),
        ]
        constraints = [
            _valid("footprint", "building_footprint_valid"),
            models.CheckConstraint(name="building_floors_positive", condition=Q(floors__gte=1)),
        ]

    def __str__(self) -> str:
        return self.address


class Household(models.Model):
    """户. Phone numbers are encrypted; only the masked form is stored in clear."""

    class Type(models.TextChoices):
        REGISTERED = "registered", "户籍户"
        RESIDENT = "resident", "常住户"
        FLOATING = "floating", "流动户"
        RENTAL = "rental", "出租户"

    code = models.CharField("户编号", max_length=40, unique=True)
    building = models.ForeignKey(Building, verbose_name="楼栋", on_delete=models.PROTECT, related_name="households")
    unit = models.CharField("单元", max_length=10, blank=True)
    room = models.CharField("房号", max_length=20, blank=True)
    household_type = models.CharField("户类型", max_length=16, choices=Type.choices, default=Type.RESIDENT)
    head_name = models.CharField("户主姓名", max_length=50, blank=True)
    phone_encrypted = models.TextField(blank=True, editable=False)
    phone_masked = models.CharField("联系电话", max_length=20, blank=True, editable=False)
    # Denormalised from the building so that per-grid counts need no join; kept in step by
    # the same set-based statement that assigns buildings to grids.
    grid = models.ForeignKey(
        Grid, verbose_name="网格", null=True, blank=True, on_delete=models.SET_NULL, related_name="households"
    )
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        verbose_name = "户"
        verbose_name_plural = "户"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.building.address} {self.unit}{self.room}"


class PersonTag(models.TextChoices):
    """Groups a grid worker follows (重点关注人群)."""

    ELDERLY_ALONE = "elderly_alone", "独居老人"
    LOW_INCOME = "low_income", "低保"
    DISABLED = "disabled", "残疾"
    KEY_PERSON = "key_person", "重点人员"
    LEFT_BEHIND_CHILD = "left_behind_child", "留守儿童"
    VETERAN = "veteran", "优抚对象"


class Person(models.Model):
    """实有人口. The ID number is stored encrypted, with a keyed hash for look-up."""

    class Sex(models.TextChoices):
        MALE = "M", "男"
        FEMALE = "F", "女"

    household = models.ForeignKey(Household, verbose_name="户", on_delete=models.PROTECT, related_name="persons")
    name = models.CharField("姓名", max_length=50)
    sex = models.CharField("性别", max_length=1, choices=Sex.choices)
    birth_date = models.DateField("出生日期")
    ethnicity = models.CharField("民族", max_length=20, default="汉族")
    id_number_encrypted = models.TextField(editable=False)
    id_number_hash = models.CharField(max_length=64, unique=True, editable=False)
    id_number_masked = models.CharField("身份证号", max_length=18, editable=False)
    phone_encrypted = models.TextField(blank=True, editable=False)
    phone_masked = models.CharField("手机", max_length=20, blank=True, editable=False)
    tags = ArrayField(
        models.CharField(max_length=32, choices=PersonTag.choices), verbose_name="关注类别", default=list, blank=True
    )
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        verbose_name = "实有人口"
        verbose_name_plural = "实有人口"
        ordering = ["id"]
        permissions = [
            ("reveal_personal_data", "可查看本人负责范围内的身份证号和电话明文（留痕）"),
            ("reveal_personal_data_anywhere", "可查看全辖区的身份证号和电话明文（留痕）"),
            ("view_population", "可查看人口统计数（实有人口、户数、年龄结构、重点关注人数）"),
        ]
        indexes = [GinIndex(fields=["tags"], name="person_tags_gin")]

    def __str__(self) -> str:
        return f"{self.name}（{self.id_number_masked}）"


class FacilityType(models.Model):
    """部件 大类/小类 (DESIGN.md §3): 01 公用设施, 02 道路交通, 03 市容环境, 04 园林绿化, 05 房屋土地, 06 其他设施."""

    major_code = models.CharField("大类代码", max_length=2)
    major_name = models.CharField("大类", max_length=30)
    minor_code = models.CharField("小类代码", max_length=2)
    minor_name = models.CharField("小类", max_length=50)

    class Meta:
        verbose_name = "部件类别"
        verbose_name_plural = "部件类别"
        ordering = ["major_code", "minor_code"]
        constraints = [
            models.UniqueConstraint(fields=["major_code", "minor_code"], name="facility_type_unique_codes"),
            _digits("major_code", 2, "facility_type_major_2_digits"),
            _digits("minor_code", 2, "facility_type_minor_2_digits"),
        ]

    def __str__(self) -> str:
        return f"{self.major_code}{self.minor_code} {self.major_name}/{self.minor_name}"


class Facility(models.Model):
    """城市部件: 16-digit id = 6-digit county + 2 大类 + 2 小类 + 6-digit serial."""

    class Status(models.TextChoices):
        INTACT = "intact", "完好"
        DAMAGED = "damaged", "破损"
        MISSING = "missing", "丢失"
        OCCUPIED = "occupied", "占用"
        DECOMMISSIONED = "decommissioned", "废弃"

    code = models.CharField("部件编码", max_length=16, unique=True)
    facility_type = models.ForeignKey(
        FacilityType, verbose_name="类别", on_delete=models.PROTECT, related_name="facilities"
    )
    name = models.CharField("名称", max_length=100, blank=True)
    status = models.CharField("状态", max_length=16, choices=Status.choices, default=Status.INTACT)
    location = models.PointField("位置", srid=SRID, spatial_index=False)
    address = models.CharField("地址", max_length=200, blank=True)
    grid = models.ForeignKey(
        Grid, verbose_name="网格", null=True, blank=True, on_delete=models.SET_NULL, related_name="facilities"
    )
    owner_department = models.ForeignKey(
        Department, verbose_name="权属单位", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    manager_department = models.ForeignKey(
        Department, verbose_name="主管部门", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    maintainer_department = models.ForeignKey(
        Department,
        verbose_name="养护单位",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="maintained_facilities",
    )
    is_demo = models.BooleanField("示例数据", default=False)

    class Meta:
        verbose_name = "城市部件"
        verbose_name_plural = "城市部件"
        ordering = ["code"]
        indexes = [GistIndex(fields=["location"], name="facility_location_gist")]
        constraints = [_digits("code", 16, "facility_code_16_digits")]

    def __str__(self) -> str:
        return f"{self.facility_type.minor_name} {self.code}"


class PersonalDataReveal(models.Model):
    """Append-only log of every reveal of an ID number or phone in clear (PIPL)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    household = models.ForeignKey(Household, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    field = models.CharField("字段", max_length=32)
    reason = models.CharField("原因", max_length=200)
    revealed_at = models.DateTimeField("时间", default=timezone.now)

    class Meta:
        verbose_name = "个人信息查看记录"
        verbose_name_plural = "个人信息查看记录"
        ordering = ["-revealed_at"]


# --- grid design (网格划分方案): geodata.grid_design, geodata.grid_redraw ---------------------


class GeographyPolsbyPopper(models.Func):
    """Compactness 4πA/P² on the spheroid (1 for a circle, π/4 for a square); immutable."""

    template = (
        "(4 * pi() * ST_Area(%(expressions)s::geography)"
        " / NULLIF(power(ST_Perimeter(%(expressions)s::geography), 2), 0))"
    )
    output_field = models.FloatField()


class GridDesignProposal(models.Model):
    """A proposed tiling of one community (网格划分方案), previewed and adjusted before adoption.

    Adoption (geodata.grid_redraw.grid_proposal_adopt) ends the community's grids that the
    proposal changes and starts new ones; the proposal keeps the adoption report.
    """

    class Basis(models.TextChoices):
        HOUSEHOLDS = "households", "按户数"
        AREA = "area", "按面积"

    class Status(models.TextChoices):
        DRAFT = "draft", "草案"
        ADOPTED = "adopted", "已采用"

    community = models.ForeignKey(
        Community, verbose_name="社区", on_delete=models.PROTECT, related_name="grid_proposals"
    )
    basis = models.CharField("划分依据", max_length=16, choices=Basis.choices)
    households_min = models.PositiveIntegerField("每格户数下限", null=True, blank=True)
    households_max = models.PositiveIntegerField("每格户数上限", null=True, blank=True)
    target_area_m2 = models.FloatField("每格目标面积(m²)", null=True, blank=True)
    status = models.CharField("状态", max_length=16, choices=Status.choices, default=Status.DRAFT)
    note = models.CharField("说明", max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="创建人",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField("创建时间", default=timezone.now)
    adopted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="采用人",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    adopted_on = models.DateField("采用日期", null=True, blank=True)
    adoption_report = models.JSONField("采用报告", default=dict, blank=True)

    class Meta:
        verbose_name = "网格划分方案"
        verbose_name_plural = "网格划分方案"
        ordering = ["-created_at", "-id"]
        permissions = [("design_grids", "可生成、调整和采用网格划分方案")]
        constraints = [
            models.CheckConstraint(
                name="grid_proposal_target_matches_basis",
                condition=(
                    Q(
                        basis="households",
                        households_min__gte=1,
                        households_max__gte=models.F("households_min"),
                        target_area_m2__isnull=True,
                    )
                    | Q(basis="area", target_area_m2__gt=0, households_min__isnull=True, households_max__isnull=True)
                ),
            ),
            models.CheckConstraint(
                name="grid_proposal_adopted_has_date",
                condition=Q(status="draft", adopted_on__isnull=True) | Q(status="adopted", adopted_on__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.community.name} 网格划分方案 #{self.pk}（{self.get_status_display()}）"


class ProposedGrid(models.Model):
    """One grid of a proposal. `position` is its place in code order (west→east, north→south)."""

    proposal = models.ForeignKey(GridDesignProposal, on_delete=models.CASCADE, related_name="grids")
    position = models.PositiveSmallIntegerField("序号")
    geom = models.PolygonField("边界", srid=SRID, spatial_index=False)
    area_m2 = models.GeneratedField(
        expression=GeographyArea("geom"), output_field=models.FloatField(), db_persist=True, verbose_name="面积(m²)"
    )
    compactness = models.GeneratedField(
        expression=GeographyPolsbyPopper("geom"),
        output_field=models.FloatField(),
        db_persist=True,
        verbose_name="紧凑度(Polsby–Popper)",
    )
    # Counted by the database (households whose building's location the grid covers) each
    # time the proposal changes; a snapshot, since the register keeps changing.
    households = models.PositiveIntegerField("户数", default=0)
    buildings = models.PositiveIntegerField("楼栋数", default=0)
    # The grid this one became on adoption: an unchanged current grid, or a new one.
    adopted_grid = models.ForeignKey(
        Grid, verbose_name="采用后的网格", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = "方案网格"
        verbose_name_plural = "方案网格"
        ordering = ["proposal", "position"]
        indexes = [GistIndex(fields=["geom"], name="proposed_grid_geom_gist")]
        constraints = [
            _valid("geom", "proposed_grid_geom_valid"),
            models.UniqueConstraint(
                fields=["proposal", "position"],
                name="proposed_grid_unique_position",
                deferrable=models.Deferrable.DEFERRED,
            ),
        ]

    def __str__(self) -> str:
        return f"方案 #{self.proposal_id} 第 {self.position} 格"
