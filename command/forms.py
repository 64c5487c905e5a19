"""Forms of the command-center screens.

One form per workflow action: it validates the HTTP input and calls exactly one service in
`submit`. Which fields are compulsory (a reason, a photo) is read from the transition
table (`Transition.needs_comment`, `Transition.needs_photo`), so no form repeats a rule of
events.workflow. Refusals (TransitionNotAllowed, ActionNotPermitted, ValidationError) come
from the services and are shown by the views.
"""

from __future__ import annotations

import datetime as dt
import uuid
from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar

from django import forms
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import User
from events import indicators, selectors, services, workflow
from events.models import Case, CasePhoto, Category, LimitUnit, UrgeLevel, Urgency
from events.workflow import Action
from geodata import pii
from geodata.models import Department

PHOTO_ACCEPT = "image/jpeg,image/png,image/webp"


class MultiplePhotoInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Zero or more uploaded photos (the services decode and check them)."""

    widget = MultiplePhotoInput(attrs={"accept": PHOTO_ACCEPT})

    def clean(self, data: Any, initial: Any = None) -> list:
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files:
            if self.required:
                raise ValidationError(self.error_messages["required"], code="required")
            return []
        single = super().clean
        return [single(f, initial) for f in files]


def _photo_list(cleaned: dict[str, Any]) -> list:
    return list(cleaned.get("photos") or [])


# --- workflow actions -----------------------------------------------------------------------


class _AbstractFormMetaclass(forms.forms.DeclarativeFieldsMetaclass, ABCMeta):
    """Django's form metaclass with ABCMeta, so a form can declare abstract methods."""


class ActionForm(forms.Form, metaclass=_AbstractFormMetaclass):
    """The fields of one action on one case; `submit` calls the action's service."""

    action: ClassVar[Action]
    reason_label: ClassVar[str] = "理由"
    photo_label: ClassVar[str] = "照片"

    comment = forms.CharField(label="意见", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, case: Case, user: User, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"id_{self.action}_%s")
        super().__init__(*args, **kwargs)
        self.case = case
        self.user = user
        transition = workflow.transition_for(state=case.state, action=self.action, case_number=case.number)
        comment = self.fields["comment"]
        if transition.needs_comment:
            comment.required = True
            comment.label = self.reason_label
            comment.error_messages["required"] = f"请填写{self.reason_label}"
        else:
            comment.label = "意见（可选）"
        if "photos" in self.fields:
            photos = self.fields["photos"]
            photos.required = bool(transition.needs_photo)
            if transition.needs_photo:
                stage = CasePhoto.Stage(transition.needs_photo).label
                photos.label = f"{stage}照片"
                photos.error_messages["required"] = f"请上传{stage}照片"
            else:
                photos.label = f"{self.photo_label}（可选）"

    @property
    def label(self) -> str:
        return Action(self.action).label

    def add_service_error(self, error: ValidationError) -> None:
        """Show a ValidationError raised by the service beside the field it concerns."""
        code = getattr(error, "code", "") or ""
        if code.startswith("photo") and "photos" in self.fields:
            self.add_error("photos", error)
        elif code.startswith("comment"):
            self.add_error("comment", error)
        elif code.startswith("extension") and "amount" in self.fields:
            self.add_error("amount", error)
        else:
            self.add_error(None, error)

    @abstractmethod
    def submit(self) -> Case:
        """Call the workflow service of this form's action and return the case."""


class RequestVerificationForm(ActionForm):
    action = Action.REQUEST_VERIFICATION

    def submit(self) -> Case:
        return services.case_request_verification(case=self.case, actor=self.user, comment=self.cleaned_data["comment"])


class VerifyForm(ActionForm):
    action = Action.VERIFY
    photo_label = "现场照片"
    confirmed = forms.TypedChoiceField(
        label="核实结果",
        choices=[("yes", "情况属实"), ("no", "情况不属实")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    photos = PhotosField()

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_verify(
            case=self.case,
            actor=self.user,
            confirmed=data["confirmed"],
            comment=data["comment"],
            photos=_photo_list(data),
        )


class FileForm(ActionForm):
    action = Action.FILE
    auto_dispatch = forms.BooleanField(label="只有一个责任部门时自动派遣", required=False, initial=True)

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_file(
            case=self.case, actor=self.user, comment=data["comment"], auto_dispatch=data["auto_dispatch"]
        )


class VoidForm(ActionForm):
    action = Action.VOID
    reason_label = "作废理由"

    def submit(self) -> Case:
        return services.case_void(case=self.case, actor=self.user, reason=self.cleaned_data["comment"])


class MergeForm(ActionForm):
    """合并: this case (a duplicate) becomes part of the case numbered `into`."""

    action = Action.MERGE
    into = forms.CharField(label="并入案件编号", max_length=32)

    field_order = ["into", "comment"]

    def clean_into(self) -> Case:
        number = self.cleaned_data["into"].strip()
        target = selectors.cases_visible_to(user=self.user).filter(number=number).first()
        if target is None:
            raise ValidationError(f"未找到您可查看的案件 {number}", code="merge_target_missing")
        return target

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_merge(duplicate=self.case, into=data["into"], actor=self.user, comment=data["comment"])


class DispatchForm(ActionForm):
    action = Action.DISPATCH
    department = forms.ModelChoiceField(label="处置部门", queryset=Department.objects.none(), empty_label="请选择部门")

    field_order = ["department", "comment"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = Department.objects.order_by("code")
        self.fields["department"].error_messages["required"] = "请选择处置部门"

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_dispatch(
            case=self.case, actor=self.user, department=data["department"], comment=data["comment"]
        )


class ReturnForm(ActionForm):
    action = Action.RETURN
    reason_label = "回退理由"

    def submit(self) -> Case:
        return services.case_return(case=self.case, actor=self.user, reason=self.cleaned_data["comment"])


class ExtensionRequestForm(ActionForm):
    action = Action.REQUEST_EXTENSION
    reason_label = "延时理由"
    amount = forms.DecimalField(label="延时时长", min_value=0.5, max_digits=5, decimal_places=1)
    unit = forms.ChoiceField(label="单位", choices=LimitUnit.choices, initial=LimitUnit.DAYS)

    field_order = ["amount", "unit", "comment"]

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_extension_request(
            case=self.case, actor=self.user, amount=data["amount"], unit=data["unit"], reason=data["comment"]
        )


class ExtensionApproveForm(ActionForm):
    """批准延时: as requested, or a different time when both amount and unit are given."""

    action = Action.APPROVE_EXTENSION
    amount = forms.DecimalField(
        label="批准时长（留空则按申请）", required=False, min_value=0.5, max_digits=5, decimal_places=1
    )
    unit = forms.ChoiceField(label="单位", required=False, choices=[("", "按申请"), *LimitUnit.choices])

    field_order = ["amount", "unit", "comment"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("amount") is None) != (not data.get("unit")):
            raise ValidationError("批准时长与单位须同时填写，或都留空（按申请批准）", code="extension_partial")
        return data

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_extension_approve(
            case=self.case,
            actor=self.user,
            comment=data["comment"],
            amount=data.get("amount"),
            unit=data.get("unit") or None,
        )


class ExtensionRefuseForm(ActionForm):
    action = Action.REFUSE_EXTENSION
    reason_label = "驳回理由"

    def submit(self) -> Case:
        return services.case_extension_refuse(case=self.case, actor=self.user, reason=self.cleaned_data["comment"])


class HandleForm(ActionForm):
    action = Action.HANDLE
    photos = PhotosField()

    field_order = ["photos", "comment"]

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_handle(case=self.case, actor=self.user, comment=data["comment"], photos=_photo_list(data))


class _CheckForm(ActionForm):
    passed: ClassVar[bool]
    reason_label = "不通过理由"
    photos = PhotosField()

    field_order = ["photos", "comment"]

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_check(
            case=self.case, actor=self.user, passed=self.passed, photos=_photo_list(data), comment=data["comment"]
        )


class CheckPassForm(_CheckForm):
    action = Action.CHECK_PASS
    passed = True


class CheckFailForm(_CheckForm):
    action = Action.CHECK_FAIL
    passed = False


class CloseForm(ActionForm):
    action = Action.CLOSE

    def submit(self) -> Case:
        return services.case_close(case=self.case, actor=self.user, comment=self.cleaned_data["comment"])


class DeferForm(ActionForm):
    action = Action.DEFER
    reason_label = "挂账理由"

    def submit(self) -> Case:
        return services.case_defer(case=self.case, actor=self.user, reason=self.cleaned_data["comment"])


class ResumeForm(ActionForm):
    action = Action.RESUME

    def submit(self) -> Case:
        return services.case_resume(case=self.case, actor=self.user, comment=self.cleaned_data["comment"])


class UrgeForm(ActionForm):
    action = Action.URGE
    reason_label = "督办意见"
    level = forms.ChoiceField(label="督办级别", choices=UrgeLevel.choices, initial=UrgeLevel.NORMAL)

    field_order = ["level", "comment"]

    def submit(self) -> Case:
        data = self.cleaned_data
        return services.case_urge(case=self.case, actor=self.user, level=data["level"], comment=data["comment"])


# Actions a person takes on a screen. 上报/登记/自处理 create cases (RegisterForm, the phone app),
# 并入 (absorb) is the other half of 合并, and 超时预警 is raised by the system.
ACTION_FORMS: dict[str, type[ActionForm]] = {
    form.action: form
    for form in (
        RequestVerificationForm,
        VerifyForm,
        FileForm,
        VoidForm,
        MergeForm,
        DispatchForm,
        ReturnForm,
        ExtensionRequestForm,
        ExtensionApproveForm,
        ExtensionRefuseForm,
        HandleForm,
        CheckPassForm,
        CheckFailForm,
        CloseForm,
        DeferForm,
        ResumeForm,
        UrgeForm,
    )
}


# --- hotline registration -------------------------------------------------------------------

REGISTER_SOURCES = [
    (Case.Source.HOTLINE, Case.Source.HOTLINE.label),
    (Case.Source.PUBLIC, Case.Source.PUBLIC.label),
    (Case.Source.VIDEO, Case.Source.VIDEO.label),
]


class RegisterForm(forms.Form):
    """登记: a hotline, public or video report recorded by the command center."""

    source = forms.ChoiceField(label="来源", choices=REGISTER_SOURCES, initial=Case.Source.HOTLINE)
    category = forms.ModelChoiceField(
        label="案件类别", queryset=Category.objects.none(), empty_label="请选择类别", error_messages={}
    )
    urgency = forms.ChoiceField(label="紧急程度", choices=Urgency.choices, initial=Urgency.NORMAL)
    longitude = forms.FloatField(label="经度", min_value=73.0, max_value=136.0)
    latitude = forms.FloatField(label="纬度", min_value=3.0, max_value=54.0)
    address = forms.CharField(label="地址", max_length=200, required=False)
    description = forms.CharField(label="问题描述", max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))
    reporter_name = forms.CharField(label="反映人", max_length=50, required=False)
    reporter_phone = forms.CharField(label="反映人电话", max_length=30, required=False)
    photos = PhotosField(label="照片（可选）", required=False)
    client_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("client_key", f"web-{uuid.uuid4().hex}")
        super().__init__(*args, **kwargs)
        category = self.fields["category"]
        category.queryset = Category.objects.filter(is_active=True).order_by("kind", "major_code", "minor_code")
        category.error_messages["required"] = "请选择案件类别"
        for name in ("longitude", "latitude"):
            self.fields[name].error_messages["required"] = "请在地图上点选位置，或输入经纬度"
        self.fields["description"].error_messages["required"] = "请填写问题描述"

    def clean_reporter_phone(self) -> str:
        phone = self.cleaned_data["reporter_phone"].strip()
        if not phone:
            return ""
        try:
            return pii.normalize_phone(phone)
        except pii.InvalidPhone:
            raise ValidationError("电话号码格式无效（手机号11位，或区号-座机号）", code="phone_invalid") from None

    def submit(self, *, actor: User) -> Case:
        data = self.cleaned_data
        return services.case_report(
            actor=actor,
            source=data["source"],
            category=data["category"],
            location=Point(data["longitude"], data["latitude"], srid=4326),
            description=data["description"],
            address=data["address"],
            urgency=data["urgency"],
            photos=_photo_list(data),
            reporter_name=data["reporter_name"],
            reporter_phone=data["reporter_phone"],
            client_key=data["client_key"],
        )


# --- filters ---------------------------------------------------------------------------------


class CaseFilterForm(forms.Form):
    """The filters above a case list (GET)."""

    category = forms.ModelChoiceField(
        label="类别", queryset=Category.objects.none(), required=False, empty_label="全部类别"
    )
    overdue = forms.BooleanField(label="只看超期", required=False)
    q = forms.CharField(label="编号/地址", max_length=60, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.order_by("kind", "major_code", "minor_code")


INDICATOR_LEVELS = [
    ("street", "街道"),
    ("community", "社区"),
    ("grid", "网格"),
    ("department", "专业部门"),
    ("grid_worker", "岗位：监督员（网格员）"),
    ("dispatcher", "岗位：派遣员"),
    ("operator", "岗位：受理员、值班长"),
]
MAX_INDICATOR_DAYS = 366


class IndicatorForm(forms.Form):
    start = forms.DateField(label="开始日期", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="结束日期", widget=forms.DateInput(attrs={"type": "date"}))
    level = forms.ChoiceField(label="统计对象", choices=INDICATOR_LEVELS, initial="street")

    @staticmethod
    def default_period() -> dict[str, Any]:
        today = timezone.localdate()
        return {"start": today.replace(day=1), "end": today, "level": "street"}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise ValidationError("结束日期不能早于开始日期", code="period_reversed")
            if (end - start) > dt.timedelta(days=MAX_INDICATOR_DAYS):
                raise ValidationError(f"统计区间不能超过 {MAX_INDICATOR_DAYS} 天", code="period_too_long")
        return data

    def title(self) -> str:
        data = self.cleaned_data
        return f"{indicators.TABLE_TITLES[data['level']]}综合评价 {data['start']:%Y-%m-%d} 至 {data['end']:%Y-%m-%d}"
