"""Geospatial commands on sorted sets (Redis 7.0's geo.c, geohash.c, geohash_helper.c): GEOADD, GEOPOS,
GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS[_RO], GEORADIUSBYMEMBER[_RO].

A position is stored as its 52-bit interleaved geohash, used as the member's score, exactly as Redis stores
it, so the sorted set (and its RDB form) is the same. Positions read back are the centre of the hash's cell,
distances are Redis's haversine on a sphere of 6372797.560856 m. A search reads the score ranges of the
geohash cells Redis scans, in Redis's order (geo_areas.py), and keeps the members whose distance (or box)
test passes, the same test Redis applies, so unsorted matches come in Redis's order and ANY stops where
Redis stops.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import get_typed, parse_int
from actors.commands.geo_areas import score_range, search_cells, spread_bits, squash_bits
from actors.commands.zsets import cmd_zadd, parse_score
from actors.data import events
from actors.data.types import ZSet
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import NULL_ARRAY, HumanDouble

if TYPE_CHECKING:
    from actors.server.client import Client

GEO_STEP_MAX = 26
GEO_LAT_MIN, GEO_LAT_MAX = -85.05112878, 85.05112878
GEO_LONG_MIN, GEO_LONG_MAX = -180.0, 180.0
EARTH_RADIUS_IN_METERS = 6372797.560856
D_R = math.pi / 180.0
GEO_ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
UNIT_ERROR = "ERR unsupported unit provided. please use M, KM, FT, MI"
NOT_FLOAT = "ERR value is not a valid float"


def encode(
    longitude: float, latitude: float, lat_min: float = GEO_LAT_MIN, lat_max: float = GEO_LAT_MAX
) -> int:
    """geohashEncode at GEO_STEP_MAX: latitude bits at even positions, longitude bits at odd ones."""
    lat_offset = (latitude - lat_min) / (lat_max - lat_min) * (1 << GEO_STEP_MAX)
    long_offset = (longitude - GEO_LONG_MIN) / (GEO_LONG_MAX - GEO_LONG_MIN) * (1 << GEO_STEP_MAX)
    return spread_bits(int(lat_offset)) | (spread_bits(int(long_offset)) << 1)


_INDEFINITE = 1 << 63  # x86-64's "integer indefinite": what cvttsd2si gives for a double out of int64's range
_TWO_63 = 9223372036854775808.0


def _cvttsd2si(value: float) -> int:
    """x86-64's truncating double -> int64 conversion, as a 64-bit pattern."""
    if not -_TWO_63 <= value < _TWO_63:
        return _INDEFINITE
    return int(value) & 0xFFFFFFFFFFFFFFFF


def score_bits(score: float) -> int:
    """A member's score as the 52-bit geohash Redis reads from it: ``(uint64_t)score`` in decodeGeohash.

    A geo set's scores are integers under 2**52. Any other sorted set can be read as one too (GEOPOS of a
    ZADD-ed member), and C leaves the conversion of a negative, huge or infinite score undefined; this is the
    result of gcc's x86-64 code, which Redis answers with (inf reads as 0, -inf as 2**63, -5 as 2**64 - 5)."""
    if score < _TWO_63:
        return _cvttsd2si(score)
    return _cvttsd2si(score - _TWO_63) ^ _INDEFINITE


def decode(bits: int) -> tuple[float, float]:
    """geohashDecodeToLongLatWGS84: the centre of the cell, clamped to the valid range."""
    ilat, ilon = squash_bits(bits), squash_bits(bits >> 1)
    scale = float(1 << GEO_STEP_MAX)
    lat_scale, long_scale = GEO_LAT_MAX - GEO_LAT_MIN, GEO_LONG_MAX - GEO_LONG_MIN
    lat_lo = GEO_LAT_MIN + (ilat * 1.0 / scale) * lat_scale
    lat_hi = GEO_LAT_MIN + ((ilat + 1) * 1.0 / scale) * lat_scale
    lon_lo = GEO_LONG_MIN + (ilon * 1.0 / scale) * long_scale
    lon_hi = GEO_LONG_MIN + ((ilon + 1) * 1.0 / scale) * long_scale
    lon = min(max((lon_lo + lon_hi) / 2, GEO_LONG_MIN), GEO_LONG_MAX)
    lat = min(max((lat_lo + lat_hi) / 2, GEO_LAT_MIN), GEO_LAT_MAX)
    return lon, lat


def _lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_IN_METERS * abs(lat2 * D_R - lat1 * D_R)


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """geohashGetDistance (Redis 7.0, with its shortcut for equal longitudes)."""
    v = math.sin((lon2 * D_R - lon1 * D_R) / 2)
    if v == 0.0:
        return _lat_distance(lat1, lat2)
    lat1r, lat2r = lat1 * D_R, lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(math.sqrt(a))


def human_double(value: float) -> HumanDouble:
    """addReplyHumanLongDouble: 17 decimals of the exact value, trailing zeros dropped (a double in RESP3)."""
    from decimal import Decimal  # here: only coordinates in replies need it (GEOPOS, WITHCOORD)

    text = format(Decimal(value), ".17f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return HumanDouble(text.encode())


def _float(raw: bytes) -> float:
    value = parse_score(raw, NOT_FLOAT)
    return -0.0 if value == 0 and raw[:1] == b"-" else value  # kept: an error message prints -0.000000


def _lonlat(raw_lon: bytes, raw_lat: bytes) -> tuple[float, float]:
    """extractLongLatOrReply."""
    lon, lat = _float(raw_lon), _float(raw_lat)
    if lon < GEO_LONG_MIN or lon > GEO_LONG_MAX or lat < GEO_LAT_MIN or lat > GEO_LAT_MAX:
        raise CommandError(f"ERR invalid longitude,latitude pair {lon:f},{lat:f}")
    return lon, lat


def _unit(raw: bytes) -> float:
    factor = UNITS.get(raw.lower())
    if factor is None:
        raise CommandError(UNIT_ERROR)
    return factor


def _distance_reply(meters: float, factor: float) -> bytes:
    return b"%.4f" % (meters / factor)


# -- GEOADD / GEOPOS / GEODIST / GEOHASH -------------------------------------------------------------------


@command("geoadd", -5, "write denyoom", (1, 1, 1), "geo", "Add one or more geospatial items to a sorted set")
def cmd_geoadd(client: Client, argv: list[bytes]) -> Any:
    i = 2
    options: list[bytes] = []
    nx = xx = False
    while i < len(argv):
        option = argv[i].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option == b"ch":
            pass
        else:
            break
        options.append(argv[i])
        i += 1
    if (len(argv) - i) % 3 or (nx and xx):
        raise CommandError(errors.SYNTAX)
    zadd = [b"ZADD", argv[1], *options]
    for j in range(i, len(argv), 3):
        lon, lat = _lonlat(argv[j], argv[j + 1])
        zadd += [b"%d" % encode(lon, lat), argv[j + 2]]
    client.propagate_as = None
    reply = cmd_zadd(client, zadd)
    client.propagate_as = [zadd]  # as Redis: GEOADD is propagated as the ZADD it became
    return reply


def _zset(client: Client, key: bytes) -> ZSet | None:
    zset: ZSet | None = get_typed(client, key, ZSet)
    return zset


def _positions(client: Client, argv: list[bytes]) -> list[tuple[float, float] | None]:
    """The (longitude, latitude) of each member named after the key, None for a missing one."""
    zset = _zset(client, argv[1])
    out: list[tuple[float, float] | None] = []
    for member in argv[2:]:
        score = zset.score(member) if zset is not None else None
        out.append(None if score is None else decode(score_bits(score)))
    return out


@command("geopos", -2, "readonly", (1, 1, 1), "geo", "Returns longitude and latitude of members")
def cmd_geopos(client: Client, argv: list[bytes]) -> Any:
    # A missing member is a null array, as Redis's addReplyNullArray (RESP2 ``*-1``, RESP3 ``_``).
    return [
        NULL_ARRAY if p is None else [human_double(p[0]), human_double(p[1])]
        for p in _positions(client, argv)
    ]


@command("geodist", -4, "readonly", (1, 1, 1), "geo", "Returns the distance between two members")
def cmd_geodist(client: Client, argv: list[bytes]) -> Any:
    if len(argv) > 5:
        raise CommandError(errors.SYNTAX)
    factor = _unit(argv[4]) if len(argv) == 5 else 1.0
    zset = _zset(client, argv[1])
    if zset is None:
        return None
    a, b = zset.score(argv[2]), zset.score(argv[3])
    if a is None or b is None:
        return None
    return _distance_reply(distance(*decode(score_bits(a)), *decode(score_bits(b))), factor)


@command("geohash", -2, "readonly", (1, 1, 1), "geo", "Returns members as standard geohash strings")
def cmd_geohash(client: Client, argv: list[bytes]) -> Any:
    out: list[Any] = []
    for position in _positions(client, argv):
        if position is None:
            out.append(None)
            continue
        bits = encode(*position, -90.0, 90.0)  # re-encoded on the standard latitude range
        out.append(
            bytes(GEO_ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] if i < 10 else 48 for i in range(11))
        )
    return out


# -- searches ------------------------------------------------------------------------------------------------


RADIUS_COORDS, RADIUS_MEMBER, RADIUS_NOSTORE, GEOSEARCH, GEOSEARCHSTORE = 1, 2, 4, 8, 16


def _radius(raw_radius: bytes, raw_unit: bytes) -> tuple[float, float]:
    """extractDistanceOrReply: (radius in the unit, metres per unit)."""
    radius = parse_score(raw_radius, "ERR need numeric radius")
    if radius < 0:
        raise CommandError("ERR radius cannot be negative")
    return radius, _unit(raw_unit)


def _box(raw: list[bytes]) -> tuple[float, float, float]:
    """extractBoxOrReply: (width, height, metres per unit)."""
    width = parse_score(raw[0], "ERR need numeric width")
    height = parse_score(raw[1], "ERR need numeric height")
    if width < 0 or height < 0:
        raise CommandError("ERR height or width cannot be negative")
    return width, height, _unit(raw[2])


def _position(zset: ZSet, member: bytes) -> tuple[float, float]:
    score = zset.score(member)
    if score is None:
        raise CommandError("ERR could not decode requested zset member")
    return decode(score_bits(score))


def _georadius_generic(client: Client, argv: list[bytes], src: int, flags: int) -> Any:
    """georadiusGeneric, check for check: GEORADIUS[BYMEMBER][_RO], GEOSEARCH and GEOSEARCHSTORE."""
    zset = _zset(client, argv[src])
    store: bytes | None = None
    store_dist = False
    center: tuple[float, float] | None = None
    radius_m: float | None = None
    box_m: tuple[float, float] | None = None
    factor = 1.0
    if flags & RADIUS_COORDS:
        base = 6
        center = _lonlat(argv[2], argv[3])
        radius, factor = _radius(argv[4], argv[5])
        radius_m = radius * factor
    elif flags & RADIUS_MEMBER:
        base = 5
        if zset is not None:
            center = _position(zset, argv[2])
            radius, factor = _radius(argv[3], argv[4])
            radius_m = radius * factor
    else:
        base = 2
        if flags & GEOSEARCHSTORE:
            base, store = 3, argv[1]
    with_dist = with_hash = with_coord = False
    from_member = from_lonlat = by_radius = by_box = False
    sort = 0
    any_ = False
    count = 0
    i = base
    while i < len(argv):
        option = argv[i].lower()
        more = len(argv) - i - 1
        if option == b"withdist":
            with_dist = True
        elif option == b"withhash":
            with_hash = True
        elif option == b"withcoord":
            with_coord = True
        elif option == b"any":
            any_ = True
        elif option == b"asc":
            sort = 1
        elif option == b"desc":
            sort = -1
        elif option == b"count" and more >= 1:
            count = parse_int(argv[i + 1])
            if count <= 0:
                raise CommandError("ERR COUNT must be > 0")
            i += 1
        elif option in (b"store", b"storedist") and more >= 1 and not flags & (RADIUS_NOSTORE | GEOSEARCH):
            store, store_dist = argv[i + 1], option == b"storedist"
            i += 1
        elif option == b"storedist" and flags & GEOSEARCHSTORE:
            store_dist = True
        elif option == b"frommember" and more >= 1 and flags & GEOSEARCH and not from_lonlat:
            if zset is not None:
                center = _position(zset, argv[i + 1])
            from_member = True
            i += 1
        elif option == b"fromlonlat" and more >= 2 and flags & GEOSEARCH and not from_member:
            center = _lonlat(argv[i + 1], argv[i + 2])
            from_lonlat = True
            i += 2
        elif option == b"byradius" and more >= 2 and flags & GEOSEARCH and not by_box:
            radius, factor = _radius(argv[i + 1], argv[i + 2])
            radius_m, by_radius = radius * factor, True
            i += 2
        elif option == b"bybox" and more >= 3 and flags & GEOSEARCH and not by_radius:
            width, height, factor = _box(argv[i + 1 : i + 4])
            box_m, by_box = (width * factor, height * factor), True
            i += 3
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if store is not None and (with_dist or with_hash or with_coord):
        what = "GEOSEARCHSTORE" if flags & GEOSEARCHSTORE else "STORE option in GEORADIUS"
        raise CommandError(f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    name = argv[0].decode("utf-8", "replace")
    if flags & GEOSEARCH and not (from_member or from_lonlat):
        raise CommandError(f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")
    if flags & GEOSEARCH and not (by_radius or by_box):
        raise CommandError(f"ERR exactly one of BYRADIUS and BYBOX arguments must be provided for {name}")
    if any_ and not count:
        raise CommandError("ERR the ANY argument requires COUNT argument")
    keyspace = client.server.keyspace
    if zset is None:
        if store is None:
            return []
        if keyspace.delete(client.db, store):
            keyspace.dirty += 1
            keyspace.notify(client.db, events.GENERIC, b"del", store)
        return 0
    assert center is not None
    lon0, lat0 = center
    found: list[tuple[float, float, bytes, float, float]] = []
    for cell in search_cells(lon0, lat0, radius_m, box_m):
        if any_ and len(found) >= count:
            break
        low, high = score_range(cell)
        start, stop = zset.score_start(float(low), False), zset.score_stop(float(high), True)
        for score, member in zset.slice(start, stop):
            lon, lat = decode(score_bits(score))
            if box_m is not None:
                width_m, height_m = box_m
                if _lat_distance(lat, lat0) > height_m / 2 or distance(lon, lat, lon0, lat) > width_m / 2:
                    continue
                meters = distance(lon0, lat0, lon, lat)
            else:
                meters = distance(lon0, lat0, lon, lat)
                if meters > (radius_m or 0.0):
                    continue
            found.append((meters, score, member, lon, lat))
            if any_ and len(found) >= count:
                break
    if count and not sort and not any_:
        sort = 1  # COUNT without an order: the nearest ones
    if sort:
        found.sort(key=lambda f: f[0], reverse=sort < 0)
    if count:
        found = found[:count]
    if store is not None:
        if not found:
            if keyspace.delete(client.db, store):
                keyspace.dirty += 1
                keyspace.notify(client.db, events.GENERIC, b"del", store)
            return 0
        target = ZSet()
        for meters, score, member, _lon, _lat in found:
            target.add(member, meters / factor if store_dist else score)
        keyspace.set(client.db, store, target)
        keyspace.dirty += len(found)
        event = b"geosearchstore" if flags & GEOSEARCH else b"georadiusstore"
        keyspace.notify(client.db, events.ZSET, event, store)
        return len(found)
    out: list[Any] = []
    for meters, score, member, lon, lat in found:
        if not (with_dist or with_hash or with_coord):
            out.append(member)
            continue
        item: list[Any] = [member]
        if with_dist:
            item.append(_distance_reply(meters, factor))
        if with_hash:
            item.append(score_bits(score))
        if with_coord:
            item.append([human_double(lon), human_double(lat)])
        out.append(item)
    return out


@command("geosearch", -7, "readonly", (1, 1, 1), "geo", "Query a sorted set representing a geospatial index")
def cmd_geosearch(client: Client, argv: list[bytes]) -> Any:
    return _georadius_generic(client, argv, 1, GEOSEARCH)


@command(
    "geosearchstore", -8, "write denyoom", (1, 2, 1), "geo", "Query a geospatial index and store the result"
)
def cmd_geosearchstore(client: Client, argv: list[bytes]) -> Any:
    return _georadius_generic(client, argv, 2, GEOSEARCH | GEOSEARCHSTORE)


@command("georadius", -6, "write denyoom", (1, 1, 1), "geo", "Query a geospatial index by radius")
def cmd_georadius(client: Client, argv: list[bytes]) -> Any:
    return _georadius_generic(client, argv, 1, RADIUS_COORDS)


@command("georadius_ro", -6, "readonly", (1, 1, 1), "geo", "Query a geospatial index by radius (read-only)")
def cmd_georadius_ro(client: Client, argv: list[bytes]) -> Any:
    return _georadius_generic(client, argv, 1, RADIUS_COORDS | RADIUS_NOSTORE)


@command(
    "georadiusbymember", -5, "write denyoom", (1, 1, 1), "geo", "Query a geospatial index around a member"
)
def cmd_georadiusbymember(client: Client, argv: list[bytes]) -> Any:
    return _georadius_generic(client, argv, 1, RADIUS_MEMBER)


@command(
    "georadiusbymember_ro",
    -5,
    "readonly",
    (1, 1, 1),
    "geo",
    "Query a geospatial index around a member (read-only)",
)
def cmd_georadiusbymember_ro(client: Client, argv: list[bytes]) -> Any:
    return _georadius_generic(client, argv, 1, RADIUS_MEMBER | RADIUS_NOSTORE)
