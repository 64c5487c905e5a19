"""manage.py design_grids: propose grids for a community or a whole street; --adopt puts them in force."""

import time

import geopandas as gpd
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from geodata.grid_design import DesignTarget, GridDesignError, balance_report_lines
from geodata.grid_redraw import adoption_report_lines, grid_proposal_create, grid_proposals_adopt, proposal_balance
from geodata.models import Community


class Command(BaseCommand):
    help = (
        "为一个社区（--community）或整个街道（--street）生成网格划分方案并打印均衡性报告；"
        "加 --adopt 则在同一事务中全部采用（任一社区失败则什么都不采用）。详见 docs/grid_design.md。"
    )

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--community", help="社区代码（12 位）")
        where.add_argument("--street", help="街道代码（9 位）：为其下每个社区生成方案")
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--households", default="300-500", help="每格户数范围，如 300-500（默认）")
        target.add_argument("--area", type=float, help="每格目标面积（平方米），如 10000；给出时按面积划分")
        parser.add_argument("--barriers", help="道路/河流线文件（GeoJSON、GeoPackage 或 Shapefile），优先作为网格边界")
        parser.add_argument("--adopt", action="store_true", help="生成后立即采用（旧网格停用、新网格启用、重新归属）")

    def handle(self, *args, community, street, households, area, barriers, adopt, **options):
        target = DesignTarget.by_area(area) if area is not None else _household_target(households)
        communities = _communities(community=community, street=street)
        lines = _barrier_lines(barriers) if barriers else []
        proposals = []
        # All or nothing: a community that cannot be designed leaves no draft and adopts nothing.
        with transaction.atomic():
            for item in communities:
                started = time.perf_counter()
                try:
                    proposal = grid_proposal_create(community=item, target=target, barriers=lines, note="design_grids")
                except GridDesignError as error:
                    raise CommandError(f"社区「{item.name}」（{item.code}）：{error}") from error
                proposals.append(proposal)
                seconds = time.perf_counter() - started
                self.stdout.write(f"\n{item.name}（{item.code}）：方案 #{proposal.pk}，用时 {seconds:.2f} 秒")
                balance = proposal_balance(proposal=proposal)
                for line in balance_report_lines(rows=balance.rows, target=target):
                    self.stdout.write(f"  {line}")
            if adopt:
                try:
                    reports = grid_proposals_adopt(proposals=proposals)
                except GridDesignError as error:
                    raise CommandError(str(error)) from error
                for proposal, report in zip(proposals, reports, strict=True):
                    self.stdout.write(self.style.SUCCESS(f"\n{proposal.community.name}：方案 #{proposal.pk} 已采用"))
                    for line in adoption_report_lines(report):
                        self.stdout.write(f"  {line}")
        if not adopt:
            self.stdout.write("\n方案为草案，可在 /maps/design/ 预览、调整后采用，或加 --adopt 重新运行。")


def _household_target(text: str) -> DesignTarget:
    try:
        low, high = (int(part) for part in text.split("-"))
    except ValueError as error:
        raise CommandError(f"户数范围应写成“下限-上限”，如 300-500，而不是 {text!r}。") from error
    target = DesignTarget.by_households(low, high)
    try:
        target.validate()
    except GridDesignError as error:
        raise CommandError(str(error)) from error
    return target


def _communities(*, community: str | None, street: str | None) -> list[Community]:
    if community:
        found = list(Community.objects.filter(code=community))
        if not found:
            raise CommandError(f"没有代码为 {community} 的社区。")
        return found
    found = list(Community.objects.filter(street__code=street).order_by("code"))
    if not found:
        raise CommandError(f"街道 {street} 不存在或没有社区。")
    return found


def _barrier_lines(path: str) -> list[GEOSGeometry]:
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as error:  # any unreadable file: say which, in Chinese
        raise CommandError(f"无法读取道路/河流文件 {path}：{error}") from error
    if frame.crs is None:
        raise CommandError(f"道路/河流文件 {path} 没有坐标系，请先指定（如 EPSG:4326）。")
    frame = frame.to_crs(settings.STORAGE_SRID)
    lines = [g for g in frame.geometry if g is not None and g.geom_type in {"LineString", "MultiLineString"}]
    return [GEOSGeometry(g.wkb_hex, srid=settings.STORAGE_SRID) for g in lines]
