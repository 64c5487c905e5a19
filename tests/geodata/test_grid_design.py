"""Grid design (geodata.grid_design, geodata.grid_redraw.grid_proposal_create).

Constructed communities: a square, an L shape, a community with a hole, a community with a
very dense block. Each design is checked for the tiling invariants (union = community within
0.01 m², no shared interior, single valid polygons), building integrity, balance and code order.
"""

import itertools
import math

import geopandas as gpd
import pytest
import shapely
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import connection
from shapely.geometry import LineString, Point, Polygon, box

from geodata.grid_design import (
    BuildingSite,
    DesignTarget,
    GridDesignError,
    balance_report_lines,
    design_grids,
    serial_order,
)
from geodata.grid_redraw import grid_proposal_create, proposal_balance
from geodata.models import Building, Community, District, GridDesignProposal, Household, ProposedGrid
from tests.factories import ORIGIN

# Metric coordinates (EPSG:4544, CGCS2000 / 3-degree GK CM 105E) of the test origin.
X0, Y0 = gpd.GeoSeries([Point(ORIGIN)], crs=4326).to_crs(settings.METRIC_SRID).iloc[0].coords[0]
X0, Y0 = round(X0), round(Y0)


# --- constructed communities (metric) --------------------------------------------------------


def block_of_buildings(
    *, x: float, y: float, columns: int, rows: int, spacing: float, households: int, width=20.0, depth=12.0, first=0
) -> list[BuildingSite]:
    """Rectangular footprints on a regular lattice, `spacing` apart, starting half a step in."""
    sites = []
    for i, j in itertools.product(range(columns), range(rows)):
        cx, cy = x + spacing / 2 + i * spacing, y + spacing / 2 + j * spacing
        key = first + len(sites)
        sites.append(
            BuildingSite(
                key=key,
                location=Point(cx, cy),
                households=households,
                footprint=box(cx - width / 2, cy - depth / 2, cx + width / 2, cy + depth / 2),
                label=f"{key}号楼",
            )
        )
    return sites


def square_community() -> tuple[Polygon, list[BuildingSite]]:
    """1 km × 1 km, 100 buildings of 40 households: 4 000 households."""
    return box(X0, Y0, X0 + 1000, Y0 + 1000), block_of_buildings(
        x=X0, y=Y0, columns=10, rows=10, spacing=100, households=40
    )


def l_shaped_community() -> tuple[Polygon, list[BuildingSite]]:
    region = shapely.union(box(X0, Y0, X0 + 1000, Y0 + 400), box(X0, Y0, X0 + 400, Y0 + 1000))
    sites = block_of_buildings(x=X0, y=Y0, columns=10, rows=10, spacing=100, households=40)
    return region, [s for s in sites if region.covers(s.location)]


def community_with_hole() -> tuple[Polygon, list[BuildingSite]]:
    """A square around a 400 m × 400 m hole (a park that is not part of the community)."""
    region = box(X0, Y0, X0 + 1000, Y0 + 1000).difference(box(X0 + 300, Y0 + 300, X0 + 700, Y0 + 700))
    sites = block_of_buildings(x=X0, y=Y0, columns=10, rows=10, spacing=100, households=40)
    return region, [s for s in sites if region.covers(s.location)]


def community_with_dense_block() -> tuple[Polygon, list[BuildingSite]]:
    """Low-rise housing (20 households a building) and, in the north-east 400 m × 400 m, a
    dense block of 100 towers of 60 households 40 m apart: 6 000 of the 7 280 households."""
    region = box(X0, Y0, X0 + 1000, Y0 + 1000)
    sparse = block_of_buildings(x=X0, y=Y0, columns=10, rows=10, spacing=100, households=20)
    sparse = [s for s in sparse if not (s.location.x > X0 + 600 and s.location.y > Y0 + 600)]
    dense = block_of_buildings(x=X0 + 600, y=Y0 + 600, columns=10, rows=10, spacing=40, households=60, first=1000)
    return region, sparse + dense


COMMUNITIES = {
    "square": square_community,
    "L shape": l_shaped_community,
    "hole": community_with_hole,
    "dense block": community_with_dense_block,
}


def assert_exact_tiling(region, grids):
    polygons = [grid.geom for grid in grids]
    for polygon in polygons:
        assert polygon.geom_type == "Polygon"
        assert polygon.is_valid
    assert shapely.union_all(polygons).symmetric_difference(region).area < 0.01
    assert abs(sum(p.area for p in polygons) - region.area) < 0.01  # so no area is counted twice
    for a, b in itertools.combinations(polygons, 2):
        assert not a.relate_pattern(b, "2********")  # interiors never share area
    assert shapely.coverage_is_valid(polygons)  # shared edges have identical vertices


def assert_buildings_whole(grids, sites):
    for site in sites:
        holders = [g for g in grids if g.geom.covers(site.location)]
        assert len(holders) == 1, site.label
        assert holders[0].geom.covers(site.footprint), site.label
        assert site.key in holders[0].building_keys
        for other in grids:
            if other is not holders[0]:
                assert not other.geom.relate_pattern(site.footprint, "2********"), site.label


def assert_code_order(grids):
    """The documented rule: a row starts at the northernmost centroid not yet numbered and
    holds every grid less than half a typical grid side (√ median area) south of it; rows run
    north to south, west to east inside a row."""
    areas = sorted(g.area_m2 for g in grids)
    side = math.sqrt(
        areas[len(areas) // 2] if len(areas) % 2 else (areas[len(areas) // 2 - 1] + areas[len(areas) // 2]) / 2
    )
    centroids = [(g.geom.centroid.x, g.geom.centroid.y) for g in grids]
    start = 0
    while start < len(centroids):
        top = max(y for _, y in centroids[start:])
        row = [i for i in range(start, len(centroids)) if top - centroids[i][1] < side / 2]
        assert row == list(range(start, start + len(row)))  # the row is numbered in one run
        assert all(centroids[a][0] < centroids[b][0] for a, b in itertools.pairwise(row))  # west to east
        start += len(row)


# --- the algorithm on constructed communities -------------------------------------------------


@pytest.mark.parametrize("name", list(COMMUNITIES))
def test_household_design_tiles_exactly_keeps_buildings_whole_and_is_balanced(name):
    region, sites = COMMUNITIES[name]()
    target = DesignTarget.by_households(300, 500)

    grids = design_grids(region=region, buildings=sites, target=target)

    assert_exact_tiling(region, grids)
    assert_buildings_whole(grids, sites)
    assert sum(g.households for g in grids) == sum(s.households for s in sites)
    assert all(300 <= g.households <= 500 for g in grids), [g.households for g in grids]
    assert all(g.compactness > 0.25 for g in grids), [round(g.compactness, 2) for g in grids]
    assert_code_order(grids)


def test_square_is_cut_into_ten_grids_of_400_households():
    region, sites = square_community()
    grids = design_grids(region=region, buildings=sites, target=DesignTarget.by_households())
    assert [g.households for g in grids] == [400] * 10
    assert [round(g.area_m2) for g in grids] == [100_000] * 10


def test_dense_block_gets_small_grids_and_the_low_rise_area_large_ones():
    region, sites = community_with_dense_block()
    grids = design_grids(region=region, buildings=sites, target=DesignTarget.by_households())
    dense_block = box(X0 + 600, Y0 + 600, X0 + 1000, Y0 + 1000)
    share_in_block = [g.geom.intersection(dense_block).area / g.area_m2 for g in grids]
    inside = [g for g, share in zip(grids, share_in_block, strict=True) if share > 0.95]
    outside = [g for g, share in zip(grids, share_in_block, strict=True) if share < 0.01]
    assert len(grids) == 19
    assert len(inside) >= 10  # 6 000 of the 7 280 households live in the block
    assert max(g.area_m2 for g in inside) < 15_000 < 90_000 < min(g.area_m2 for g in outside)


def test_area_design_meets_the_area_target_within_a_quarter():
    region, sites = l_shaped_community()
    target = DesignTarget.by_area(10_000)

    grids = design_grids(region=region, buildings=sites, target=target)

    assert len(grids) == round(region.area / 10_000) == 64
    assert_exact_tiling(region, grids)
    assert_buildings_whole(grids, sites)
    assert all(target.is_met(households=g.households, area_m2=g.area_m2) for g in grids)
    assert all(7_500 <= g.area_m2 <= 12_500 for g in grids)
    assert_code_order(grids)


def test_a_road_crossing_the_community_becomes_a_grid_boundary():
    region, sites = square_community()
    # A slanting road between the 4th and 5th columns of buildings (a straight cut could not follow it).
    road = LineString([(X0 + 380, Y0 - 20), (X0 + 420, Y0 + 1020)])

    grids = design_grids(region=region, buildings=sites, target=DesignTarget.by_households(), barriers=[road])

    boundaries = shapely.union_all([g.geom.boundary for g in grids])
    assert boundaries.buffer(1e-6).covers(road.intersection(region))
    assert_exact_tiling(region, grids)
    assert_buildings_whole(grids, sites)
    assert all(300 <= g.households <= 500 for g in grids)


def test_a_road_through_a_building_is_not_used_as_a_boundary():
    region, sites = square_community()
    road = LineString([(X0 + 450, Y0 - 20), (X0 + 450, Y0 + 1020)])  # through the 5th column
    grids = design_grids(region=region, buildings=sites, target=DesignTarget.by_households(), barriers=[road])
    assert_buildings_whole(grids, sites)


def test_buildings_without_footprint_are_kept_off_boundaries():
    region, sites = square_community()
    points = [BuildingSite(key=s.key, location=s.location, households=s.households) for s in sites]
    grids = design_grids(region=region, buildings=points, target=DesignTarget.by_households())
    for site in points:
        assert sum(g.geom.covers(site.location) for g in grids) == 1
        assert min(g.geom.boundary.distance(site.location) for g in grids) >= 5.5  # 5 m half-width + margin


def test_serial_order_runs_west_to_east_then_north_to_south():
    # A 3 × 3 block of 100 m cells, given shuffled, with the middle row's centroids uneven.
    cells = {
        "nw": (50, 250),
        "n": (150, 250),
        "ne": (250, 250),
        "w": (50, 160),
        "c": (150, 140),
        "e": (250, 155),
        "sw": (50, 50),
        "s": (150, 50),
        "se": (250, 50),
    }
    names = ["se", "c", "nw", "e", "s", "w", "ne", "sw", "n"]
    order = serial_order(centroids=[cells[n] for n in names], areas=[10_000] * 9)
    assert [names[i] for i in order] == ["nw", "n", "ne", "w", "c", "e", "sw", "s", "se"]


def test_balance_report_lists_every_grid_with_its_deviation():
    region, sites = square_community()
    target = DesignTarget.by_households(300, 500)
    grids = design_grids(region=region, buildings=sites, target=target)
    from geodata.grid_design import BalanceRow

    rows = [
        BalanceRow.of(
            key=i,
            label=f"{i:03d}",
            households=g.households,
            buildings=len(g.building_keys),
            area_m2=g.area_m2,
            compactness=g.compactness,
            target=target,
        )
        for i, g in enumerate(grids, start=1)
    ]
    lines = balance_report_lines(rows=rows, target=target)
    assert lines[0] == "目标：每格 300–500 户；共 10 个网格，10 个达标。"
    assert lines[1] == "户数 最少/中位/最多：400 / 400 / 400"
    assert len(lines) == 5 + 10
    assert lines[5].split()[:3] == ["001", "400", "10"]
    assert "+0%" in lines[5]


# --- bad input: a clear Chinese message -------------------------------------------------------


def test_a_self_intersecting_community_is_refused():
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    with pytest.raises(GridDesignError, match="社区边界不是有效的多边形（边界自相交"):
        design_grids(region=bowtie, buildings=[], target=DesignTarget.by_households())


def test_an_empty_or_linear_community_is_refused():
    with pytest.raises(GridDesignError, match="社区边界为空"):
        design_grids(region=Polygon(), buildings=[], target=DesignTarget.by_households())
    with pytest.raises(GridDesignError, match="社区边界必须是面"):
        design_grids(region=LineString([(0, 0), (1, 1)]), buildings=[], target=DesignTarget.by_households())


def test_a_community_without_households_cannot_be_designed_by_households():
    region, sites = square_community()
    empty = [BuildingSite(key=s.key, location=s.location, footprint=s.footprint) for s in sites]
    with pytest.raises(GridDesignError, match="社区内没有登记住户，无法按户数划分网格"):
        design_grids(region=region, buildings=empty, target=DesignTarget.by_households())
    # ... but it can be designed by area.
    assert len(design_grids(region=region, buildings=empty, target=DesignTarget.by_area(100_000))) == 10


def test_a_building_larger_than_the_maximum_makes_the_target_impossible():
    region, sites = square_community()
    tower = BuildingSite(key=999, location=Point(X0 + 500, Y0 + 500), households=620, label="幸福路1号")
    with pytest.raises(GridDesignError) as refused:
        design_grids(region=region, buildings=[*sites, tower], target=DesignTarget.by_households(300, 500))
    assert str(refused.value) == (
        "楼栋「幸福路1号」有 620 户，超过每个网格的上限 500 户；楼栋不能拆分到两个网格，请把上限提高到至少 620 户。"
    )


def test_a_target_needing_more_than_999_grids_is_refused():
    region, sites = square_community()
    with pytest.raises(GridDesignError, match="需要 10000 个网格，超过网格编码容量"):
        design_grids(region=region, buildings=sites, target=DesignTarget.by_area(100))


def test_an_area_target_smaller_than_the_buildings_allow_is_refused():
    region = box(X0, Y0, X0 + 200, Y0 + 200)
    # One building covering nearly the whole community: no cut can avoid it.
    big = BuildingSite(key=1, location=Point(X0 + 100, Y0 + 100), footprint=box(X0 + 1, Y0 + 1, X0 + 199, Y0 + 199))
    with pytest.raises(GridDesignError, match="在不切分楼栋的前提下无法"):
        design_grids(region=region, buildings=[big], target=DesignTarget.by_area(10_000))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (DesignTarget.by_households(500, 300), "户数下限（500 户）不能大于上限（300 户）"),
        (DesignTarget.by_households(0, 300), "下限必须至少为 1 户"),
        (DesignTarget.by_area(10), "目标面积必须至少为 100 平方米"),
    ],
)
def test_nonsense_targets_are_refused(target, message):
    region, sites = square_community()
    with pytest.raises(GridDesignError, match=message):
        design_grids(region=region, buildings=sites, target=target)


# --- the service on the real register ---------------------------------------------------------


def to_storage(geometry):
    stored = gpd.GeoSeries([geometry], crs=settings.METRIC_SRID).to_crs(settings.STORAGE_SRID).iloc[0]
    return GEOSGeometry(shapely.to_wkb(stored, hex=True), srid=settings.STORAGE_SRID)


def register_community(region, sites, *, code="500104001001", name="测试社区") -> Community:
    """Store a constructed community with its buildings (footprint + location) and households."""
    geom = MultiPolygon(to_storage(region)) if region.geom_type == "Polygon" else to_storage(region)
    district, _ = District.objects.get_or_create(code=code[:6], defaults={"name": "测试区", "geom": geom})
    street, _ = district.streets.get_or_create(code=code[:9], defaults={"name": "测试街道", "geom": geom})
    community = street.communities.create(code=code, name=name, geom=geom)
    buildings = Building.objects.bulk_create(
        Building(
            code=f"{code}-B{site.key:05d}",
            address=f"{name}{site.label}",
            location=to_storage(site.location),
            footprint=MultiPolygon(to_storage(site.footprint)) if site.footprint is not None else None,
        )
        for site in sites
    )
    Household.objects.bulk_create(
        Household(code=f"{building.code}-{n:04d}", building=building, room=f"{n:04d}")
        for building, site in zip(buildings, sites, strict=True)
        for n in range(site.households)
    )
    return community


def stored_tiling_errors(proposal) -> tuple[float, float, int, int]:
    """(|union △ community| m², sum of areas − area of union m², overlapping pairs, non-polygons), by PostGIS.

    Areas are planar in EPSG:4326, as PostGIS reads the stored geometries, converted to m²
    with the community's m² per square degree (docs/grid_design.md, "Exact tiling").
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ST_Area(ST_SymDifference(u.geom, c.geom)) * k.m2,
                   (s.total - ST_Area(u.geom)) * k.m2,
                   (SELECT count(*) FROM geodata_proposedgrid a JOIN geodata_proposedgrid b
                      ON a.proposal_id = b.proposal_id AND a.id < b.id AND ST_Relate(a.geom, b.geom, '2********')
                    WHERE a.proposal_id = %(p)s),
                   (SELECT count(*) FROM geodata_proposedgrid
                    WHERE proposal_id = %(p)s AND (GeometryType(geom) <> 'POLYGON' OR NOT ST_IsValid(geom)))
            FROM geodata_community c,
                 LATERAL (SELECT ST_Area(c.geom::geography) / ST_Area(c.geom) AS m2) k,
                 (SELECT ST_Union(geom) AS geom FROM geodata_proposedgrid WHERE proposal_id = %(p)s) u,
                 (SELECT sum(ST_Area(geom)) AS total FROM geodata_proposedgrid WHERE proposal_id = %(p)s) s
            WHERE c.id = %(c)s
            """,
            {"p": proposal.pk, "c": proposal.community_id},
        )
        return cursor.fetchone()


def buildings_not_whole(proposal) -> int:
    """Buildings whose location is not in exactly one proposed grid or whose footprint is cut."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM geodata_building b
            WHERE (SELECT count(*) FROM geodata_proposedgrid p
                   WHERE p.proposal_id = %(p)s AND ST_Covers(p.geom, b.location)) <> 1
               OR (b.footprint IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM geodata_proposedgrid p
                   WHERE p.proposal_id = %(p)s AND ST_Covers(p.geom, b.location) AND ST_Covers(p.geom, b.footprint)))
            """,
            {"p": proposal.pk},
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("name", list(COMMUNITIES))
def test_stored_proposal_tiles_the_stored_community_exactly(db, name):
    region, sites = COMMUNITIES[name]()
    community = register_community(region, sites)

    proposal = grid_proposal_create(community=community, target=DesignTarget.by_households(300, 500))

    difference, overlap, overlapping_pairs, not_polygons = stored_tiling_errors(proposal)
    assert difference < 0.01
    assert abs(overlap) < 0.01
    assert overlapping_pairs == 0
    assert not_polygons == 0
    assert buildings_not_whole(proposal) == 0
    grids = list(proposal.grids.order_by("position"))
    assert [g.position for g in grids] == list(range(1, len(grids) + 1))
    assert sum(g.households for g in grids) == Household.objects.count()
    assert sum(g.buildings for g in grids) == Building.objects.count()
    assert all(300 <= g.households <= 500 for g in grids)
    assert all(0.25 < g.compactness <= 1 for g in grids)
    balance = proposal_balance(proposal=proposal)
    assert balance.summary.on_target == balance.summary.count == len(grids)
    assert proposal.status == GridDesignProposal.Status.DRAFT


def test_stored_design_matches_the_pure_design(db):
    region, sites = square_community()
    community = register_community(region, sites)
    proposal = grid_proposal_create(community=community, target=DesignTarget.by_households())
    assert list(proposal.grids.order_by("position").values_list("households", flat=True)) == [400] * 10
    balance = proposal_balance(proposal=proposal)
    assert balance.summary.households_min == balance.summary.households_max == 400
    # Areas on the spheroid differ from the Gauss–Krüger plane by the zone's scale factor only.
    assert 99_900 < balance.summary.area_min <= balance.summary.area_max < 100_100


def test_service_refuses_an_invalid_community_boundary_and_stores_nothing(db):
    region, sites = square_community()
    community = register_community(region, sites)
    community.geom = MultiPolygon(
        GEOSGeometry("POLYGON((106.40 29.40, 106.41 29.41, 106.41 29.40, 106.40 29.41, 106.40 29.40))", srid=4326)
    )  # a bow tie, as an import might deliver it; the database would refuse to store it
    with pytest.raises(GridDesignError, match="不是有效的多边形"):
        grid_proposal_create(community=community, target=DesignTarget.by_households())
    assert GridDesignProposal.objects.count() == 0
    assert ProposedGrid.objects.count() == 0


def test_service_refuses_a_community_without_households_and_stores_nothing(db):
    region, sites = square_community()
    community = register_community(region, [BuildingSite(key=s.key, location=s.location) for s in sites])
    with pytest.raises(GridDesignError, match="社区内没有登记住户"):
        grid_proposal_create(community=community, target=DesignTarget.by_households())
    assert GridDesignProposal.objects.count() == 0
    assert ProposedGrid.objects.count() == 0
