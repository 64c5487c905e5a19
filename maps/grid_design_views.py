"""The planner page for grid design (网格划分): /maps/design/.

Thin views: each POST calls one geodata.grid_redraw service and redirects back to the page;
refusals (GridDesignError, with a Chinese message) are shown as messages and change nothing.
Only users with the `geodata.design_grids` right may open it.
"""

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from geodata.grid_design import DesignTarget, GridDesignError
from geodata.grid_redraw import (
    adoption_report_lines,
    communities_for_planner,
    current_grid_balance,
    current_grids_geojson,
    grid_proposal_adopt,
    grid_proposal_create,
    grid_proposal_from_current,
    proposal_balance,
    proposal_geojson,
    proposal_target,
    proposed_grid_split,
    proposed_grids_merge,
)
from geodata.models import GridDesignProposal

designer_required = permission_required("geodata.design_grids", raise_exception=True)


class ProposalForm(forms.Form):
    community = forms.ModelChoiceField(label="社区", queryset=None, empty_label="请选择社区")
    basis = forms.ChoiceField(
        label="划分依据",
        choices=GridDesignProposal.Basis.choices,
        initial=GridDesignProposal.Basis.HOUSEHOLDS,
        widget=forms.RadioSelect,
    )
    households_min = forms.IntegerField(label="每格户数下限", initial=300, min_value=1, required=False)
    households_max = forms.IntegerField(label="每格户数上限", initial=500, min_value=1, required=False)
    target_area_m2 = forms.FloatField(label="每格目标面积(m²)", initial=10_000, min_value=100, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["community"].queryset = communities_for_planner(user=user)

    def clean(self):
        data = super().clean()
        if data.get("basis") == GridDesignProposal.Basis.AREA:
            target = DesignTarget.by_area(data.get("target_area_m2") or 0.0)
        else:
            target = DesignTarget(households_min=data.get("households_min"), households_max=data.get("households_max"))
        try:
            target.validate()
        except GridDesignError as error:
            raise forms.ValidationError(str(error)) from error
        data["target"] = target
        return data


def _page_url(community_id: int, proposal_id: int | None = None) -> str:
    url = f"{reverse('maps:grid_design')}?community={community_id}"
    return f"{url}&proposal={proposal_id}" if proposal_id else url


def _proposal_for(request: HttpRequest, proposal_id: int) -> GridDesignProposal:
    return get_object_or_404(
        GridDesignProposal.objects.select_related("community"),
        pk=proposal_id,
        community__in=communities_for_planner(user=request.user),
    )


@login_required
@designer_required
def design_page(request: HttpRequest) -> HttpResponse:
    return _render_page(request, form=None)


def _render_page(request: HttpRequest, *, form: ProposalForm | None) -> HttpResponse:
    communities = communities_for_planner(user=request.user)
    community_id, proposal_id = request.GET.get("community", ""), request.GET.get("proposal", "")
    community = communities.filter(pk=community_id).first() if community_id.isdigit() else None
    proposal = None
    if community is not None and proposal_id.isdigit():
        proposal = community.grid_proposals.filter(pk=proposal_id).first()
    if form is None:
        form = ProposalForm(user=request.user, initial={"community": community})
    context: dict = {"form": form, "community": community, "proposal": proposal}
    if community is not None:
        target = proposal_target(proposal) if proposal else DesignTarget.by_households()
        context["current_balance"] = current_grid_balance(community=community, target=target)
        context["current_geojson"] = json.loads(current_grids_geojson(community=community))
        context["proposals"] = community.grid_proposals.select_related("created_by")[:10]
    if proposal is not None:
        balance = proposal_balance(proposal=proposal)
        context["balance"] = balance
        context["proposal_geojson"] = json.loads(proposal_geojson(proposal=proposal))
        context["deviations"] = {
            str(row.key): {"deviation": row.deviation, "on_target": row.on_target} for row in balance.rows
        }
        if proposal.adoption_report:
            context["adoption_lines"] = adoption_report_lines(proposal.adoption_report)
    return render(request, "maps/grid_design.html", context)


@login_required
@designer_required
@require_POST
def propose(request: HttpRequest) -> HttpResponse:
    form = ProposalForm(request.POST, user=request.user)
    if not form.is_valid():
        return _render_page(request, form=form)
    community, target = form.cleaned_data["community"], form.cleaned_data["target"]
    try:
        if request.POST.get("start") == "current":
            proposal = grid_proposal_from_current(community=community, target=target, created_by=request.user)
        else:
            proposal = grid_proposal_create(community=community, target=target, created_by=request.user)
    except GridDesignError as error:
        messages.error(request, str(error))
        return redirect(_page_url(community.pk))
    messages.success(request, f"已生成方案 #{proposal.pk}：{proposal.grids.count()} 个网格。")
    return redirect(_page_url(community.pk, proposal.pk))


@login_required
@designer_required
@require_POST
def merge(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = _proposal_for(request, proposal_id)
    chosen = request.POST.getlist("grids")
    try:
        if len(chosen) != 2 or not all(value.isdigit() for value in chosen):
            raise GridDesignError("请勾选两个相邻的网格再合并。")
        merged = proposed_grids_merge(proposal=proposal, first_id=int(chosen[0]), second_id=int(chosen[1]))
        messages.success(request, f"已合并为第 {merged.position} 格（{merged.households} 户）。")
    except GridDesignError as error:
        messages.error(request, str(error))
    return redirect(_page_url(proposal.community_id, proposal.pk))


@login_required
@designer_required
@require_POST
def split(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = _proposal_for(request, proposal_id)
    chosen = request.POST.get("grid", "")
    try:
        if not chosen.isdigit():
            raise GridDesignError("请选择要拆分的网格。")
        halves = proposed_grid_split(proposal=proposal, grid_id=int(chosen))
        parts = "、".join(f"第 {half.position} 格（{half.households} 户）" for half in halves)
        messages.success(request, f"已拆分为 {parts}。")
    except GridDesignError as error:
        messages.error(request, str(error))
    return redirect(_page_url(proposal.community_id, proposal.pk))


@login_required
@designer_required
@require_POST
def adopt(request: HttpRequest, proposal_id: int) -> HttpResponse:
    proposal = _proposal_for(request, proposal_id)
    try:
        grid_proposal_adopt(proposal=proposal, adopted_by=request.user)
        messages.success(request, f"方案 #{proposal.pk} 已采用。")
    except GridDesignError as error:
        messages.error(request, str(error))
    return redirect(_page_url(proposal.community_id, proposal.pk))
