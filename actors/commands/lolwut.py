"""LOLWUT: Redis 7.0's version banner, and VERSION 5, Georg Nees's "Schotter" drawn in Braille (lolwut5.c).

The drawing follows Redis's arithmetic step for step (C floats rounded to 32 bits, C's round-half-away-from-zero,
Bresenham lines, pixels packed 2x4 into Braille characters), so the first two rows of squares, which are not
randomised, come out byte for byte as Redis draws them; lower rows are shaken by Python's random generator
instead of C's rand(). VERSION 6 (lolwut6.c) draws the same kind of 8-bit city skyline Redis draws: two
layers of plain towers behind one of towers with lit windows, in four ANSI grey levels, each pixel one coloured
space; the sizes and offsets are Redis's, the random numbers Python's, so drawings match Redis's by shape.
"""

from __future__ import annotations

import math
import random
import struct
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.version import REDIS_VERSION
from protocol.resp import Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client


def _f32(value: float) -> float:
    """``value`` stored in a C float."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _c_round(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(width * height)

    def pixel(self, x: int, y: int) -> int:
        if 0 <= x < self.width and 0 <= y < self.height:
            return self.pixels[x + y * self.width]
        return 0

    def draw_pixel(self, x: int, y: int) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[x + y * self.width] = 1

    def draw_line(self, x1: int, y1: int, x2: int, y2: int) -> None:
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        sx = 1 if x1 < x2 else -1
        sy = 1 if y1 < y2 else -1
        err = dx - dy
        while True:
            self.draw_pixel(x1, y1)
            if x1 == x2 and y1 == y2:
                break
            e2 = err * 2
            if e2 > -dy:
                err -= dy
                x1 += sx
            if e2 < dx:
                err += dx
                y1 += sy

    def draw_square(self, x: int, y: int, size: float, angle: float) -> None:
        size = _f32(_c_round(_f32(size / 1.4142135623)))
        k = _f32(math.pi / 4 + angle)
        points = []
        for _ in range(4):
            points.append((_c_round(math.sin(k) * size + x), _c_round(math.cos(k) * size + y)))
            k = _f32(k + math.pi / 2)
        for j in range(4):
            self.draw_line(*points[j], *points[(j + 1) % 4])

    def render(self) -> str:
        """Braille: each character is 2x4 pixels (bits 0-2 and 6 the left column, 3-5 and 7 the right)."""
        lines = []
        for y in range(0, self.height, 4):
            row = []
            for x in range(0, self.width, 2):
                bits = 0
                for bit, (dx, dy) in enumerate(
                    ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3))
                ):
                    if self.pixel(x + dx, y + dy):
                        bits |= 1 << bit
                row.append(chr(0x2800 + bits))
            lines.append("".join(row) + ("\n" if y != self.height - 1 else ""))
        return "".join(lines)


def schotter(cols: int, per_row: int, per_col: int, rng: random.Random) -> str:
    """lwDrawSchotter, rendered."""
    width = cols * 2
    padding = 2 if width > 4 else 0
    side = _f32((width - padding * 2) / per_row)
    canvas = _Canvas(width, int(_f32(side * per_col) + padding * 2))
    for y in range(per_col):
        for x in range(per_row):
            sx = int(_f32(_f32(_f32(x * side) + _f32(side / 2)) + padding))
            sy = int(_f32(_f32(_f32(y * side) + _f32(side / 2)) + padding))
            angle = 0.0
            if y > 1:
                r1, r2, r3 = (_f32(rng.random() / per_col * y) * rng.choice((1, -1)) for _ in range(3))
                angle = r1
                sx = int(sx + _f32(r2 * side / 3))
                sy = int(sy + _f32(r3 * side / 3))
            canvas.draw_square(sx, sy, side, angle)
    return canvas.render()


# lolwut6.c's four grey levels (0 black .. 3 white), each pixel drawn as one coloured space.
_SKYLINE_CELLS = [f"\033[{code} \033[0m" for code in ("0;30;40m", "0;90;100m", "0;37;47m", "0;97;107m")]
_SKYLINE_SKY = 3  # the canvas starts white


def _tower(
    canvas: list[bytearray], rng: random.Random, xoff: int, width: int, height: int, color: int, windows: bool
) -> None:
    """One skyscraper standing on the bottom row: its top row loses two pixels at each end (the roof's
    corners); with ``windows``, every other pair of interior columns on every other row is a window, lit in
    one of the two greys other than the tower's."""
    canvas_width = len(canvas[0])
    lit = [c for c in (1, 2) if c != color]  # the window colours
    bottom = len(canvas) - 1
    top = bottom - height + 1
    for y in range(max(top, 0), bottom + 1):
        row = canvas[y]
        start, end = xoff, xoff + width  # [start, end)
        if y == top:
            start, end = xoff + 2, xoff + width - 2
        lo, hi = max(start, 0), min(end, canvas_width)
        if lo < hi:
            row[lo:hi] = bytes((color,)) * (hi - lo)
        if not windows or not (top + 1 < y < bottom - 1) or (y - top - 1) % 2 == 0:
            continue
        # Window pairs: interior columns (xoff + 1, xoff + width - 2) whose offset from xoff + 1 halves odd.
        limit = min(xoff + width - 2, canvas_width)
        for x in range(xoff + 3, limit, 4):
            shade = lit[rng.getrandbits(1)] if len(lit) == 2 else lit[0]
            if x >= 0:
                row[x] = shade
            if 0 <= x + 1 < limit:
                row[x + 1] = shade


def skyline(cols: int, rows: int, rng: random.Random) -> str:
    """LOLWUT VERSION 6's drawing: ``rows`` lines of ``cols`` coloured cells."""
    canvas = [bytearray((_SKYLINE_SKY,)) * cols for _ in range(rows)]
    for color in (2, 1):  # the far layers, lighter first: no windows
        offset = -10
        while offset < cols:
            offset += rng.randrange(8)
            width = 10 + rng.randrange(9)
            if color == 2:
                height = rows // 2 + rng.randrange(rows) // 2
            else:
                height = rows // 2 + rng.randrange(rows) // 3
            _tower(canvas, rng, offset, width, height, color, windows=False)
            offset += width // 2 if color == 2 else width + 1
    offset = -10
    while offset < cols:  # the near layer, black, with windows
        offset += rng.randrange(8)
        width = 5 + rng.randrange(14)
        if width % 4:
            width += width % 3
        height = rows // 3 + rng.randrange(rows) // 2
        _tower(canvas, rng, offset, width, height, 0, windows=True)
        offset += width + 5
    cell = _SKYLINE_CELLS.__getitem__
    return "\n".join("".join(map(cell, row)) for row in canvas)


def _clamped(raw: bytes, low: int, high: int) -> int:
    """Redis keeps LOLWUT cheap by clamping its sizes, not by refusing them."""
    return min(max(parse_int(raw), low), high)


@command(
    "lolwut", -1, "readonly fast", (0, 0, 0), "server", "Display some computer art and the Redis version"
)
def cmd_lolwut(client: Client, argv: list[bytes]) -> Any:
    version = int(REDIS_VERSION.split(".")[0])
    args = argv[1:]
    if len(argv) >= 3 and argv[1].lower() == b"version":
        version = parse_int(argv[2]) & 0xFFFFFFFF
        args = argv[3:]
    if version == 5:
        cols = _clamped(args[0], 1, 1000) if len(args) > 0 else 66
        per_row = _clamped(args[1], 1, 200) if len(args) > 1 else 8
        per_col = _clamped(args[2], 1, 200) if len(args) > 2 else 12
        art = schotter(cols, per_row, per_col, random.Random())
        return Verbatim(
            f"{art}\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. {REDIS_VERSION}\n".encode()
        )
    if version == 6:
        cols = _clamped(args[0], 1, 1000) if len(args) > 0 else 80
        rows = _clamped(args[1], 1, 1000) if len(args) > 1 else 20
        art = skyline(cols, rows, random.Random())
        return Verbatim(
            f"{art}\nDedicated to the 8 bit game developers of past and present.\n"
            f"Original 8 bit image from Plaguemon by hikikomori. Redis ver. {REDIS_VERSION}\n".encode()
        )
    return Verbatim(f"Redis ver. {REDIS_VERSION}\n".encode())
