"""INCRBYFLOAT / HINCRBYFLOAT arithmetic exactly as Redis 7.0 does it in C ``long double``.

Redis parses both operands with ``strtold`` (util.c ``string2ld``), adds them in ``long double`` and stores
the sum printed with ``"%.17Lf"`` and trimmed (util.c ``ld2string``, mode LD_STR_HUMAN). On x86-64 a long
double is the x87 80-bit extended format: 64 significant bits, exponents down to 2**-16382 (subnormals to
2**-16445) and up to about 1.19e4932. A Python float has only 53 bits, so float arithmetic stores
``0.2 + 0.1`` as "0.30000000000000004" where Redis stores "0.3", and loses 9223372036854775807 outright.

This module emulates the format exactly: a finite value is the ``Fraction`` it denotes, and every operation
rounds once, correctly (ties to even), to that format. Infinities and NaN are plain floats, since nothing is
computed from them. Two Python 3.11 limits shape the code: int <-> decimal str conversion refuses more than
4300 digits (inputs run to 5119 characters and values to 4933 integer digits), so digits are converted in
chunks; and a hostile exponent ("1e999999999") must never build a huge integer, so magnitudes are bounded
from the digit count and exponent before anything is computed.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Significant bits of the x87 extended format (the integer bit is explicit).
SIGNIFICAND_BITS = 64
# Largest binary exponent of a finite value: the largest finite is (2**64 - 1) * 2**(16383 - 63).
MAX_EXPONENT = 16383
# Exponent of the smallest normal; below it the quantum stays at that of the smallest normal's binade.
MIN_NORMAL_EXPONENT = -16382
# The quantum (value of the last significand bit) of the subnormal range: the smallest positive value.
MIN_QUANTUM_EXPONENT = MIN_NORMAL_EXPONENT - (SIGNIFICAND_BITS - 1)
# Redis's MAX_LONG_DOUBLE_CHARS buffer: string2ld refuses input of this length or more.
MAX_INPUT_CHARS = 5 * 1024

# A finite long double is its exact Fraction; inf, -inf and nan are floats.
LongDouble = Fraction | float

ZERO = Fraction(0)
INF = float("inf")

# glibc strtold's syntax in the C locale, anchored at both ends because string2ld wants the whole buffer
# consumed and refuses leading whitespace. "nan" is left out: string2ld refuses any NaN anyway. Both digit
# runs of a mantissa may be empty here; that at least one digit exists is checked after the match.
_NUMBER = re.compile(
    rb"([+-]?)(?:"
    rb"0[xX](?P<hi>[0-9a-fA-F]*)(?:\.(?P<hf>[0-9a-fA-F]*))?(?:[pP](?P<he>[+-]?[0-9]+))?"
    rb"|(?P<di>[0-9]*)(?:\.(?P<df>[0-9]*))?(?:[eE](?P<de>[+-]?[0-9]+))?"
    rb"|(?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    rb")"
)

# Long decimal conversions go this many digits per int()/str() call, well under Python's 4300-digit limit.
_CHUNK = 1000
_CHUNK_POWER = 10**_CHUNK
# "%.17Lf": the value is rounded to a multiple of 10**-17.
_PRINT_SCALE = 10**17


def _decimal_int(digits: bytes) -> int:
    """int(digits) for any length: in one call up to 4000 digits, else _CHUNK digits at a time."""
    if len(digits) <= 4 * _CHUNK:
        return int(digits)
    value = 0
    for start in range(0, len(digits), _CHUNK):
        piece = digits[start : start + _CHUNK]
        value = value * 10 ** len(piece) + int(piece)
    return value


def _decimal_str(value: int) -> str:
    """str(value) for a non-negative int of any size: in one call under ~3900 digits, else by _CHUNK digits."""
    if value.bit_length() < 13000:  # < 3914 digits
        return str(value)
    chunks: list[str] = []
    while value >= _CHUNK_POWER:
        value, low = divmod(value, _CHUNK_POWER)
        chunks.append(str(low).zfill(_CHUNK))
    chunks.append(str(value))
    return "".join(reversed(chunks))


def _exponent(digits: bytes | None) -> int:
    """A written exponent, clamped to +-10**8: beyond that the result over/underflows all the same
    (mantissas hold under 5120 digits), and converting thousands of exponent digits would hit int's limit."""
    if not digits:
        return 0
    negative = digits[:1] == b"-"
    digits = digits.lstrip(b"+-").lstrip(b"0")
    magnitude = 10**8 if len(digits) > 8 else int(digits or b"0")
    return -magnitude if negative else magnitude


def round_exact(num: int, den: int) -> LongDouble:
    """num/den (den > 0) rounded to the nearest long double, ties to even; +-inf past the largest finite."""
    if num == 0:
        return ZERO
    negative = num < 0
    if negative:
        num = -num
    # e = floor(log2(num/den)): the bit lengths put it at one of two neighbours.
    e = num.bit_length() - den.bit_length()
    if (num < den << e) if e >= 0 else (num << -e < den):
        e -= 1
    if e > MAX_EXPONENT:
        return -INF if negative else INF
    # The quantum: SIGNIFICAND_BITS bits below the leading one, but never finer than the subnormal quantum.
    q = max(e - (SIGNIFICAND_BITS - 1), MIN_QUANTUM_EXPONENT)
    if q >= 0:
        den <<= q
    else:
        num <<= -q
    n, rest = divmod(num, den)
    if 2 * rest > den or (2 * rest == den and n & 1):
        n += 1  # may carry into 2**64: still exact, one binade up
    if n.bit_length() + q > MAX_EXPONENT + 1:
        return -INF if negative else INF
    if negative:
        n = -n
    if q >= 0:
        return Fraction(n << q)
    return Fraction(n, 1 << -q)


def parse(raw: bytes) -> LongDouble | None:
    """The long double strtold reads from raw, or None when Redis's string2ld refuses it.

    Refused: empty or >= 5120 bytes, anything that is not wholly one strtold number (leading or trailing
    space included), NaN, overflow to infinity, and a nonzero number that rounds to zero. "inf" and
    "infinity" are accepted (the sum then fails); a literal zero with any exponent is 0.
    """
    if not raw or len(raw) >= MAX_INPUT_CHARS:
        return None
    match = _NUMBER.fullmatch(raw)
    if match is None:
        return None
    negative = match.group(1) == b"-"
    if match.group("inf") is not None:
        return -INF if negative else INF
    hex_int = match.group("hi")
    if hex_int is not None:
        int_digits, frac_digits = hex_int, match.group("hf") or b""
        digit_bits, exponent = 4, _exponent(match.group("he"))
    else:
        int_digits, frac_digits = match.group("di") or b"", match.group("df") or b""
        digit_bits, exponent = 0, _exponent(match.group("de"))
    if not int_digits and not frac_digits:
        return None  # "", ".", "0x", "e5": strtold needs a mantissa digit
    significand = (int_digits + frac_digits).lstrip(b"0")
    if not significand:
        return ZERO
    if digit_bits:  # hexadecimal: significand * 2**(exponent - 4 * fraction digits)
        mantissa = int(significand, 16)
        exponent -= 4 * len(frac_digits)
        top = mantissa.bit_length() + exponent  # value < 2**top
        if top - 1 > MAX_EXPONENT:
            return None
        if top < MIN_QUANTUM_EXPONENT - 1:
            return None  # below half the smallest subnormal: rounds to zero
        num, den = (mantissa << exponent, 1) if exponent >= 0 else (mantissa, 1 << -exponent)
    else:  # decimal: significand * 10**(exponent - fraction digits)
        trimmed = significand.rstrip(b"0")
        exponent += len(significand) - len(trimmed) - len(frac_digits)
        lead = len(trimmed) - 1 + exponent  # 10**lead <= value < 10**(lead + 1)
        if lead > 4932:  # >= 1e4933, past the largest finite (~1.19e4932)
            return None
        if lead < -4952:  # < 1e-4951, under half the smallest subnormal (~3.6e-4951)
            return None
        mantissa = _decimal_int(trimmed)
        num, den = (mantissa * 10**exponent, 1) if exponent >= 0 else (mantissa, 10**-exponent)
    value = round_exact(-num if negative else num, den)
    if isinstance(value, float) or value == 0:
        return None  # strtold's ERANGE: overflow, or a nonzero number that underflowed to zero
    return value


def add(a: LongDouble, b: LongDouble) -> LongDouble:
    """a + b in long double: the exact sum rounded once; inf/-inf past the range, nan for inf + -inf."""
    if isinstance(a, float) or isinstance(b, float):
        # Only the non-finite operands decide the result (inf + finite = inf), and converting a finite
        # Fraction beyond the double range to float would raise.
        return (a if isinstance(a, float) else 0.0) + (b if isinstance(b, float) else 0.0)
    if a.denominator == b.denominator:
        return round_exact(a.numerator + b.numerator, a.denominator)
    return round_exact(
        a.numerator * b.denominator + b.numerator * a.denominator, a.denominator * b.denominator
    )


def format_human(value: Fraction) -> bytes:
    """snprintf("%.17Lf") of value, exact and rounded half to even as glibc does, then ld2string's
    LD_STR_HUMAN trim: trailing zeros after the '.', then a bare '.', and "-0" becomes "0"."""
    num, den = value.numerator, value.denominator
    negative = num < 0
    scaled, rest = divmod(abs(num) * _PRINT_SCALE, den)
    if 2 * rest > den or (2 * rest == den and scaled & 1):
        scaled += 1
    whole, frac = divmod(scaled, _PRINT_SCALE)
    text = _decimal_str(whole)
    if frac:
        text += "." + str(frac).zfill(17)
        text = text.rstrip("0")
    if negative and text != "0":  # a negative value printed as "-0.000..." trims to "-0", stored as "0"
        text = "-" + text
    return text.encode()


def incr(current: bytes | None, increment: bytes) -> bytes | str:
    """INCRBYFLOAT's result: the new stored text, or the error kind as a str.

    current is the key's value (None when missing, which counts as 0). "not-float" when either operand is
    refused by string2ld (Redis gives "ERR value is not a valid float" for both); "nan-or-inf" when the sum
    is NaN or infinite ("ERR increment would produce NaN or Infinity").
    """
    value = ZERO if current is None else parse(current)
    if value is None:
        return "not-float"
    delta = parse(increment)
    if delta is None:
        return "not-float"
    return _sum_text(value, delta)


def hincr(current: bytes | None, increment: bytes) -> bytes | str:
    """HINCRBYFLOAT's result, which checks in another order and words its errors apart (t_hash.c):
    the increment first ("not-float": "ERR value is not a valid float"; "increment-nan-or-inf" when it is
    infinite: "ERR value is NaN or Infinity"), then the field's value ("hash-not-float": "ERR hash value
    is not a float"), then the sum ("nan-or-inf" as for INCRBYFLOAT)."""
    delta = parse(increment)
    if delta is None:
        return "not-float"
    if isinstance(delta, float):
        return "increment-nan-or-inf"
    value = ZERO if current is None else parse(current)
    if value is None:
        return "hash-not-float"
    return _sum_text(value, delta)


def _sum_text(value: LongDouble, delta: LongDouble) -> bytes | str:
    """The stored text of value + delta, or "nan-or-inf" ("ERR increment would produce NaN or Infinity")."""
    total = add(value, delta)
    if isinstance(total, float):
        return "nan-or-inf"
    return format_human(total)
