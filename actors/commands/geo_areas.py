"""The geohash cells a GEO search scans, in Redis 7.0's order (geohash_helper.c
``geohashCalculateAreasByShapeWGS84`` and geo.c ``membersOfAllNeighbors``): the centre's cell at a step
estimated from the radius, then its neighbours north, south, east, west, north-east, north-west, south-east,
south-west, those the search area cannot reach left out. Each cell is a range of sorted-set scores, so a
search reads only those ranges (O(log N + M)) and returns unsorted matches in Redis's order.
"""

from __future__ import annotations

import math

GEO_LAT_MIN, GEO_LAT_MAX = -85.05112878, 85.05112878
GEO_LONG_MIN, GEO_LONG_MAX = -180.0, 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856
MERCATOR_MAX = 20037726.37
GEO_STEP_MAX = 26
_ODD_BITS = 0xAAAAAAAAAAAAAAAA  # longitude bits
_EVEN_BITS = 0x5555555555555555  # latitude bits
_MASK64 = (1 << 64) - 1

# A cell: (bits, step). None stands for a neighbour left out (Redis's GZERO).
Cell = tuple[int, int]


def _deg_rad(angle: float) -> float:
    return angle * (math.pi / 180.0)


def _rad_deg(angle: float) -> float:
    return angle / (math.pi / 180.0)


def spread_bits(v: int) -> int:
    """The 32 bits of ``v`` at the even bit positions of a 64-bit integer (interleave64's step)."""
    v &= 0xFFFFFFFF
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    return (v | (v << 1)) & 0x5555555555555555


def squash_bits(v: int) -> int:
    """The even bits of ``v`` packed into 32 (deinterleave64's step)."""
    v &= 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    return (v | (v >> 16)) & 0x00000000FFFFFFFF


def estimate_steps(range_m: float, lat: float) -> int:
    """geohashEstimateStepsByRadius."""
    if range_m == 0:
        return GEO_STEP_MAX
    step = 1
    while range_m < MERCATOR_MAX:
        range_m *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), GEO_STEP_MAX)


def encode_step(lon: float, lat: float, step: int) -> int:
    """geohashEncode at ``step`` bits per coordinate."""
    lat_offset = (lat - GEO_LAT_MIN) / (GEO_LAT_MAX - GEO_LAT_MIN) * (1 << step)
    long_offset = (lon - GEO_LONG_MIN) / (GEO_LONG_MAX - GEO_LONG_MIN) * (1 << step)
    return spread_bits(int(lat_offset)) | (spread_bits(int(long_offset)) << 1)


def decode_area(cell: Cell) -> tuple[float, float, float, float]:
    """geohashDecode: (lat_min, lat_max, lon_min, lon_max) of the cell."""
    bits, step = cell
    ilat, ilon = squash_bits(bits), squash_bits(bits >> 1)
    scale = float(1 << step)
    lat_scale, long_scale = GEO_LAT_MAX - GEO_LAT_MIN, GEO_LONG_MAX - GEO_LONG_MIN
    return (
        GEO_LAT_MIN + (ilat / scale) * lat_scale,
        GEO_LAT_MIN + ((ilat + 1) / scale) * lat_scale,
        GEO_LONG_MIN + (ilon / scale) * long_scale,
        GEO_LONG_MIN + ((ilon + 1) / scale) * long_scale,
    )


def _move(cell: Cell, dx: int, dy: int) -> Cell:
    """geohash_move_x then geohash_move_y (wrapping around at the edges, as Redis's do)."""
    bits, step = cell
    shift = 64 - step * 2
    if dx:
        x, y = bits & _ODD_BITS, bits & _EVEN_BITS
        zz = _EVEN_BITS >> shift
        x = (x + zz + 1) if dx > 0 else ((x | zz) - (zz + 1))
        bits = ((x & _MASK64) & (_ODD_BITS >> shift)) | y
    if dy:
        x, y = bits & _ODD_BITS, bits & _EVEN_BITS
        zz = _ODD_BITS >> shift
        y = (y + zz + 1) if dy > 0 else ((y | zz) - (zz + 1))
        bits = x | ((y & _MASK64) & (_EVEN_BITS >> shift))
    return bits, step


# C's arithmetic where Python's raises: a radius or box of inf (or 1e308 m) is valid input for Redis, whose
# cos(inf) is NaN and whose x / 0.0 is inf; comparisons with NaN then fail as they do in C.
def _c_cos(radians: float) -> float:
    return math.cos(radians) if math.isfinite(radians) else math.nan


def _c_divide(dividend: float, divisor: float) -> float:
    if divisor:
        return dividend / divisor
    if dividend != dividend or not dividend:
        return math.nan
    return math.copysign(math.inf, dividend) * math.copysign(1.0, divisor)


def bounding_box(
    lon: float, lat: float, width_m: float, height_m: float
) -> tuple[float, float, float, float]:
    """geohashBoundingBox: (min_lon, min_lat, max_lon, max_lat); half sizes in meters."""
    lat_delta = _rad_deg(height_m / EARTH_RADIUS_IN_METERS)
    long_delta_top = _rad_deg(_c_divide(width_m / EARTH_RADIUS_IN_METERS, _c_cos(_deg_rad(lat + lat_delta))))
    long_delta_bottom = _rad_deg(
        _c_divide(width_m / EARTH_RADIUS_IN_METERS, _c_cos(_deg_rad(lat - lat_delta)))
    )
    delta = long_delta_bottom if lat < 0 else long_delta_top
    return lon - delta, lat - lat_delta, lon + delta, lat + lat_delta


def search_cells(
    lon: float, lat: float, radius_m: float | None, box_m: tuple[float, float] | None
) -> list[Cell]:
    """The cells to scan for a search around (lon, lat), in scanning order, as membersOfAllNeighbors skips
    them (left-out neighbours, and a cell equal to the one scanned just before it)."""
    if box_m is not None:
        width_m, height_m = box_m
        min_lon, min_lat, max_lon, max_lat = bounding_box(lon, lat, width_m / 2, height_m / 2)
        # (products, not ``**``: for a huge box ``**`` raises OverflowError where C's multiplication gives inf)
        reach_m = math.sqrt((width_m / 2) * (width_m / 2) + (height_m / 2) * (height_m / 2))
    else:
        reach_m = radius_m or 0.0
        min_lon, min_lat, max_lon, max_lat = bounding_box(lon, lat, reach_m, reach_m)
    steps = estimate_steps(reach_m, lat)
    centre = (encode_step(lon, lat, steps), steps)
    north, south = _move(centre, 0, 1), _move(centre, 0, -1)
    east, west = _move(centre, 1, 0), _move(centre, -1, 0)
    if (
        decode_area(north)[1] < max_lat
        or decode_area(south)[0] > min_lat
        or decode_area(east)[3] < max_lon
        or decode_area(west)[2] > min_lon
    ) and steps > 1:
        steps -= 1
        centre = (encode_step(lon, lat, steps), steps)
    around: list[Cell | None] = [
        _move(centre, 0, 1),  # north
        _move(centre, 0, -1),  # south
        _move(centre, 1, 0),  # east
        _move(centre, -1, 0),  # west
        _move(centre, 1, 1),  # north-east
        _move(centre, -1, 1),  # north-west
        _move(centre, 1, -1),  # south-east
        _move(centre, -1, -1),  # south-west
    ]
    if steps >= 2:
        lat_min, lat_max, lon_min, lon_max = decode_area(centre)
        left_out = set()
        if lat_min < min_lat:
            left_out |= {1, 7, 6}  # south, south-west, south-east (indexes into ``around``)
        if lat_max > max_lat:
            left_out |= {0, 4, 5}
        if lon_min < min_lon:
            left_out |= {3, 7, 5}
        if lon_max > max_lon:
            left_out |= {2, 6, 4}
        around = [None if i in left_out else cell for i, cell in enumerate(around)]
    cells = [centre]
    last: Cell | None = None  # Redis compares with the last neighbour scanned, never with the centre
    for cell in around:
        if cell is None or cell == last:
            continue
        cells.append(cell)
        last = cell
    return cells


def score_range(cell: Cell) -> tuple[int, int]:
    """geohashGetRange: the cell's scores, [min, max)."""
    bits, step = cell
    shift = 52 - step * 2
    return bits << shift, (bits + 1) << shift
