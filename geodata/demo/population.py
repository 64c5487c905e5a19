"""Buildings, households and residents of the demo district (synthetic, deterministic).

Generated in two steps around the design of the dense street's grids:

1. `buildings_place` places the buildings (metric footprints) and chooses the rooms let to
   households: in a light street inside its grids, in the dense street inside its blocks
   (街区), before any of its grids exists;
2. geodata.demo.design designs the dense street's grids around these buildings;
3. `population_build` then codes every building by its grid (grid code + serial), and
   generates the households and their residents.

Each grid or block draws from its own random stream (seeded by the demo seed and the grid
code or block key), so its buildings do not change when another one changes. Personal data
stays in clear only in memory: geodata.demo.store encrypts it on the way into the database.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from geodata import pii
from geodata.demo.draw import share_out, stochastic_round, weighted
from geodata.demo.layout import Layout, Projector
from geodata.demo.plan import DemoPlan
from geodata.demo.progress import SILENT, Progress
from geodata.models import Building, Household, PersonTag

# Buildings keep this far inside their grid or block (its streets and pavements) and this
# far from each other, so a footprint never touches a road and facilities placed along the
# roads never fall inside a building.
SETBACK_M = 8.0
SPACING_M = 6.0
_PLACEMENT_ATTEMPTS = 40


@dataclass(frozen=True)
class _Kind:
    use: str
    length: tuple[float, float]
    width: tuple[float, float]
    floors: tuple[int, int]
    rooms_per_floor: int  # 0: nobody lives there
    unit_length_m: float = 1e9  # one stairwell (单元) per this many metres of length
    shops_below: bool = False  # ground floor let to shops (商住)


_KINDS = {
    "slab": _Kind(Building.Use.RESIDENTIAL.value, (30, 60), (11, 14), (5, 8), 2, unit_length_m=20),
    "tower": _Kind(Building.Use.RESIDENTIAL.value, (22, 28), (20, 26), (18, 33), 4),
    "low": _Kind(Building.Use.RESIDENTIAL.value, (14, 24), (9, 12), (2, 4), 2),
    "mixed": _Kind(Building.Use.MIXED.value, (30, 50), (12, 15), (6, 9), 2, unit_length_m=20, shops_below=True),
    "shops": _Kind(Building.Use.COMMERCIAL.value, (20, 45), (15, 28), (1, 4), 0),
    "office": _Kind(Building.Use.OFFICE.value, (24, 36), (16, 22), (5, 15), 0),
    "public": _Kind(Building.Use.PUBLIC.value, (30, 55), (20, 35), (2, 5), 0),
    "workshop": _Kind(Building.Use.INDUSTRIAL.value, (40, 80), (20, 35), (1, 3), 0),
}
# Old low-rise worker housing dominates the dense street (about 13 households a building).
_DENSE_MIX = {"slab": 45, "tower": 3, "low": 22, "mixed": 10, "shops": 10, "office": 4, "public": 6}
_LIGHT_MIX = {"low": 50, "slab": 15, "mixed": 5, "shops": 10, "public": 5, "workshop": 15}

# Household sizes (persons) and their weights: mean ≈ 3.0, as in Chongqing's census.
_SIZES = (1, 2, 3, 4, 5, 6)
_SIZE_WEIGHTS_LOCAL = (11, 23, 28, 19, 13, 6)
_SIZE_WEIGHTS_MIGRANT = (28, 30, 26, 12, 4, 0)
ELDERLY_AGE = 60

Room = tuple[int, int, int]  # (unit, floor, room)


@dataclass
class PlacedBuilding:
    """A building before it has a code: where it stands and which of its rooms are let."""

    container: str  # the grid code (light streets) or block key (dense street) it was placed in
    community_code: str
    dense: bool
    use: str
    floors: int
    address: str
    footprint: Polygon  # storage CRS
    location: Point  # storage CRS, inside the footprint
    footprint_metric: Polygon
    location_metric: Point
    households: list[Room] = field(default_factory=list)  # rooms let to a household, sorted


@dataclass
class Placement:
    buildings: list[PlacedBuilding]
    roads: dict[str, str]  # grid code or block key -> the road it lies on


@dataclass
class BuildingDraft:
    code: str
    address: str
    floors: int
    use: str
    footprint: Polygon  # storage CRS
    location: Point  # storage CRS, inside the footprint
    grid_code: str


@dataclass
class HouseholdDraft:
    code: str
    building: int  # index into Population.buildings
    unit: str
    room: str
    household_type: str
    head_name: str = ""
    phone: str = ""


@dataclass
class PersonDraft:
    household: int  # index into Population.households
    name: str
    sex: str
    birth_date: dt.date
    ethnicity: str
    id_number: str
    phone: str
    tags: list[str]


@dataclass
class Population:
    buildings: list[BuildingDraft] = field(default_factory=list)
    households: list[HouseholdDraft] = field(default_factory=list)
    persons: list[PersonDraft] = field(default_factory=list)
    roads: dict[str, str] = field(default_factory=dict)  # grid code or block key -> road name


@dataclass(frozen=True)
class _Container:
    key: str
    community_code: str
    geom_metric: Polygon
    dense: bool


def _containers(layout: Layout) -> list[_Container]:
    """The light streets' grids and the dense street's blocks, community by community in code order."""
    by_community: dict[str, list[_Container]] = defaultdict(list)
    for grid in layout.grids:
        by_community[grid.community_code].append(_Container(grid.code, grid.community_code, grid.geom_metric, False))
    for block in layout.blocks:
        by_community[block.community_code].append(_Container(block.key, block.community_code, block.geom_metric, True))
    return [container for community in layout.communities for container in by_community[community.code]]


def buildings_place(
    *, plan: DemoPlan, layout: Layout, seed: int, scale: float, progress: Progress = SILENT
) -> Placement:
    """Buildings and the rooms let to households, before the dense street has grids.

    The dense street keeps at least its full-size number of buildings at any scale (a
    smaller scale lets fewer of their rooms), so that its designed grids keep their
    full-size layout; light streets have fewer buildings at a smaller scale.
    """
    projector = Projector()
    street_names = {s.code: s.name for s in plan.streets}
    containers = _containers(layout)
    roads = _road_names(plan, containers, seed)
    dense = [c for c in containers if c.dense]
    dense_total = round(plan["dense"]["buildings"] * max(scale, 1.0))
    counts = dict(zip((c.key for c in dense), share_out(dense_total, [_site(c).area for c in dense]), strict=True))
    low, high = plan["light"]["buildings_per_grid"]
    house_numbers: dict[str, itertools.count] = {}
    buildings: list[PlacedBuilding] = []
    dense_rooms: list[tuple[int, Room]] = []  # (building, room) of every dwelling of the dense street
    for container in progress.iterate(containers, desc="布置楼栋", unit="网格/街区"):
        rng = random.Random(f"{seed}:buildings:{container.key}")
        count = counts[container.key] if container.dense else stochastic_round(rng.uniform(low, high) * scale, rng)
        road = roads[container.key]
        numbers = house_numbers.setdefault(road, itertools.count(1))
        for footprint_m, kind_name in _place(container, count, _DENSE_MIX if container.dense else _LIGHT_MIX, rng):
            kind = _KINDS[kind_name]
            footprint = projector.storage(footprint_m)
            location = shapely.point_on_surface(footprint)
            floors = rng.randint(*kind.floors)
            building = PlacedBuilding(
                container=container.key,
                community_code=container.community_code,
                dense=container.dense,
                use=kind.use,
                floors=floors,
                address=f"{street_names[container.community_code[:9]]}{road}{next(numbers)}号",
                footprint=footprint,
                location=location,
                footprint_metric=footprint_m,
                location_metric=projector.metric(location),
            )
            rooms = _rooms(kind, floors, footprint_m)
            if container.dense:
                dense_rooms.extend((len(buildings), room) for room in rooms)
            else:
                occupancy = rng.uniform(*plan["light"]["occupancy"])
                building.households = sorted(rng.sample(rooms, round(len(rooms) * occupancy)))
            buildings.append(building)
    rng = random.Random(f"{seed}:dense-households")
    wanted = min(round(plan["dense"]["households"] * scale), len(dense_rooms))
    for index, room in sorted(rng.sample(dense_rooms, wanted)):
        buildings[index].households.append(room)
    return Placement(buildings=buildings, roads=roads)


def population_build(
    *,
    plan: DemoPlan,
    placement: Placement,
    grid_of: Sequence[str],
    seed: int,
    progress: Progress = SILENT,
) -> Population:
    """Code the placed buildings by their grid (`grid_of`, one grid code per placed building),
    then generate their households and residents."""
    population = Population(roads=placement.roads)
    by_grid: dict[str, list[int]] = defaultdict(list)
    for index, grid_code in enumerate(grid_of):
        by_grid[grid_code].append(index)
    coded = sorted(
        (f"{grid_code}{serial:04d}", index)
        for grid_code, indexes in by_grid.items()
        for serial, index in enumerate(indexes, start=1)
    )
    for code, index in progress.iterate(coded, desc="生成楼栋与住户", unit="栋"):
        placed = placement.buildings[index]
        population.buildings.append(
            BuildingDraft(
                code=code,
                address=placed.address,
                floors=placed.floors,
                use=placed.use,
                footprint=placed.footprint,
                location=placed.location,
                grid_code=grid_of[index],
            )
        )
        _add_households(
            population,
            len(population.buildings) - 1,
            placed.households,
            plan,
            "dense" if placed.dense else "light",
        )
    population.households.sort(key=lambda h: h.code)
    _add_persons(population, plan, seed, progress)
    return population


def _site(container: _Container) -> BaseGeometry:
    """Where buildings may stand: the grid or block less its streets (possibly empty or in parts)."""
    return container.geom_metric.buffer(-SETBACK_M)


def _place(
    container: _Container, count: int, mix: Mapping[str, float], rng: random.Random
) -> list[tuple[Polygon, str]]:
    """Up to `count` non-overlapping rectangular footprints (metric) wholly inside the site.

    Buildings of one grid or block share an orientation, with a few degrees of play.
    """
    site = _site(container)
    if count <= 0 or site.is_empty:
        return []
    shapely.prepare(site)
    x0, y0, x1, y1 = site.bounds
    orientation = rng.uniform(0, 180)
    placed: list[tuple[Polygon, str]] = []
    for _ in range(count):
        kind_name = weighted(rng, mix)
        kind = _KINDS[kind_name]
        for attempt in range(_PLACEMENT_ATTEMPTS):
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if not shapely.contains_xy(site, x, y):
                continue
            shrink = 0.97**attempt
            footprint = _rectangle(
                x, y, rng.uniform(*kind.length) * shrink, rng.uniform(*kind.width), orientation + rng.uniform(-8, 8)
            )
            if not site.contains(footprint):
                continue
            if placed and shapely.dwithin(np.array([p for p, _ in placed]), footprint, SPACING_M).any():
                continue
            placed.append((footprint, kind_name))
            break
    return placed


def _rectangle(x: float, y: float, length: float, width: float, degrees: float) -> Polygon:
    angle = math.radians(degrees)
    along = np.array([math.cos(angle), math.sin(angle)]) * length / 2
    across = np.array([-math.sin(angle), math.cos(angle)]) * width / 2
    centre = np.array([x, y])
    corners = [centre - along - across, centre + along - across, centre + along + across, centre - along + across]
    return Polygon(corners)


def _rooms(kind: _Kind, floors: int, footprint_m: Polygon) -> list[Room]:
    if not kind.rooms_per_floor:
        return []
    length = max(footprint_m.minimum_rotated_rectangle.length / 2 - 1, 1)
    units = max(1, int(length // kind.unit_length_m))
    first_floor = 2 if kind.shops_below else 1
    return [
        (unit, floor, room)
        for unit in range(1, units + 1)
        for floor in range(first_floor, floors + 1)
        for room in range(1, kind.rooms_per_floor + 1)
    ]


def _add_households(population: Population, building: int, rooms: Sequence[Room], plan: DemoPlan, profile: str) -> None:
    weights = plan["household_types"][profile]
    code = population.buildings[building].code
    for unit, floor, room in rooms:
        # One random stream per household, so the type does not depend on the order of drawing.
        rng = random.Random(f"{code}:{unit}:{floor}:{room}")
        population.households.append(
            HouseholdDraft(
                code=f"{code}{unit:02d}{floor:02d}{room:02d}",
                building=building,
                unit=f"{unit}单元",
                room=f"{floor}{room:02d}",
                household_type=_HOUSEHOLD_TYPES[weighted(rng, weights)],
            )
        )


# Plain strings (the choices' values), ready for COPY.
_HOUSEHOLD_TYPES = {
    "registered": Household.Type.REGISTERED.value,
    "resident": Household.Type.RESIDENT.value,
    "floating": Household.Type.FLOATING.value,
    "rental": Household.Type.RENTAL.value,
}


def _road_names(plan: DemoPlan, containers: Sequence[_Container], seed: int) -> dict[str, str]:
    """A few fictional roads per community; each grid or block lies on one of its community's roads."""
    rng = random.Random(f"{seed}:roads")
    names = [word + suffix for word in plan["road_words"] for suffix in dict.fromkeys(plan["road_suffixes"])]
    rng.shuffle(names)
    pool = itertools.cycle(names)
    roads: dict[str, str] = {}
    by_community: dict[str, list[str]] = {}
    for container in containers:
        by_community.setdefault(container.community_code, []).append(container.key)
    for keys in by_community.values():
        community_roads = [next(pool) for _ in range(max(1, min(4, len(keys) // 3)))]
        for index, key in enumerate(keys):
            roads[key] = community_roads[index % len(community_roads)]
    return roads


# --- residents ------------------------------------------------------------------------


class _People:
    """Synthetic names, ages, ID numbers and phones."""

    def __init__(self, plan: DemoPlan, seed: int) -> None:
        self.plan = plan
        self.seed = seed
        self.reference = plan.reference_date
        surnames = plan["surnames"]
        # Common surnames are much more common (roughly Zipf, as in real registers).
        self.surnames = surnames
        self.surname_cumulative = list(itertools.accumulate(1 / (rank + 4) for rank in range(len(surnames))))
        self.given = {"M": plan["given_male"], "F": plan["given_female"]}
        self.areas = plan["id_areas"]
        self.used_ids: set[str] = set()

    def surname(self, rng: random.Random) -> str:
        position = rng.random() * self.surname_cumulative[-1]
        return self.surnames[bisect.bisect(self.surname_cumulative, position)]

    def given_name(self, rng: random.Random, sex: str) -> str:
        pool = self.given[sex]
        return "".join(rng.choice(pool) for _ in range(1 if rng.random() < 0.3 else 2))

    def birth_date(self, rng: random.Random, age: int) -> dt.date:
        return self.reference - dt.timedelta(days=int(age * 365.25) + rng.randrange(365))

    def id_number(self, rng: random.Random, *, area: str, birth: dt.date, sex: str) -> str:
        # GB 11643: area (6) + birth date (8) + sequence (3, odd for men) + check character.
        while True:
            sequence = rng.randrange(100) * 10 + rng.choice((1, 3, 5, 7, 9) if sex == "M" else (0, 2, 4, 6, 8))
            first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
            if first17 not in self.used_ids:
                self.used_ids.add(first17)
                return first17 + pii.id_number_check_char(first17)

    def id_area(self, rng: random.Random, household_type: str) -> str:
        local, chongqing, other = self.areas["local"], self.areas["chongqing"], self.areas["other"]
        draw = rng.random()
        if household_type == Household.Type.REGISTERED:
            return local if draw < 0.85 else rng.choice(chongqing)
        if household_type == Household.Type.RESIDENT:
            return local if draw < 0.3 else rng.choice(chongqing) if draw < 0.8 else rng.choice(other)
        return rng.choice(chongqing) if draw < 0.45 else rng.choice(other)

    def phone(self, rng: random.Random, age: int) -> str:
        has_phone = 0.92 if 18 <= age <= 75 else 0.4 if age > 75 else 0.3 if age >= 14 else 0.0
        if rng.random() >= has_phone:
            return ""
        return f"{rng.choice(self.plan['mobile_prefixes'])}{rng.randrange(10**8):08d}"


def _members(rng: random.Random, household_type: str) -> list[tuple[int, str, str]]:
    """(age, sex, generation) of each member, head first. Generations: 'g' grandparent,
    'p' parent/adult, 'c' child. Ages are consistent inside the family."""
    migrant = household_type in (Household.Type.FLOATING, Household.Type.RENTAL)
    size = rng.choices(_SIZES, weights=_SIZE_WEIGHTS_MIGRANT if migrant else _SIZE_WEIGHTS_LOCAL)[0]
    husband, wife = "M", "F"
    if size == 1:
        if rng.random() < (0.08 if migrant else 0.5):
            return [(int(rng.triangular(60, 95, 72)), "F" if rng.random() < 0.65 else "M", "g")]
        return [(rng.randint(19, 59), rng.choice("MF"), "p")]
    if size == 2:
        draw = rng.random()
        if draw < (0.05 if migrant else 0.42):
            age = int(rng.triangular(60, 92, 68))
            return [(age, husband, "g"), (max(58, age - rng.randint(0, 6)), wife, "g")]
        if draw < 0.85:
            age = rng.randint(22, 59)
            return [(age, husband, "p"), (max(20, age - rng.randint(-2, 5)), wife, "p")]
        parent = rng.randint(30, 55)
        return [(parent, rng.choice("MF"), "p"), (max(0, parent - rng.randint(22, 36)), rng.choice("MF"), "c")]
    children = {3: 1, 4: 2, 5: 1, 6: 2}[size]
    grandparents = size - 2 - children
    if size in (3, 4) and not migrant and rng.random() < 0.3:
        children, grandparents = children - 1, grandparents + 1
    father = rng.randint(30, 50) if grandparents else rng.randint(26, 56)
    mother = max(22, father - rng.randint(-2, 5))
    members = [(father, husband, "p"), (mother, wife, "p")]
    members += [(max(0, mother - rng.randint(22, 36)), rng.choice("MF"), "c") for _ in range(children)]
    grandfather = min(96, father + rng.randint(24, 32))
    sexes = ["M", "F"] if grandparents == 2 else [rng.choice("MF")] * grandparents
    members += [(grandfather - 3 * n, sex, "g") for n, sex in enumerate(sexes)]
    return members


def _add_persons(population: Population, plan: DemoPlan, seed: int, progress: Progress) -> None:
    people = _People(plan, seed)
    ethnicities = plan["ethnicities"]
    towns = {s.code for s in plan.streets if s.is_town}
    households = progress.iterate(population.households, desc="生成人口", unit="户")
    for index, household in enumerate(households):
        rng = random.Random(f"{seed}:persons:{household.code}")
        members = _members(rng, household.household_type)
        family_name = people.surname(rng)
        ethnicity = weighted(rng, ethnicities)
        low_income = household.household_type == Household.Type.REGISTERED and rng.random() < 0.025
        in_town = population.buildings[household.building].grid_code[:9] in towns
        for position, (age, sex, generation) in enumerate(members):
            # Wives and maternal relatives keep their own surname; children take the father's.
            own_surname = position == 0 or sex == "M" or generation == "c"
            name = (family_name if own_surname else people.surname(rng)) + people.given_name(rng, sex)
            birth = people.birth_date(rng, age)
            phone = people.phone(rng, age)
            person = PersonDraft(
                household=index,
                name=name,
                sex=sex,
                birth_date=birth,
                ethnicity=ethnicity,
                id_number=people.id_number(
                    rng, area=people.id_area(rng, household.household_type), birth=birth, sex=sex
                ),
                phone=phone,
                tags=_tags(rng, age=age, sex=sex, alone=len(members) == 1, low_income=low_income, in_town=in_town),
            )
            population.persons.append(person)
            if position == 0:
                household.head_name = name
            if phone and not household.phone:
                household.phone = phone


def _tags(rng: random.Random, *, age: int, sex: str, alone: bool, low_income: bool, in_town: bool) -> list[str]:
    tags = []
    if alone and age >= ELDERLY_AGE:
        tags.append(PersonTag.ELDERLY_ALONE.value)
    if low_income:
        tags.append(PersonTag.LOW_INCOME.value)
    if rng.random() < 0.01 + 0.0015 * max(0, age - 40):
        tags.append(PersonTag.DISABLED.value)
    if 18 <= age <= 60 and rng.random() < 0.002:
        tags.append(PersonTag.KEY_PERSON.value)
    if age < 16 and rng.random() < (0.03 if in_town else 0.005):
        tags.append(PersonTag.LEFT_BEHIND_CHILD.value)
    if sex == "M" and age >= 45 and rng.random() < 0.015:
        tags.append(PersonTag.VETERAN.value)
    return tags
