"""Query-string forms of the dashboard and the statistics pages (validation only)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from events.models import Category
from events.workflow import State
from geodata.models import Community, FacilityType, Street
from maps.selectors import LAYERS, SCHEMES, STATE_FILTERS, CaseFilter
from maps.statistics import LEVEL_LABELS

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366 * 5


class PeriodForm(forms.Form):
    first_day = forms.DateField(label="开始日期", required=False)
    last_day = forms.DateField(label="结束日期", required=False)

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        last = data.get("last_day") or today
        first = data.get("first_day") or last - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        if first > last:
            raise forms.ValidationError("开始日期不能晚于结束日期")
        if (last - first).days > MAX_PERIOD_DAYS:
            raise forms.ValidationError("时段不能超过五年")
        data["first_day"], data["last_day"] = first, last
        return data


class CaseFilterForm(PeriodForm):
    category = forms.ModelChoiceField(label="类别", queryset=Category.objects.all(), required=False)
    state = forms.ChoiceField(
        label="状态",
        required=False,
        choices=[*STATE_FILTERS.items(), *[(s, label) for s, label in State.choices if s != State.NEW]],
    )
    street = forms.ModelChoiceField(label="街道", queryset=Street.objects.all(), required=False)
    community = forms.ModelChoiceField(label="社区", queryset=Community.objects.all(), required=False)

    def case_filter(self) -> CaseFilter:
        data = self.cleaned_data
        return CaseFilter(
            first_day=data["first_day"],
            last_day=data["last_day"],
            category_id=data["category"].pk if data.get("category") else None,
            state=data.get("state") or "open",
            street_id=data["street"].pk if data.get("street") else None,
            community_id=data["community"].pk if data.get("community") else None,
        )


class LayerForm(CaseFilterForm):
    layer = forms.ChoiceField(choices=[(k, v["label"]) for k, v in LAYERS.items()], required=False)
    scheme = forms.ChoiceField(choices=list(SCHEMES.items()), required=False)


class ChangesForm(CaseFilterForm):
    since = forms.DateTimeField()


class StatisticsForm(PeriodForm):
    level = forms.ChoiceField(label="统计层级", choices=list(LEVEL_LABELS.items()), required=False)
    interval = forms.ChoiceField(
        label="时间粒度", choices=[("month", "月"), ("week", "周"), ("day", "日")], required=False
    )
    category = forms.ModelChoiceField(label="类别", queryset=Category.objects.all(), required=False)
    street = forms.ModelChoiceField(label="街道", queryset=Street.objects.all(), required=False)
    community = forms.ModelChoiceField(label="社区", queryset=Community.objects.all(), required=False)
    normalise = forms.ChoiceField(
        label="热点分析口径", choices=[("area", "每平方公里"), ("population", "每千人")], required=False
    )
    method = forms.ChoiceField(
        label="热点分析方法", choices=[("gi_star", "Getis–Ord Gi*"), ("moran", "局部 Moran's I")], required=False
    )
    period = forms.ChoiceField(label="巡查统计周期", choices=[("day", "日"), ("week", "周")], required=False)

    def value(self, name: str, default: str) -> str:
        return self.cleaned_data.get(name) or default


class DistanceForm(forms.Form):
    question = forms.ChoiceField(
        label="问题",
        choices=[("elderly_alone_far", "独居高龄老人距设施过远"), ("households_near", "设施周边户数")],
    )
    facility_type = forms.ModelChoiceField(label="设施类别", queryset=FacilityType.objects.all())
    metres = forms.FloatField(label="距离(米)", min_value=10, max_value=5000, required=False)
    min_age = forms.IntegerField(label="年龄不低于", min_value=50, max_value=120, required=False)
    street = forms.ModelChoiceField(label="街道", queryset=Street.objects.all(), required=False)
    community = forms.ModelChoiceField(label="社区", queryset=Community.objects.all(), required=False)


def form_errors(form: forms.Form) -> str:
    return "；".join(str(message) for messages in form.errors.values() for message in messages)
