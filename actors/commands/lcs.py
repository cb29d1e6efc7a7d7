"""LCS: the longest common subsequence of two strings, as Redis 7.0's ``lcsCommand`` (t_string.c) computes it.

Redis fills the (len(a)+1) x (len(b)+1) dynamic-programming table bottom-up, then walks it back from its end
to build the subsequence and, with IDX, the matching ranges in the order Redis emits them (last to first),
each range kept only when it is at least MINMATCHLEN long. The walk reads only the cells on its path, so the
table here is kept in the bit-parallel form of Allison and Dix (one Python int per row, a bit per column):
a row costs a few big-integer operations instead of a Python loop over len(b) cells (two 2,000-byte strings
take milliseconds instead of a second), and a cell is recovered on demand from its row's bits. Replies are
the same as with the full table, ties included. The size bound stays Redis's: (len(a)+1) x (len(b)+1)
cells of 4 bytes against proto-max-bulk-len.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands._util import parse_int
from protocol import errors
from protocol.errors import CommandError

if TYPE_CHECKING:
    from actors.server.client import Client

NOT_STRINGS = "ERR The specified keys must contain string values"
LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
TOO_BIG = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
# Bytes per table cell (Redis's uint32_t), for the proto-max-bulk-len bound on the table.
CELL_BYTES = 4
# A translate table taking every byte to the digit "0" (one byte of it set to "1" per match mask).
_ALL_ZERO_DIGITS = b"0" * 256


class _Table:
    """Redis's LCS(i, j) table in bit-parallel form: ``rows[i]`` has bit j-1 clear when LCS(i, j) = LCS(i, j-1) + 1.

    Row i is computed from row i-1 as V' = (V + U) | (V - U) with U = V & match_mask(a[i-1]), all ones at
    row 0; so LCS(i, j) is j minus the set bits among the low j bits of row i.
    """

    __slots__ = ("rows",)

    def __init__(self, a: bytes, b: bytes) -> None:
        width = len(b)
        full = (1 << width) - 1
        # Each byte's match mask (bit j set where b[j] is that byte), for the bytes a holds: one C translate to
        # "0"/"1" text and one base-2 parse (linear) per byte, not a big-int OR per position (quadratic).
        reversed_b = b[::-1]  # (the text's first digit is the highest bit: position len(b) - 1)
        masks: dict[int, int] = {}
        for char in set(a) & set(b):
            digits = bytearray(_ALL_ZERO_DIGITS)
            digits[char] = 0x31  # "1"
            masks[char] = int(reversed_b.translate(digits), 2)
        row = full
        rows = [row]
        for char in a:
            match = row & masks.get(char, 0)
            row = ((row + match) | (row - match)) & full
            rows.append(row)
        self.rows = rows

    def at(self, i: int, j: int) -> int:
        return j - self.ones_below(i, j)

    def bits(self, i: int) -> bytes:
        """Row i as little-endian bytes: a bit test in O(1) (a shift of a big int copies it)."""
        row = self.rows[i]
        return row.to_bytes(max(1, (row.bit_length() + 7) // 8), "little")

    def ones_below(self, i: int, j: int) -> int:
        """The set bits among row i's low j bits (j - LCS(i, j))."""
        return (self.rows[i] & ((1 << j) - 1)).bit_count()


@command("lcs", -3, "readonly", (1, 2, 1), "string", "Find longest common substring")
def cmd_lcs(client: Client, argv: list[bytes]) -> Any:
    server = client.server
    values = []
    for key in argv[1:3]:
        value = server.keyspace.lookup_read(client.db, key)
        if value is not None and type(value) is not bytes:
            raise CommandError(NOT_STRINGS)
        values.append(value or b"")
    a, b = values
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    i = 3
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_match_len = True
        elif opt == b"minmatchlen" and i + 1 < len(argv):
            min_match_len = max(parse_int(argv[i + 1]), 0)
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if get_len and get_idx:
        raise CommandError(LEN_AND_IDX)
    if (len(a) + 1) * (len(b) + 1) * CELL_BYTES > server.config["proto-max-bulk-len"]:
        raise CommandError(TOO_BIG)

    table = _Table(a, b)
    total = table.at(len(a), len(b))
    if get_len:
        return total  # (Redis walks the table back only for the subsequence or IDX)
    result = bytearray(total)
    matches: list[Any] = []
    idx = total
    alen = len(a)
    a_start = a_end = b_start = b_end = 0
    a_start = alen  # alen: no range open
    i, j = len(a), len(b)
    # The walk reads LCS(i-1, j) and LCS(i, j-1) at each step. Both come from running counts of the set bits of
    # rows i and i-1 below column j: a step left takes one bit off each (an O(1) byte lookup), and only a step up
    # counts a row afresh, at most len(a) times. (Counting at every step cost O(len(b)) per cell of the path: LCS
    # of a 1-byte and a 1 MB string took minutes; Redis takes milliseconds.)
    cur_bits = table.bits(i)
    cur = table.ones_below(i, j)
    up_bits = table.bits(i - 1) if i else b""
    up = table.ones_below(i - 1, j) if i else 0
    while i > 0 and j > 0:
        emit = False
        byte, shift = (j - 1) >> 3, (j - 1) & 7
        bit_cur = (cur_bits[byte] >> shift) & 1 if byte < len(cur_bits) else 0
        bit_up = (up_bits[byte] >> shift) & 1 if byte < len(up_bits) else 0
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:  # contiguous: the range grows backward
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
            cur, cur_bits = up - bit_up, up_bits
            if i:
                up_bits, up = table.bits(i - 1), table.ones_below(i - 1, j)
        else:
            if j - up > (j - 1) - (cur - bit_cur):  # LCS(i - 1, j) > LCS(i, j - 1)
                i -= 1
                cur, cur_bits = up, up_bits
                if i:
                    up_bits, up = table.bits(i - 1), table.ones_below(i - 1, j)
            else:
                j -= 1
                cur -= bit_cur
                up -= bit_up
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if get_idx and (min_match_len == 0 or match_len >= min_match_len):
                match: list[Any] = [[a_start, a_end], [b_start, b_end]]
                if with_match_len:
                    match.append(match_len)
                matches.append(match)
            a_start = alen
    if get_idx:
        return {b"matches": matches, b"len": total}
    return bytes(result)
