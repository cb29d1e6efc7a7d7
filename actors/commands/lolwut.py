"""LOLWUT: Redis 7.0's version banner, and VERSION 5, Georg Nees's "Schotter" drawn in Braille (lolwut5.c).

The drawing follows Redis's arithmetic step for step (C floats rounded to 32 bits, C's round-half-away-from-zero,
Bresenham lines, pixels packed 2x4 into Braille characters), so the first two rows of squares, which are not
randomised, come out byte for byte as Redis draws them; lower rows are shaken by Python's random generator
instead of C's rand(). VERSION 6 (the 8-bit landscape) is not drawn: it is refused with a message.
"""

from __future__ import annotations

import math
import random
import struct
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from actors.version import REDIS_VERSION
from protocol.errors import CommandError
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
        raise CommandError("ERR LOLWUT VERSION 6 is not supported by redactor")
    return Verbatim(f"Redis ver. {REDIS_VERSION}\n".encode())
