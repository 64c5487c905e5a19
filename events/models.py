"""The case lifecycle: catalogue, routing, cases, photos, history, calendar overrides, alerts.

Models hold data and database invariants only. Every change of a case's state goes
through events.services, which follows the table in events.workflow; `save()` has no
side effects and there are no signals.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GistIndex
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.utils import timezone

from events.workflow import OPEN_STATES, TIMED_STATES, Action, State, Step
from geodata.models import Community, Department, Facility, FacilityType, Grid, Street

SRID = settings.STORAGE_SRID


def _digits(field: str, count: int, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(name=name, condition=Q(**{f"{field}__regex": rf"^[0-9]{{{count}}}$"}))


def _positive(field: str, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(name=name, condition=Q(**{f"{field}__gt": 0}))


class Urgency(models.TextChoices):
    NORMAL = "normal", "一般"
    URGENT = "urgent", "紧急"


class AreaClass(models.TextChoices):
    """Area classes of the 处置时限 tables: A 主次干道/重点地区, B 一般街巷, C 背街小巷/城乡结合部."""

    A = "A", "A类区域"
    B = "B", "B类区域"
    C = "C", "C类区域"


class UrgeLevel(models.TextChoices):
    NORMAL = "normal", "普通督办"
    YELLOW = "yellow", "黄牌督办"
    RED = "red", "红牌督办"


class LimitUnit(models.TextChoices):
    HOURS = "hours", "工作时"
    DAYS = "days", "工作日"


def _hours(verbose: str, default: str) -> models.DecimalField:
    return models.DecimalField(verbose, max_digits=5, decimal_places=1, default=Decimal(default))


class Category(models.Model):
    """A 大类/小类 of the catalogue with its 立案条件, 结案条件 and the time limit of every step."""

    class Kind(models.TextChoices):
        COMPONENT = "C", "部件"
        EVENT = "E", "事件"

    kind = models.CharField("类型", max_length=1, choices=Kind.choices)
    major_code = models.CharField("大类代码", max_length=2)
    major_name = models.CharField("大类", max_length=30)
    minor_code = models.CharField("小类代码", max_length=2)
    minor_name = models.CharField("小类", max_length=50)
    filing_condition = models.TextField("立案条件")
    closing_condition = models.TextField("结案条件")
    verify_hours = _hours("核实时限（工作时）", "2")
    filing_hours = _hours("立案时限（工作时）", "1")
    dispatch_hours = _hours("派遣时限（工作时）", "1")
    handling_unit_normal = models.CharField(
        "一般案件处置时限单位", max_length=8, choices=LimitUnit.choices, default=LimitUnit.HOURS
    )
    handling_normal_a = _hours("一般·A类区域处置时限", "4")
    handling_normal_b = _hours("一般·B类区域处置时限", "8")
    handling_normal_c = _hours("一般·C类区域处置时限", "16")
    handling_unit_urgent = models.CharField(
        "紧急案件处置时限单位", max_length=8, choices=LimitUnit.choices, default=LimitUnit.HOURS
    )
    handling_urgent_a = _hours("紧急·A类区域处置时限", "1")
    handling_urgent_b = _hours("紧急·B类区域处置时限", "2")
    handling_urgent_c = _hours("紧急·C类区域处置时限", "4")
    check_hours = _hours("核查时限（工作时）", "2")
    close_hours = _hours("结案时限（工作时）", "1")
    default_department = models.ForeignKey(
        Department,
        verbose_name="默认处置部门",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="default_categories",
    )
    facility_type = models.ForeignKey(
        FacilityType,
        verbose_name="对应部件类别",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="case_categories",
    )
    is_active = models.BooleanField("启用", default=True)

    class Meta:
        verbose_name = "案件类别"
        verbose_name_plural = "案件类别"
        ordering = ["kind", "major_code", "minor_code"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "major_code", "minor_code"], name="category_unique_codes"),
            _digits("major_code", 2, "category_major_2_digits"),
            _digits("minor_code", 2, "category_minor_2_digits"),
            models.CheckConstraint(
                name="category_facility_type_only_for_components",
                condition=Q(kind="C") | Q(facility_type__isnull=True),
            ),
            *(
                _positive(f, f"category_{f}_positive")
                for f in (
                    "verify_hours",
                    "filing_hours",
                    "dispatch_hours",
                    "handling_normal_a",
                    "handling_normal_b",
                    "handling_normal_c",
                    "handling_urgent_a",
                    "handling_urgent_b",
                    "handling_urgent_c",
                    "check_hours",
                    "close_hours",
                )
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.major_name}/{self.minor_name}"

    @property
    def code(self) -> str:
        return f"{self.kind}{self.major_code}{self.minor_code}"

    def handling_limit(self, *, urgency: str, area_class: str) -> tuple[Decimal, str]:
        """(amount, unit) of the 处置 step for an urgency and an area class."""
        level = "urgent" if urgency == Urgency.URGENT else "normal"
        amount = getattr(self, f"handling_{level}_{area_class.lower()}")
        return amount, getattr(self, f"handling_unit_{level}")

    def step_limit(self, *, step: str, urgency: str, area_class: str) -> tuple[Decimal, str]:
        """(amount, unit) of any timed step."""
        if step == Step.HANDLE:
            return self.handling_limit(urgency=urgency, area_class=area_class)
        field = {
            Step.VERIFY: "verify_hours",
            Step.FILE: "filing_hours",
            Step.DISPATCH: "dispatch_hours",
            Step.CHECK: "check_hours",
            Step.CLOSE: "close_hours",
        }[Step(step)]
        return getattr(self, field), LimitUnit.HOURS


class RoutingRule(models.Model):
    """派遣规则: cases of a category (optionally only in a street or community) go to a department.

    Lower priority numbers win; several rules with the same best priority make the
    suggestion ambiguous, and the dispatcher chooses.
    """

    category = models.ForeignKey(Category, verbose_name="案件类别", on_delete=models.CASCADE, related_name="rules")
    department = models.ForeignKey(
        Department, verbose_name="处置部门", on_delete=models.PROTECT, related_name="routing_rules"
    )
    street = models.ForeignKey(
        Street, verbose_name="限定街道", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    community = models.ForeignKey(
        Community, verbose_name="限定社区", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    priority = models.PositiveSmallIntegerField("优先级（数字小者优先）", default=100)
    is_active = models.BooleanField("启用", default=True)
    note = models.CharField("说明", max_length=200, blank=True)

    class Meta:
        verbose_name = "派遣规则"
        verbose_name_plural = "派遣规则"
        ordering = ["category", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["category", "department", "street", "community"],
                name="routing_rule_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} → {self.department}"


class GridAreaClass(models.Model):
    """The 处置时限 area class (A/B/C) of a grid; grids without a row are class B."""

    grid = models.OneToOneField(
        Grid, verbose_name="网格", primary_key=True, on_delete=models.CASCADE, related_name="area_class"
    )
    area_class = models.CharField("区域类别", max_length=1, choices=AreaClass.choices)

    class Meta:
        verbose_name = "网格区域类别"
        verbose_name_plural = "网格区域类别"

    def __str__(self) -> str:
        return f"{self.grid} {self.get_area_class_display()}"


class WorkingDayOverride(models.Model):
    """A local change to the working calendar: a day off or a make-up working day (调休).

    Overrides win over chinesecalendar and over the fallback (weekends + `holidays`) used
    for years chinesecalendar does not know yet.
    """

    day = models.DateField("日期", unique=True)
    is_working_day = models.BooleanField("是否工作日")
    note = models.CharField("说明", max_length=100, blank=True)

    class Meta:
        verbose_name = "工作日调整"
        verbose_name_plural = "工作日调整"
        ordering = ["day"]

    def __str__(self) -> str:
        return f"{self.day} {'上班' if self.is_working_day else '休息'}"


class CaseNumberCounter(models.Model):
    """Last serial used per case-number prefix (C/E + 大类 + 小类 + yyyyMMdd); advanced by an UPSERT."""

    prefix = models.CharField(max_length=16, primary_key=True)
    last = models.PositiveIntegerField()

    class Meta:
        verbose_name = "案件编号计数"
        verbose_name_plural = "案件编号计数"


class Case(models.Model):
    """案件/案卷. Only events.services changes it; every change leaves a CaseHistory row."""

    class Source(models.TextChoices):
        GRID_WORKER = "grid_worker", "网格员上报"
        HOTLINE = "hotline", "12345热线"
        PUBLIC = "public", "公众/Open311"
        VIDEO = "video", "视频监控"

    number = models.CharField("案件编号", max_length=32, unique=True)
    category = models.ForeignKey(Category, verbose_name="类别", on_delete=models.PROTECT, related_name="cases")
    source = models.CharField("来源", max_length=16, choices=Source.choices)
    # 漏报: the source of the earliest report among this case and the cases merged into it,
    # written when a duplicate is absorbed; null while nothing was merged into the case
    # (then its own source is the first).
    first_source = models.CharField("首报来源", max_length=16, choices=Source.choices, null=True, blank=True)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="上报人",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reported_cases",
    )
    reporter_name = models.CharField("反映人", max_length=50, blank=True)
    reporter_phone_encrypted = models.TextField(blank=True, editable=False)
    reporter_phone_masked = models.CharField("反映人电话", max_length=20, blank=True, editable=False)
    external_id = models.CharField("外部编号", max_length=64, blank=True)
    client_key = models.CharField("客户端幂等键", max_length=64, null=True, blank=True, unique=True)
    location = models.PointField("位置", srid=SRID, spatial_index=False)
    # Found at report time and kept even when grids are redrawn later.
    grid = models.ForeignKey(Grid, verbose_name="网格", on_delete=models.PROTECT, related_name="cases")
    community = models.ForeignKey(Community, verbose_name="社区", on_delete=models.PROTECT, related_name="cases")
    street = models.ForeignKey(Street, verbose_name="街道", on_delete=models.PROTECT, related_name="cases")
    area_class = models.CharField("区域类别", max_length=1, choices=AreaClass.choices, default=AreaClass.B)
    facility = models.ForeignKey(
        Facility, verbose_name="部件", null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    description = models.TextField("问题描述")
    address = models.CharField("地址", max_length=200, blank=True)
    urgency = models.CharField("紧急程度", max_length=8, choices=Urgency.choices, default=Urgency.NORMAL)
    state = models.CharField("状态", max_length=20, choices=State.choices)
    suggested_department = models.ForeignKey(
        Department, verbose_name="建议处置部门", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    current_department = models.ForeignKey(
        Department,
        verbose_name="责任部门",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cases",
    )
    current_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="当前处理人",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_cases",
    )
    merged_into = models.ForeignKey(
        "self", verbose_name="合并至", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_cases"
    )
    # The running step and its time limit on the working calendar.
    step = models.CharField("当前环节", max_length=16, choices=Step.choices, blank=True)
    step_started_at = models.DateTimeField("环节开始", null=True, blank=True)
    warn_at = models.DateTimeField("黄灯时间", null=True, blank=True)  # 80 % of the step's working time
    deadline = models.DateTimeField("环节时限", null=True, blank=True)
    # 应结案时间: the 处置 deadline set at dispatch (moved by an approved extension).
    due_at = models.DateTimeField("应结案时间", null=True, blank=True)
    # Milestones.
    reported_at = models.DateTimeField("上报时间")
    verified_at = models.DateTimeField("核实时间", null=True, blank=True)
    filed_at = models.DateTimeField("立案时间", null=True, blank=True)
    dispatched_at = models.DateTimeField("派遣时间", null=True, blank=True)
    handled_at = models.DateTimeField("处置反馈时间", null=True, blank=True)
    checked_at = models.DateTimeField("核查时间", null=True, blank=True)
    closed_at = models.DateTimeField("结案时间", null=True, blank=True)
    voided_at = models.DateTimeField("作废时间", null=True, blank=True)
    merged_at = models.DateTimeField("合并时间", null=True, blank=True)
    deferred_at = models.DateTimeField("挂账时间", null=True, blank=True)
    rework_count = models.PositiveSmallIntegerField("返工次数", default=0)
    return_count = models.PositiveSmallIntegerField("回退次数", default=0)
    extension_count = models.PositiveSmallIntegerField("延时次数", default=0)
    urge_count = models.PositiveSmallIntegerField("督办次数", default=0)

    class Meta:
        verbose_name = "案件"
        verbose_name_plural = "案件"
        ordering = ["-reported_at", "-id"]
        indexes = [
            GistIndex(fields=["location"], name="case_location_gist"),
            # Overdue and turning-yellow cases are found through these partial indexes,
            # which hold only cases with a running timer.
            models.Index(
                fields=["state", "deadline"], name="case_open_deadline_idx", condition=Q(state__in=sorted(TIMED_STATES))
            ),
            models.Index(fields=["warn_at"], name="case_open_warn_idx", condition=Q(state__in=sorted(TIMED_STATES))),
            # 综合评价 (events.indicators) reads cases by due date and by filing date from these
            # covering indexes alone (index-only scans).
            models.Index(
                fields=["due_at"],
                name="case_due_cover_idx",
                include=[
                    "id",
                    "state",
                    "street",
                    "community",
                    "grid",
                    "current_department",
                    "closed_at",
                    "handled_at",
                ],
            ),
            models.Index(fields=["category", "reported_at"], name="case_category_reported_idx"),
            models.Index(
                fields=["filed_at"],
                name="case_filed_cover_idx",
                include=["id", "street", "community", "grid", "source", "first_source"],
            ),
            # The dashboard's open-cases layer and markers, and period layers per grid.
            models.Index(fields=["grid"], name="case_open_grid_idx", condition=Q(state__in=sorted(OPEN_STATES))),
            models.Index(fields=["reported_at", "grid"], name="case_reported_grid_idx"),
        ]
        constraints = [
            models.CheckConstraint(name="case_state_not_new", condition=~Q(state=State.NEW)),
            models.CheckConstraint(
                name="case_merged_has_target",
                condition=Q(state=State.MERGED, merged_into__isnull=False)
                | (~Q(state=State.MERGED) & Q(merged_into__isnull=True)),
            ),
            models.CheckConstraint(
                name="case_number_format", condition=Q(number__regex=r"^[CE][0-9]{4}[0-9]{8}[0-9]{4,}$")
            ),
            models.CheckConstraint(
                name="case_deadline_after_start",
                condition=Q(deadline__isnull=True) | Q(deadline__gte=models.F("step_started_at")),
            ),
        ]

    def __str__(self) -> str:
        return self.number


def _photo_path(instance: "CasePhoto", filename: str) -> str:
    # Random names: the uploaded file name is never used, the extension follows the
    # format Pillow decoded.
    extension = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}.get(instance.image_format, "bin")
    return f"case_photos/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


class CasePhoto(models.Model):
    class Stage(models.TextChoices):
        BEFORE = "before", "处置前"
        AFTER = "after", "处置后"
        VERIFY = "verify", "核实/核查"

    case = models.ForeignKey(Case, verbose_name="案件", on_delete=models.PROTECT, related_name="photos")
    history = models.ForeignKey(
        "CaseHistory",
        verbose_name="所属操作",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="attachments",
    )
    stage = models.CharField("阶段", max_length=8, choices=Stage.choices)
    image = models.FileField("照片", upload_to=_photo_path, max_length=200)
    image_format = models.CharField("格式", max_length=8)
    width = models.PositiveIntegerField("宽")
    height = models.PositiveIntegerField("高")
    size_bytes = models.PositiveIntegerField("大小（字节）")
    sha256 = models.CharField(max_length=64)
    taken_at = models.DateTimeField("拍摄时间（EXIF）", null=True, blank=True)
    taken_location = models.PointField("拍摄位置（EXIF）", srid=SRID, null=True, blank=True, spatial_index=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField("上传时间", default=timezone.now)

    class Meta:
        verbose_name = "案件照片"
        verbose_name_plural = "案件照片"
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return f"{self.case} {self.get_stage_display()}"


class CaseHistory(models.Model):
    """One append-only row per transition: the evidence for evaluation and disputes.

    A database trigger (migration 0002) refuses UPDATE and DELETE on this table.
    """

    case = models.ForeignKey(Case, verbose_name="案件", on_delete=models.PROTECT, related_name="history")
    action = models.CharField("操作", max_length=24, choices=Action.choices)
    from_state = models.CharField("原状态", max_length=20, choices=State.choices)
    to_state = models.CharField("新状态", max_length=20, choices=State.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="操作人",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="case_actions",
    )
    actor_role = models.CharField("角色", max_length=32)
    # The department the row concerns: the one dispatched to, handling, returning, reworking.
    department = models.ForeignKey(
        Department, verbose_name="相关部门", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField("意见", blank=True)
    payload = models.JSONField("数据", default=dict, blank=True, encoder=DjangoJSONEncoder)
    # Deadline of the step this action completed (null when no step was running): an
    # action is on time when created_at <= step_deadline.
    step_deadline = models.DateTimeField("环节时限", null=True, blank=True)
    # A 回退 points at the 派遣 it undoes (准确派遣率).
    reverts = models.ForeignKey(
        "self", verbose_name="撤销的操作", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The case's place when the row was written, copied so that 综合评价 counts history rows
    # per street, community and grid without joining cases (docs/performance.md §7). Cases
    # keep the place they were reported in, so these equal the case's; were a case ever
    # re-attributed, its rows would keep the place of the time of the step.
    street = models.ForeignKey(Street, verbose_name="街道", on_delete=models.PROTECT, related_name="+", db_index=False)
    community = models.ForeignKey(
        Community, verbose_name="社区", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    grid = models.ForeignKey(Grid, verbose_name="网格", on_delete=models.PROTECT, related_name="+", db_index=False)
    created_at = models.DateTimeField("时间", default=timezone.now)

    class Meta:
        verbose_name = "案件流转记录"
        verbose_name_plural = "案件流转记录"
        ordering = ["id"]
        indexes = [
            # Covering for 综合评价: its counts per place, department and person are index-only.
            models.Index(
                fields=["action", "created_at"],
                name="history_action_time_cover_idx",
                include=["id", "street", "community", "grid", "department", "actor", "step_deadline"],
            ),
            models.Index(fields=["created_at"], name="history_time_idx"),  # the dashboard's live poll
            models.Index(fields=["actor", "created_at"], name="history_actor_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.case} {self.get_action_display()}"


class CaseAlert(models.Model):
    """A yellow or red timer alert, recorded once per level and step (the unique key makes re-runs harmless)."""

    class Level(models.TextChoices):
        YELLOW = "yellow", "黄灯"
        RED = "red", "红灯"

    case = models.ForeignKey(Case, verbose_name="案件", on_delete=models.PROTECT, related_name="alerts")
    level = models.CharField("级别", max_length=8, choices=Level.choices)
    step = models.CharField("环节", max_length=16, choices=Step.choices)
    step_started_at = models.DateTimeField("环节开始")
    deadline = models.DateTimeField("环节时限")
    department = models.ForeignKey(
        Department, verbose_name="责任部门", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField("时间", default=timezone.now)

    class Meta:
        verbose_name = "超时预警"
        verbose_name_plural = "超时预警"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["case", "step_started_at", "level"], name="case_alert_once_per_level"),
        ]

    def __str__(self) -> str:
        return f"{self.case} {self.get_level_display()}"


class IndicatorSnapshot(models.Model):
    """The indicators of one day, stored by the daily job (one row per kind of table)."""

    day = models.DateField("日期")
    kind = models.CharField("类别", max_length=32)
    rows = models.JSONField("数据", encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField("生成时间", default=timezone.now)

    class Meta:
        verbose_name = "指标快照"
        verbose_name_plural = "指标快照"
        ordering = ["-day", "kind"]
        constraints = [models.UniqueConstraint(fields=["day", "kind"], name="indicator_snapshot_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}"


# The incident rollups live in their own module; importing them here registers the models.
from events.rollups import IncidentDay, IncidentMonth, IncidentYear  # noqa: E402, F401
