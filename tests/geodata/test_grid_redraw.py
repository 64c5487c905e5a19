"""Redrawing grids without losing history (geodata.grid_redraw), the design_grids command and
the planner page's server side.

The district is tests.factories.tiled_district: four 0.002° cells, codes 001 (north-west),
002 (north-east), 003 (south-west), 004 (south-east), in force since 2020-01-01.
"""

import datetime as dt
import io

import geopandas as gpd
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from shapely.geometry import LineString

from accounts.models import Role
from geodata.grid_design import DesignTarget
from geodata.grid_redraw import (
    GridRedrawError,
    adoption_report_lines,
    grid_proposal_adopt,
    grid_proposal_create,
    grid_proposal_from_current,
    proposal_balance,
    proposed_grid_split,
    proposed_grids_merge,
)
from geodata.models import Building, Facility, Grid, GridAssignment, GridDesignProposal, Household, ProposedGrid
from geodata.selectors import grid_for_point, grids_valid_on
from geodata.services import register_assign_grids
from tests.factories import ORIGIN, BuildingFactory, FacilityFactory, HouseholdFactory, UserFactory
from tests.geodata.test_grid_design import X0 as MX0
from tests.geodata.test_grid_design import Y0 as MY0
from tests.geodata.test_grid_design import register_community, square_community, to_storage

X0, Y0 = ORIGIN
CODE = "500104001001"
TODAY = timezone.localdate()
YESTERDAY = TODAY - dt.timedelta(days=1)

# Where the register's objects stand: one building per cell, two in the south-east cell
# (the western one nearer the cell's west edge, so a split gives the west half more area).
SPOTS = {
    "nw": (X0 + 0.001, Y0 + 0.003),
    "ne": (X0 + 0.003, Y0 + 0.003),
    "sw": (X0 + 0.001, Y0 + 0.001),
    "se_west": (X0 + 0.0025, Y0 + 0.001),
    "se_east": (X0 + 0.0037, Y0 + 0.001),
}


def at(spot: str, dx: float = 0.0) -> Point:
    x, y = SPOTS[spot]
    return Point(x + dx, y, srid=4326)


@pytest.fixture
def register(district):
    """Each spot: a building with two households and a facility; a grid worker on every grid."""
    buildings, facilities = {}, {}
    for spot in SPOTS:
        buildings[spot] = BuildingFactory(location=at(spot), address=f"{spot}楼")
        HouseholdFactory.create_batch(2, building=buildings[spot])
        facilities[spot] = FacilityFactory(location=at(spot, dx=0.0002))
    register_assign_grids()
    grids = {grid.code[-3:]: grid for grid in district["grids"]}
    workers = {}
    for serial, grid in grids.items():
        workers[serial] = UserFactory(username=f"worker{serial}", first_name=f"网格员{serial}")
        GridAssignment.objects.create(grid=grid, worker=workers[serial], since=dt.date(2020, 1, 1))
    return {**district, "buildings": buildings, "facilities": facilities, "by_serial": grids, "workers": workers}


def xmin(table: str, pk: int) -> str:
    """The id of the transaction that last wrote the row: unchanged means untouched."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xmin::text FROM {table} WHERE id = %s", [pk])  # noqa: S608 (table names are ours)
        return cursor.fetchone()[0]


def row_versions(register, spots) -> dict:
    versions = {}
    for spot in spots:
        building = register["buildings"][spot]
        versions[("building", spot)] = xmin("geodata_building", building.pk)
        versions[("facility", spot)] = xmin("geodata_facility", register["facilities"][spot].pk)
        for household in building.households.all():
            versions[("household", household.pk)] = xmin("geodata_household", household.pk)
    return versions


def by_position(proposal) -> dict[int, ProposedGrid]:
    return {grid.position: grid for grid in proposal.grids.all()}


def snapshot() -> dict:
    """Everything adoption may write, to prove a refused adoption wrote nothing."""
    return {
        "grids": list(Grid.objects.order_by("pk").values_list("pk", "code", "valid_from", "valid_to")),
        "buildings": list(Building.objects.order_by("pk").values_list("pk", "grid_id")),
        "households": list(Household.objects.order_by("pk").values_list("pk", "grid_id")),
        "facilities": list(Facility.objects.order_by("pk").values_list("pk", "grid_id")),
        "assignments": list(GridAssignment.objects.order_by("pk").values_list("pk", "grid_id", "worker_id")),
        "proposals": list(GridDesignProposal.objects.order_by("pk").values_list("pk", "status", "adoption_report")),
        "adopted": list(ProposedGrid.objects.order_by("pk").values_list("pk", "adopted_grid_id")),
    }


# --- starting from the grids in force ------------------------------------------------------------


def test_a_proposal_from_current_grids_lists_them_in_code_order_with_their_codes(register):
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 4))

    balance = proposal_balance(proposal=proposal)

    assert [row.current_code for row in balance.rows] == [f"{CODE}00{n}" for n in (1, 2, 3, 4)]
    assert [row.households for row in balance.rows] == [2, 2, 2, 4]
    assert [row.buildings for row in balance.rows] == [1, 1, 1, 2]
    assert [row.on_target for row in balance.rows] == [True, True, True, True]
    assert balance.summary.households_median == 2


# --- merge, then adopt -------------------------------------------------------------------------


def test_adopting_a_merge_ends_two_grids_starts_one_and_touches_only_the_changed_area(register):
    community = register["community"]
    planner = UserFactory(username="planner", role=Role.PLANNER)
    proposal = grid_proposal_from_current(community=community, target=DesignTarget.by_households(1, 10))
    north_west, north_east = by_position(proposal)[1], by_position(proposal)[2]
    south_before = row_versions(register, ["sw", "se_west", "se_east"])

    merged = proposed_grids_merge(proposal=proposal, first_id=north_west.pk, second_id=north_east.pk)
    assert merged.households == 4
    assert proposal.grids.count() == 3
    report = grid_proposal_adopt(proposal=proposal, adopted_by=planner)

    assert report == {
        "day": TODAY.isoformat(),
        "community": CODE,
        "unchanged": [f"{CODE}003", f"{CODE}004"],
        "ended": [f"{CODE}001", f"{CODE}002"],
        "created": [{"code": f"{CODE}005", "position": 1, "households": 4, "area_m2": round(merged.area_m2, 1)}],
        "reattributed": {"buildings": 2, "facilities": 2, "households": 4},
        "assignments": [
            {"worker": str(register["workers"]["001"]), "worker_id": register["workers"]["001"].pk,
             "from": f"{CODE}001", "to": f"{CODE}005", "also": []},
            {"worker": str(register["workers"]["002"]), "worker_id": register["workers"]["002"].pk,
             "from": f"{CODE}002", "to": f"{CODE}005", "also": []},
        ],
        "uncovered": [],
    }  # fmt: skip
    # Old grids end today; the untouched ones keep their rows, codes and workers.
    old = {grid.code[-3:]: grid for grid in Grid.objects.filter(code__lt=f"{CODE}005")}
    assert [old[s].valid_to for s in ("001", "002", "003", "004")] == [TODAY, TODAY, None, None]
    new = Grid.objects.get(code=f"{CODE}005")
    assert (new.valid_from, new.valid_to, new.community) == (TODAY, None, community)
    assert new.geom.equals(old["001"].geom.union(old["002"].geom))
    # The north is re-attributed to the new grid ...
    for spot in ("nw", "ne"):
        assert Building.objects.get(pk=register["buildings"][spot].pk).grid == new
        assert Facility.objects.get(pk=register["facilities"][spot].pk).grid == new
        assert set(register["buildings"][spot].households.values_list("grid_id", flat=True)) == {new.pk}
    # ... and no row outside the changed area was written at all.
    assert row_versions(register, ["sw", "se_west", "se_east"]) == south_before
    # Workers follow their grid; their rows on the ended grids stay as history.
    assert sorted(new.assignments.values_list("worker__username", "since")) == [
        ("worker001", TODAY),
        ("worker002", TODAY),
    ]
    assert GridAssignment.objects.filter(grid=old["001"], worker__username="worker001").exists()
    # The past is unchanged: yesterday's grids and the grid of a point yesterday.
    assert sorted(grids_valid_on(YESTERDAY).values_list("code", flat=True)) == [f"{CODE}00{n}" for n in (1, 2, 3, 4)]
    assert grid_for_point(point=at("nw"), day=YESTERDAY).code == f"{CODE}001"
    assert grid_for_point(point=at("nw")).code == f"{CODE}005"
    proposal.refresh_from_db()
    assert (proposal.status, proposal.adopted_on, proposal.adopted_by) == ("adopted", TODAY, planner)
    assert proposal.adoption_report == report
    assert sorted(proposal.grids.values_list("adopted_grid__code", flat=True)) == [
        f"{CODE}003",
        f"{CODE}004",
        f"{CODE}005",
    ]
    assert adoption_report_lines(report) == [
        f"生效日期 {TODAY.isoformat()}：停用 2 个网格，新建 1 个，保留 2 个。",
        "重新归属：楼栋 2 栋，住户 4 户，部件 2 个。",
        f"停用：{CODE}001、{CODE}002",
        f"新建：{CODE}005",
        f"网格员 {register['workers']['001']}：{CODE}001 → {CODE}005",
        f"网格员 {register['workers']['002']}：{CODE}002 → {CODE}005",
    ]


def test_merging_grids_without_a_common_edge_is_refused(register):
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 4))
    north_west, south_east = by_position(proposal)[1], by_position(proposal)[4]  # they touch at one corner
    before = list(proposal.grids.order_by("pk").values_list("pk", "position", "geom"))

    with pytest.raises(GridRedrawError, match="第 1 格和第 4 格没有公共边，合并后不是一个整体，不能合并"):
        proposed_grids_merge(proposal=proposal, first_id=north_west.pk, second_id=south_east.pk)
    assert list(proposal.grids.order_by("pk").values_list("pk", "position", "geom")) == before


# --- split, then adopt --------------------------------------------------------------------------


def test_adopting_a_split_gives_the_worker_the_larger_half_and_reports_the_other_uncovered(register):
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 4))
    south_east = by_position(proposal)[4]
    north_before = row_versions(register, ["nw", "ne", "sw"])

    halves = proposed_grid_split(proposal=proposal, grid_id=south_east.pk)

    assert [(h.position, h.households, h.buildings) for h in halves] == [(4, 2, 1), (5, 2, 1)]
    west, east = halves
    assert west.geom.centroid.x < east.geom.centroid.x
    assert west.area_m2 > east.area_m2
    assert west.geom.union(east.geom).equals(register["by_serial"]["004"].geom)
    assert west.geom.covers(register["buildings"]["se_west"].location)
    assert east.geom.covers(register["buildings"]["se_east"].location)
    report = grid_proposal_adopt(proposal=proposal)

    assert report["unchanged"] == [f"{CODE}001", f"{CODE}002", f"{CODE}003"]
    assert report["ended"] == [f"{CODE}004"]
    assert [item["code"] for item in report["created"]] == [f"{CODE}005", f"{CODE}006"]
    assert report["reattributed"] == {"buildings": 2, "facilities": 2, "households": 4}
    assert report["assignments"] == [
        {
            "worker": str(register["workers"]["004"]),
            "worker_id": register["workers"]["004"].pk,
            "from": f"{CODE}004",
            "to": f"{CODE}005",
            "also": [f"{CODE}006"],
        }
    ]
    assert report["uncovered"] == [f"{CODE}006"]
    assert Building.objects.get(pk=register["buildings"]["se_west"].pk).grid.code == f"{CODE}005"
    assert Building.objects.get(pk=register["buildings"]["se_east"].pk).grid.code == f"{CODE}006"
    assert row_versions(register, ["nw", "ne", "sw"]) == north_before
    assert "以下新网格尚无网格员，请安排：" + f"{CODE}006" in adoption_report_lines(report)


def test_a_grid_with_a_single_inhabited_building_is_split_by_area(register):
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 4))
    north_west = by_position(proposal)[1]

    halves = proposed_grid_split(proposal=proposal, grid_id=north_west.pk)

    assert sorted(h.households for h in halves) == [0, 2]
    assert abs(halves[0].area_m2 - halves[1].area_m2) < 0.05 * north_west.area_m2


def test_splits_and_merges_keep_the_proposal_an_exact_tiling(register):
    community = register["community"]
    proposal = grid_proposal_from_current(community=community, target=DesignTarget.by_area(10_000))
    for _ in range(3):
        largest = proposal.grids.order_by("-area_m2").first()
        proposed_grid_split(proposal=proposal, grid_id=largest.pk)
    first, second = by_position(proposal)[1], by_position(proposal)[2]
    proposed_grids_merge(proposal=proposal, first_id=first.pk, second_id=second.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_Area(ST_SymDifference(ST_Union(p.geom), c.geom)) * ST_Area(c.geom::geography) / ST_Area(c.geom),
                   count(*) FILTER (WHERE GeometryType(p.geom) <> 'POLYGON')
            FROM geodata_proposedgrid p JOIN geodata_griddesignproposal d ON d.id = p.proposal_id
            JOIN geodata_community c ON c.id = d.community_id
            WHERE p.proposal_id = %s GROUP BY c.geom
            """,
            [proposal.pk],
        )
        difference, not_polygons = cursor.fetchone()
    assert difference < 0.01
    assert not_polygons == 0
    assert proposal.grids.count() == 6
    assert sum(proposal.grids.values_list("households", flat=True)) == 10


# --- a full redesign ---------------------------------------------------------------------------


def test_adopting_a_new_design_numbers_new_grids_after_every_code_ever_used(register):
    community = register["community"]
    # A grid that ended long ago once had serial 009: it is never given to another area.
    Grid.objects.create(
        code=f"{CODE}009",
        name="旧网格",
        community=community,
        geom=register["by_serial"]["001"].geom,
        valid_from=dt.date(2015, 1, 1),
        valid_to=dt.date(2020, 1, 1),
    )
    proposal = grid_proposal_create(community=community, target=DesignTarget.by_households(3, 4))
    count = proposal.grids.count()
    assert count == 3  # 10 households, 3–4 a grid
    assert sum(proposal.grids.values_list("households", flat=True)) == 10

    report = grid_proposal_adopt(proposal=proposal)

    assert report["ended"] == [f"{CODE}00{n}" for n in (1, 2, 3, 4)]
    assert [item["code"] for item in report["created"]] == [f"{CODE}{n:03d}" for n in range(10, 10 + count)]
    assert sorted(grids_valid_on().filter(community=community).values_list("code", flat=True)) == [
        f"{CODE}{n:03d}" for n in range(10, 10 + count)
    ]
    assert sorted(grids_valid_on(YESTERDAY).values_list("code", flat=True)) == [f"{CODE}00{n}" for n in (1, 2, 3, 4)]
    assert Building.objects.filter(grid__valid_to__isnull=True).count() == Building.objects.count()
    assert Household.objects.filter(grid__valid_to__isnull=True).count() == Household.objects.count()
    assert sorted(move["from"] for move in report["assignments"]) == [f"{CODE}00{n}" for n in (1, 2, 3, 4)]
    # Every new grid is covered by the workers of the grids it replaced, or reported.
    covered = set(GridAssignment.objects.filter(grid__valid_from=TODAY).values_list("grid__code", flat=True))
    assert covered | set(report["uncovered"]) == {item["code"] for item in report["created"]}


# --- refusals: nothing half-adopted ------------------------------------------------------------


def test_a_grid_started_today_cannot_be_ended_today_and_nothing_is_adopted(register):
    Grid.objects.filter(code=f"{CODE}004").update(valid_from=TODAY)
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 10))
    south_west, south_east = by_position(proposal)[3], by_position(proposal)[4]
    proposed_grids_merge(proposal=proposal, first_id=south_west.pk, second_id=south_east.pk)
    before = snapshot()

    with pytest.raises(GridRedrawError) as refused:
        grid_proposal_adopt(proposal=proposal)

    assert str(refused.value) == (
        f"网格 {CODE}004 于 {TODAY:%Y-%m-%d} 才启用，今天不能停用（停用日期必须晚于启用日期）；请明天再采用新方案。"
    )
    assert snapshot() == before


def test_a_proposal_is_adopted_once_and_not_adjusted_afterwards(register):
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 10))
    grids = by_position(proposal)
    proposed_grids_merge(proposal=proposal, first_id=grids[1].pk, second_id=grids[2].pk)
    grid_proposal_adopt(proposal=proposal)
    before = snapshot()

    with pytest.raises(GridRedrawError, match=f"该方案已于 {TODAY:%Y-%m-%d} 采用，不能再采用"):
        grid_proposal_adopt(proposal=proposal)
    with pytest.raises(GridRedrawError, match="不能再调整"):
        proposed_grid_split(proposal=proposal, grid_id=grids[3].pk)
    assert snapshot() == before


def test_a_proposal_equal_to_the_grids_in_force_is_not_adopted(register):
    proposal = grid_proposal_from_current(community=register["community"], target=DesignTarget.by_households(1, 10))
    before = snapshot()
    with pytest.raises(GridRedrawError, match="方案与现行网格完全相同，无需采用"):
        grid_proposal_adopt(proposal=proposal)
    assert snapshot() == before


def test_a_proposal_for_an_old_community_boundary_is_not_adopted(register):
    community = register["community"]
    proposal = grid_proposal_from_current(community=community, target=DesignTarget.by_households(1, 10))
    grids = by_position(proposal)
    proposed_grids_merge(proposal=proposal, first_id=grids[1].pk, second_id=grids[2].pk)
    community.geom = MultiPolygon(Polygon.from_bbox((X0, Y0, X0 + 0.004, Y0 + 0.005)), srid=4326)
    community.save()
    before = snapshot()

    with pytest.raises(GridRedrawError, match="方案网格与社区「测试社区」的边界不一致"):
        grid_proposal_adopt(proposal=proposal)
    assert snapshot() == before


def test_serials_running_out_are_refused_before_anything_changes(register):
    community = register["community"]
    Grid.objects.create(
        code=f"{CODE}999",
        name="旧网格",
        community=community,
        geom=register["by_serial"]["001"].geom,
        valid_from=dt.date(2015, 1, 1),
        valid_to=dt.date(2016, 1, 1),
    )
    proposal = grid_proposal_from_current(community=community, target=DesignTarget.by_households(1, 10))
    grids = by_position(proposal)
    proposed_grids_merge(proposal=proposal, first_id=grids[1].pk, second_id=grids[2].pk)
    before = snapshot()
    with pytest.raises(GridRedrawError, match="网格序号已用到 999，剩余编码不足 1 个"):
        grid_proposal_adopt(proposal=proposal)
    assert snapshot() == before


def test_a_community_without_grids_in_force_cannot_start_from_them(district):
    Grid.objects.update(valid_to=TODAY)
    with pytest.raises(GridRedrawError, match="目前没有在用的网格，请直接生成新方案"):
        grid_proposal_from_current(community=district["community"], target=DesignTarget.by_households())
    assert GridDesignProposal.objects.count() == 0


# --- the command ----------------------------------------------------------------------------


def test_command_designs_a_community_and_prints_the_balance_report(register):
    out = io.StringIO()
    call_command("design_grids", "--community", CODE, "--households", "3-4", stdout=out)

    text = out.getvalue()
    proposal = GridDesignProposal.objects.get()
    assert proposal.status == "draft"
    assert f"测试社区（{CODE}）：方案 #{proposal.pk}" in text
    assert "目标：每格 3–4 户；共" in text
    assert "户数 最少/中位/最多：" in text
    assert "紧凑度(Polsby–Popper)" in text
    assert Grid.objects.filter(valid_to__isnull=False).count() == 0  # not adopted without --adopt


def test_command_adopts_a_whole_street_in_one_go(register):
    out = io.StringIO()
    call_command("design_grids", "--street", CODE[:9], "--households", "3-4", "--adopt", stdout=out)

    assert GridDesignProposal.objects.get().status == "adopted"
    assert Grid.objects.filter(valid_to=TODAY).count() == 4
    assert "已采用" in out.getvalue()
    assert "网格员 " in out.getvalue()


def test_command_refuses_an_impossible_target_and_adopts_nothing(register):
    before = snapshot()
    with pytest.raises(CommandError, match="楼栋「nw楼」有 2 户，超过每个网格的上限 1 户"):
        call_command("design_grids", "--street", CODE[:9], "--households", "1-1", "--adopt", stdout=io.StringIO())
    assert snapshot() == before


def test_command_prefers_the_roads_of_a_barrier_file_as_boundaries(db, tmp_path):
    region, sites = square_community()
    community = register_community(region, sites, code="500104002001")
    road = LineString([(MX0 + 380, MY0 - 20), (MX0 + 420, MY0 + 1020)])  # slanting, between two columns
    roads = tmp_path / "roads.geojson"
    gpd.GeoDataFrame({"name": ["建设路"]}, geometry=[road], crs=settings.METRIC_SRID).to_crs(4326).to_file(roads)

    call_command("design_grids", "--community", community.code, "--barriers", str(roads), stdout=io.StringIO())

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_Length(ST_Difference(
                ST_Intersection(%s::geometry, c.geom),
                ST_Buffer(ST_Union(ST_Boundary(p.geom)), 1e-6)  -- 10 cm: a line straight in metres bows in degrees
            ))
            FROM geodata_proposedgrid p, geodata_community c WHERE c.id = %s GROUP BY c.geom
            """,
            [to_storage(road).ewkt, community.pk],
        )
        assert cursor.fetchone()[0] == 0  # the whole road inside the community is a grid boundary


def test_command_by_area(register):
    out = io.StringIO()
    call_command("design_grids", "--community", CODE, "--area", "40000", stdout=out)
    assert "目标：每格约 40,000 平方米（±25%）" in out.getvalue()


# --- the planner page (server side; the browser test drives it end to end) ---------------------


@pytest.fixture
def planner(db):
    user = UserFactory(username="planner1", role=Role.PLANNER)
    user.user_permissions.add(Permission.objects.get(codename="design_grids"))
    return user


def test_page_is_for_grid_designers_only(client, register):
    client.force_login(UserFactory(username="gw", role=Role.GRID_WORKER))
    assert client.get("/maps/design/").status_code == 403
    client.logout()
    response = client.get("/maps/design/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_page_proposes_merges_splits_and_adopts(client, register, planner):
    client.force_login(planner)
    community = register["community"]
    response = client.get("/maps/design/")
    assert response.status_code == 200
    assert "测试社区" in response.content.decode()
    assert client.get("/maps/design/?community=abc&proposal=1;drop").status_code == 200

    response = client.post(
        "/maps/design/propose/",
        {"community": community.pk, "basis": "households", "households_min": 3, "households_max": 4},
    )
    proposal = GridDesignProposal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/maps/design/?community={community.pk}&proposal={proposal.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "均衡性报告" in page
    assert 'id="proposal-geojson"' in page

    grids = by_position(proposal)
    response = client.post(f"/maps/design/{proposal.pk}/split/", {"grid": grids[1].pk})
    assert response.status_code == 302
    assert proposal.grids.count() == len(grids) + 1
    grids = by_position(proposal)
    first, second = next(
        (a, b) for a in grids.values() for b in grids.values() if a.pk < b.pk and a.geom.intersection(b.geom).length > 0
    )
    response = client.post(f"/maps/design/{proposal.pk}/merge/", {"grids": [first.pk, second.pk]})
    assert response.status_code == 302
    assert proposal.grids.count() == len(grids) - 1

    response = client.post(f"/maps/design/{proposal.pk}/adopt/", follow=True)
    proposal.refresh_from_db()
    assert proposal.status == "adopted"
    assert "已采用" in response.content.decode()
    assert f"{CODE}005" in response.content.decode()


def test_page_shows_a_refusal_in_chinese_and_changes_nothing(client, register, planner):
    client.force_login(planner)
    before = snapshot()
    response = client.post(
        "/maps/design/propose/",
        {"community": register["community"].pk, "basis": "households", "households_min": 1, "households_max": 1},
        follow=True,
    )
    assert response.status_code == 200
    assert "超过每个网格的上限 1 户" in response.content.decode()
    assert snapshot() == before


def test_page_refuses_a_community_outside_the_planners_scope(client, register, planner):
    other = register["street"].communities.create(code="500104001002", name="别的社区", geom=register["community"].geom)
    planner.community = register["community"]
    planner.save()
    client.force_login(planner)
    response = client.post(
        "/maps/design/propose/",
        {"community": other.pk, "basis": "households", "households_min": 3, "households_max": 4},
    )
    assert response.status_code == 200  # the form is shown again with its error
    assert GridDesignProposal.objects.count() == 0
