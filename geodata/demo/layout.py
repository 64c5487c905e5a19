"""Streets, communities, blocks and grids of the demo district: an exact partition of the real boundary.

1. Every level is a Voronoi diagram drawn in the metric CRS (settings.METRIC_SRID), so that
   sizes are in metres: street seeds come from the plan, community and cell seeds are
   spread evenly over their parent by Lloyd relaxation.
2. The Voronoi edges of all levels (each clipped to its parent) and the real district
   boundary are reprojected to the storage CRS and noded together once; polygonize cuts
   the district into faces. Every street, community and cell is a union of these faces,
   so neighbours share exactly the same vertices and each level tiles its parent with no
   gap and no overlap — in the stored coordinates, not just approximately.
3. A face takes the street, community and cell of the nearest seed (the Voronoi rule).
   Where a bay of the boundary cuts a cell in pieces, a small piece joins the neighbour
   with which it shares the longest border and a large one becomes a cell of its own, so
   that every cell is a single polygon.
4. Communities and cells are numbered west→east, north→south (grid_design.serial_order).

In the lightly populated streets the cells are the grids. In the dense street they are
street blocks (街区, the roads run along their edges): its grids are designed later around
the buildings and households by the grid-design tool (geodata.demo.design).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from django.conf import settings
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geodata.demo.plan import DemoPlan, StreetPlan
from geodata.grid_design import serial_order

# Edges are clipped this far beyond their parent so that they still cross the parent's
# boundary after reprojection (which moves points by nanometres), never stopping short.
_CLIP_MARGIN_M = 1.0
_LLOYD_ITERATIONS = 12
# A detached piece of a street or community smaller than this share of it joins the
# neighbour it shares the longest border with; a larger piece stays (regions may be
# multipart, like the district's islands).
_SMALL_PIECE_SHARE = 0.2
# A detached piece of a grid smaller than this share of the community's median grid joins
# a neighbouring grid; a larger one becomes a grid of its own. A whole grid smaller than
# the second share is a sliver and joins a neighbour as well.
_GRID_PIECE_SHARE = 0.35
_GRID_SLIVER_SHARE = 0.1

Label = tuple[int, int, int]  # (street, community, grid) indexes; codes come at the end


class Projector:
    """Storage CRS (WGS84) ⇄ metric CRS, vectorised over whole geometry arrays."""

    def __init__(self) -> None:
        self._forward = Transformer.from_crs(settings.STORAGE_SRID, settings.METRIC_SRID, always_xy=True)
        self._inverse = Transformer.from_crs(settings.METRIC_SRID, settings.STORAGE_SRID, always_xy=True)

    @staticmethod
    def _apply(transformer: Transformer) -> Callable[[np.ndarray], np.ndarray]:
        return lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    def metric(self, geometry):
        return shapely.transform(geometry, self._apply(self._forward))

    def storage(self, geometry):
        return shapely.transform(geometry, self._apply(self._inverse))


@dataclass(frozen=True)
class StreetShape:
    code: str
    name: str
    geom: MultiPolygon


@dataclass(frozen=True)
class CommunityShape:
    code: str
    name: str
    street_code: str
    geom: MultiPolygon


@dataclass(frozen=True)
class GridShape:
    code: str
    name: str
    community_code: str
    geom: Polygon
    geom_metric: Polygon


@dataclass(frozen=True)
class BlockShape:
    """A street block (街区) of the dense street: buildings stand inside, roads run along its edges."""

    key: str  # community code + "-" + a serial in code order; not stored
    community_code: str
    geom: Polygon
    geom_metric: Polygon


@dataclass(frozen=True)
class Layout:
    district: MultiPolygon
    streets: list[StreetShape]
    communities: list[CommunityShape]
    grids: list[GridShape]  # in code order; the dense street's only once designed
    blocks: list[BlockShape]  # the dense street's blocks, by community in code order


def layout_build(*, plan: DemoPlan, boundary: BaseGeometry, seed: int) -> Layout:
    """Cut `boundary` (the district, storage CRS) into the plan's streets and communities, the
    grids of the light streets and the blocks of the dense street."""
    rng = np.random.default_rng([seed, 1])
    projector = Projector()
    district_m = projector.metric(boundary)
    frame = shapely.box(*shapely.buffer(shapely.envelope(district_m), 2000).bounds)

    street_seeds = np.array([_xy(projector.metric(shapely.Point(s.seed_lonlat))) for s in plan.streets])
    street_cells = _voronoi(street_seeds, frame)
    edges = [_clipped_edges(street_cells, district_m)]
    community_seeds: list[np.ndarray] = []
    grid_seeds: dict[tuple[int, int], np.ndarray] = {}
    for s, street in enumerate(plan.streets):
        street_area = shapely.intersection(street_cells[s], district_m)
        seeds = _spread(street_area, street.communities, rng)
        community_seeds.append(seeds)
        cells = _voronoi(seeds, frame)
        edges.append(_clipped_edges(cells, street_area))
        community_areas = shapely.intersection(cells, street_area)
        for c, count in enumerate(_grid_counts(street, community_areas, plan, rng)):
            grid_seeds[s, c] = _spread(community_areas[c], count, rng)
            edges.append(_clipped_edges(_voronoi(grid_seeds[s, c], frame), community_areas[c]))

    faces = _faces(boundary, projector.storage(np.concatenate(edges)))
    points = shapely.get_coordinates(projector.metric(shapely.point_on_surface(faces)))
    labels = _nearest_seed_labels(points, street_seeds, community_seeds, grid_seeds)
    partition = _Partition(faces, labels, projector)
    partition.merge_detached_pieces()
    return _numbered(partition, plan, projector, seed)


def _xy(point: BaseGeometry) -> tuple[float, float]:
    return float(point.x), float(point.y)  # type: ignore[attr-defined]


def _voronoi(seeds: np.ndarray, frame: Polygon) -> np.ndarray:
    """Voronoi cells of `seeds`, in the order of the seeds, covering `frame`."""
    if len(seeds) == 1:
        return np.array([frame], dtype=object)
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame, ordered=True)
    return np.asarray(shapely.get_parts(cells))


def _clipped_edges(cells: np.ndarray, parent: BaseGeometry) -> np.ndarray:
    if len(cells) < 2:
        return np.array([], dtype=object)
    return shapely.intersection(shapely.boundary(cells), shapely.buffer(parent, _CLIP_MARGIN_M))


def _random_points(area: BaseGeometry, count: int, rng: np.random.Generator) -> np.ndarray:
    shapely.prepare(area)
    x0, y0, x1, y1 = area.bounds
    found: list[np.ndarray] = []
    while sum(len(f) for f in found) < count:
        candidates = rng.uniform((x0, y0), (x1, y1), size=(max(64, count * 4), 2))
        found.append(candidates[shapely.contains_xy(area, candidates[:, 0], candidates[:, 1])])
    return np.concatenate(found)[:count]


def _spread(area: BaseGeometry, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` seeds spread evenly over `area` (Lloyd relaxation: each seed moves to the
    centroid of its cell, so the cells end up of similar size and compact)."""
    if count <= 0 or area.is_empty:
        return np.empty((0, 2))
    seeds = _random_points(area, count, rng)
    if count == 1:
        return seeds
    frame = shapely.box(*shapely.buffer(shapely.envelope(area), 1000).bounds)
    for _ in range(_LLOYD_ITERATIONS):
        pieces = shapely.intersection(_voronoi(seeds, frame), area)
        present = ~shapely.is_empty(pieces)
        seeds[present] = shapely.get_coordinates(shapely.centroid(pieces[present]))
    return seeds


def _grid_counts(
    street: StreetPlan, community_areas: np.ndarray, plan: DemoPlan, rng: np.random.Generator
) -> list[int]:
    """Cells per community: a few grids in a light street; in the dense street the plan's
    count (`grids`, read as blocks) shared out by area (largest remainder), at least one each."""
    if street.grids is None:
        low, high = plan["light_grids_per_community"]
        return [int(rng.integers(low, high + 1)) for _ in community_areas]
    areas = shapely.area(community_areas)
    quotas = areas / areas.sum() * street.grids
    counts = np.maximum(np.floor(quotas).astype(int), 1)
    for index in np.argsort(-(quotas - np.floor(quotas)), kind="stable"):
        if counts.sum() >= street.grids:
            break
        counts[index] += 1
    return [int(n) for n in counts]


def _faces(boundary: BaseGeometry, edges: np.ndarray) -> np.ndarray:
    """The faces of the district boundary and all edges noded together, inside the district."""
    linework = np.concatenate([[shapely.boundary(boundary)], edges[~shapely.is_empty(edges)]])
    noded = shapely.union_all(linework)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    shapely.prepare(boundary)
    # Edges reach 1 m beyond their parent; faces they close outside the district are dropped.
    return faces[shapely.contains(boundary, shapely.point_on_surface(faces))]


def _nearest(points: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    distances = ((points[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2)
    return distances.argmin(axis=1)


def _nearest_seed_labels(
    points: np.ndarray,
    street_seeds: np.ndarray,
    community_seeds: list[np.ndarray],
    grid_seeds: dict[tuple[int, int], np.ndarray],
) -> np.ndarray:
    labels = np.zeros((len(points), 3), dtype=int)
    labels[:, 0] = _nearest(points, street_seeds)
    for s, seeds in enumerate(community_seeds):
        in_street = np.flatnonzero(labels[:, 0] == s)
        labels[in_street, 1] = _nearest(points[in_street], seeds)
        for c in range(len(seeds)):
            in_community = in_street[labels[in_street, 1] == c]
            if len(in_community):
                labels[in_community, 2] = _nearest(points[in_community], grid_seeds[s, c])
    return labels


class _Partition:
    """Faces with their (street, community, grid) labels and the borders between faces."""

    def __init__(self, faces: np.ndarray, labels: np.ndarray, projector: Projector) -> None:
        self.faces = faces
        self.labels = labels
        self.area = shapely.area(projector.metric(faces))
        left, right = shapely.STRtree(faces).query(faces, predicate="intersects")
        pairs = left < right
        left, right = left[pairs], right[pairs]
        shared = shapely.intersection(shapely.boundary(faces[left]), shapely.boundary(faces[right]))
        lengths = shapely.length(projector.metric(shared))
        self.borders: list[dict[int, float]] = [{} for _ in faces]
        for i, j, length in zip(left, right, lengths, strict=True):
            if length > 0:  # faces touching at a point are not neighbours
                self.borders[i][j] = self.borders[j][i] = float(length)

    def label(self, face: int) -> Label:
        s, c, g = self.labels[face]
        return int(s), int(c), int(g)

    def groups(self, depth: int) -> dict[tuple[int, ...], list[int]]:
        found: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for face in range(len(self.faces)):
            found[self.label(face)[:depth]].append(face)
        return dict(sorted(found.items()))

    def pieces(self, faces: list[int]) -> list[list[int]]:
        """Connected pieces of `faces` (sharing an edge), largest first."""
        members, seen, found = set(faces), set(), []
        for start in faces:
            if start in seen:
                continue
            seen.add(start)
            piece, frontier = [start], [start]
            while frontier:
                for neighbour in self.borders[frontier.pop()]:
                    if neighbour in members and neighbour not in seen:
                        seen.add(neighbour)
                        piece.append(neighbour)
                        frontier.append(neighbour)
            found.append(sorted(piece))
        return sorted(found, key=lambda p: (-self.area[p].sum(), p[0]))

    def border_by_grid(self, piece: list[int]) -> dict[Label, float]:
        inside, lengths = set(piece), defaultdict[Label, float](float)
        for face in piece:
            for neighbour, length in self.borders[face].items():
                if neighbour not in inside:
                    lengths[self.label(neighbour)] += length
        return dict(lengths)

    def merge_detached_pieces(self) -> None:
        for depth in (1, 2):
            while self._merge_one_small_piece(depth):
                pass
        while self._fix_one_grid():
            pass

    def _merge_one_small_piece(self, depth: int) -> bool:
        for key, faces in self.groups(depth).items():
            total = self.area[faces].sum()
            for piece in self.pieces(faces)[1:]:
                small = self.area[piece].sum() < _SMALL_PIECE_SHARE * total
                if (small and self._join_neighbour(piece, key[:-1])) or self._join_nearest(piece, depth):
                    return True
        return False

    def _fix_one_grid(self) -> bool:
        medians = {
            key: statistics.median(self.area[faces].sum() for faces in grids.values())
            for key, grids in _nested(self.groups(3)).items()
        }
        for key, faces in self.groups(3).items():
            median = medians[key[:2]]
            pieces = self.pieces(faces)
            if len(pieces) > 1:
                small = self.area[pieces[1]].sum() < _GRID_PIECE_SHARE * median
                if not (small and self._join_neighbour(pieces[1], key[:2])):
                    self._new_grid(pieces[1])
                return True
            is_sliver = self.area[faces].sum() < _GRID_SLIVER_SHARE * median
            if is_sliver and self._join_neighbour(faces, key[:2]):
                return True
        return False

    def _join_neighbour(self, piece: list[int], parent: tuple[int, ...]) -> bool:
        """Give `piece` to the neighbouring grid with the longest shared border, preferring
        grids under the same parent; False when the piece has no neighbour (an island)."""
        lengths = self.border_by_grid(piece)
        if not lengths:
            return False
        same_parent = {label: n for label, n in lengths.items() if label[: len(parent)] == parent}
        candidates = same_parent or lengths
        target = max(sorted(candidates), key=lambda label: candidates[label])
        self.labels[piece] = target
        return True

    def _join_nearest(self, piece: list[int], depth: int) -> bool:
        """An island (no border with anything) belongs with the nearest land: give it to the
        group of the nearest face if that is another group. The Voronoi rule alone would
        attach an island to whichever seed is nearest, possibly a street across the district."""
        if self.border_by_grid(piece):
            return False
        distances = shapely.distance(self.faces, _union(self.faces[piece]))
        distances[piece] = np.inf
        nearest = int(np.argmin(distances))
        if self.label(nearest)[:depth] == self.label(piece[0])[:depth]:
            return False
        self.labels[piece] = self.labels[nearest]
        return True

    def _new_grid(self, piece: list[int]) -> None:
        s, c, _ = self.label(piece[0])
        siblings = self.labels[(self.labels[:, 0] == s) & (self.labels[:, 1] == c), 2]
        self.labels[piece, 2] = siblings.max() + 1


def _nested(groups: dict[tuple[int, ...], list[int]]) -> dict[tuple[int, ...], dict[tuple[int, ...], list[int]]]:
    nested: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = defaultdict(dict)
    for key, faces in groups.items():
        nested[key[:-1]][key] = faces
    return nested


def _union(faces: np.ndarray) -> BaseGeometry:
    # The faces form an exact coverage (shared edges, same vertices): a coverage union only
    # dissolves the shared edges and keeps every vertex as it is.
    return shapely.coverage_union_all(faces)


def _multi(geometry: BaseGeometry) -> MultiPolygon:
    return geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])


def code_order(geometries: Sequence[BaseGeometry], projector: Projector) -> list[int]:
    """Indices of `geometries` (storage CRS) in code order (grid_design.serial_order, metric)."""
    metric = projector.metric(np.array(geometries, dtype=object))
    centroids = [(float(p.x), float(p.y)) for p in shapely.centroid(metric)]
    return serial_order(centroids=centroids, areas=[float(a) for a in shapely.area(metric)])


def _numbered(partition: _Partition, plan: DemoPlan, projector: Projector, seed: int) -> Layout:
    names = _community_names(plan, seed)
    label = plan.label
    streets, communities, grids, blocks = [], [], [], []
    for (s,), street_faces in partition.groups(1).items():
        street = plan.streets[s]
        streets.append(
            StreetShape(code=street.code, name=street.name + label, geom=_multi(_union(partition.faces[street_faces])))
        )
        community_groups = _nested(partition.groups(2))[(s,)]
        community_keys = list(community_groups)
        community_geoms = [_union(partition.faces[community_groups[k]]) for k in community_keys]
        for community_serial, index in enumerate(code_order(community_geoms, projector), start=1):
            community_code = f"{street.code}{community_serial:03d}"
            short_name = next(names[street.is_town])
            communities.append(
                CommunityShape(
                    code=community_code,
                    name=short_name + label,
                    street_code=street.code,
                    geom=_multi(community_geoms[index]),
                )
            )
            cell_groups = _nested(partition.groups(3))[community_keys[index]]
            cell_geoms = [_union(partition.faces[faces]) for faces in cell_groups.values()]
            for serial, cell_index in enumerate(code_order(cell_geoms, projector), start=1):
                geom = cell_geoms[cell_index]
                if not isinstance(geom, Polygon) or not geom.is_valid:
                    raise AssertionError(f"demo cell {community_code}-{serial:03d} is not one valid polygon")
                if street.code == plan.dense_street:
                    blocks.append(
                        BlockShape(
                            key=f"{community_code}-{serial:03d}",
                            community_code=community_code,
                            geom=geom,
                            geom_metric=projector.metric(geom),
                        )
                    )
                    continue
                grids.append(
                    GridShape(
                        code=f"{community_code}{serial:03d}",
                        name=f"{short_name}第{serial}网格",
                        community_code=community_code,
                        geom=geom,
                        geom_metric=projector.metric(geom),
                    )
                )
    district = _multi(_union(partition.faces))
    return Layout(district=district, streets=streets, communities=communities, grids=grids, blocks=blocks)


def _community_names(plan: DemoPlan, seed: int) -> dict[bool, Iterator[str]]:
    """Unique fictional names: 社区 in 街道; in 镇 a share of them are 村."""
    rng = np.random.default_rng([seed, 2])
    words = list(rng.permutation(plan["community_words"]))
    village_share = plan["village_share_in_towns"]

    def street_names() -> Iterator[str]:
        while True:
            yield f"{words.pop()}社区"

    def town_names() -> Iterator[str]:
        while True:
            yield f"{words.pop()}{'村' if rng.random() < village_share else '社区'}"

    return {False: street_names(), True: town_names()}
