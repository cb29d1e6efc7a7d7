"""PFSELFTEST: the HyperLogLog code checks itself, as Redis's pfselftestCommand does, at a smaller scale.

The checks are Redis's: every dense register set to random values and read back (packing errors), then
elements added to a dense and to a sparse HLL side by side, at each power of ten checking that the sparse one
is still sparse while small, that both encodings count the same, and that the estimate is within Redis's
bound (6 standard errors, 1 at ten elements). Redis runs 1000 register rounds and ten million elements in C;
here 10 rounds and 100,000 elements (about a second of Python, during which the node answers no one, as
Redis's own PFSELFTEST blocks), which still catches a wrong packing, encoding or estimator. The errors are
Redis's ``TESTFAILED`` replies.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from actors.commands import command
from actors.commands.hyperloglog import (
    HLL_DENSE_SIZE,
    HLL_HDR_SIZE,
    HLL_REGISTER_MAX,
    HLL_REGISTERS,
    _count,
    _dense_get,
    _dense_set,
    _dense_values,
    _Hll,
    _new_hll,
    _registers_of,
    pattern_of,
)
from protocol.errors import CommandError
from protocol.resp import OK

if TYPE_CHECKING:
    from actors.server.client import Client

REGISTER_ROUNDS = 10  # Redis: HLL_TEST_CYCLES, 1000
MAX_ELEMENTS = 100_000  # Redis: 10,000,000


@command(
    "pfselftest", 1, "admin", (0, 0, 0), "hyperloglog", "An internal command for testing HyperLogLog values"
)
def cmd_pfselftest(client: Client, argv: list[bytes]) -> Any:
    rng = random.Random()
    _check_registers(rng)
    _check_estimates(rng, int(client.server.config["hll-sparse-max-bytes"]))
    return OK


def _check_registers(rng: random.Random) -> None:
    registers = bytearray(HLL_DENSE_SIZE - HLL_HDR_SIZE)
    for _ in range(REGISTER_ROUNDS):
        values = bytes(rng.randrange(HLL_REGISTER_MAX + 1) for _ in range(HLL_REGISTERS))
        for index, value in enumerate(values):
            _dense_set(registers, index, value)
        for index, value in enumerate(values):
            if _dense_get(registers, index) != value:
                raise CommandError(f"ERR TESTFAILED Register error at {index}")
        if _dense_values(registers) != values:  # the bulk decoder PFCOUNT uses
            raise CommandError("ERR TESTFAILED Register error in the bulk decoding")


def _check_estimates(rng: random.Random, max_sparse_bytes: int) -> None:
    dense = _Hll(_new_hll(), max_sparse_bytes)
    dense.promote()
    sparse = _Hll(_new_hll(), max_sparse_bytes)
    relative_error = 1.04 / math.sqrt(HLL_REGISTERS)
    seed = rng.getrandbits(64)
    checkpoint = 1
    for j in range(1, MAX_ELEMENTS + 1):
        index, count = pattern_of((j ^ seed).to_bytes(8, "little"))
        dense.set(index, count)
        sparse.set(index, count)
        if j != checkpoint:
            continue
        if j < max_sparse_bytes / 2 and sparse.sparse is None:
            raise CommandError("ERR TESTFAILED sparse encoding not used")
        estimate = _count(_dense_values(dense.body))
        if _count(_registers_of(sparse.value(invalidate=False))) != estimate:
            raise CommandError("ERR TESTFAILED dense/sparse disagree")
        max_error = 1 if j == 10 else math.ceil(relative_error * 6 * checkpoint)
        if abs(checkpoint - estimate) > max_error:
            raise CommandError(
                f"ERR TESTFAILED Too big error. card:{checkpoint} abserr:{abs(checkpoint - estimate)}"
            )
        checkpoint *= 10
