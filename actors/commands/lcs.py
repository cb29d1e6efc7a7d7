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


class _Table:
    """Redis's LCS(i, j) table in bit-parallel form: ``rows[i]`` has bit j-1 clear when LCS(i, j) = LCS(i, j-1) + 1.

    Row i is computed from row i-1 as V' = (V + U) | (V - U) with U = V & match_mask(a[i-1]), all ones at
    row 0; so LCS(i, j) is j minus the set bits among the low j bits of row i.
    """

    __slots__ = ("rows",)

    def __init__(self, a: bytes, b: bytes) -> None:
        width = len(b)
        full = (1 << width) - 1
        masks: dict[int, int] = {}
        for j, char in enumerate(b):
            masks[char] = masks.get(char, 0) | (1 << j)
        row = full
        rows = [row]
        for char in a:
            match = row & masks.get(char, 0)
            row = ((row + match) | (row - match)) & full
            rows.append(row)
        self.rows = rows

    def at(self, i: int, j: int) -> int:
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()


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
    result = bytearray(total)
    matches: list[Any] = []
    idx = total
    alen = len(a)
    a_start = a_end = b_start = b_end = 0
    a_start = alen  # alen: no range open
    i, j = len(a), len(b)
    while i > 0 and j > 0:
        emit = False
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
        else:
            if table.at(i - 1, j) > table.at(i, j - 1):
                i -= 1
            else:
                j -= 1
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
    if get_len:
        return total
    return bytes(result)
