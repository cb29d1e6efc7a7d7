"""DEBUG PROTOCOL <type>: one reply of each RESP type, so clients (and Redis's own protocol tests) can check
their parsers; Redis 7.0's debug.c replies, values included.

    string integer double bignum null array set map attrib push verbatim true false

ATTRIB sends its attribute to RESP3 clients only, then a real reply; PUSH refuses RESP2, as Redis does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.commands.debug import DEBUG_HANDLERS
from protocol import errors
from protocol.errors import CommandError
from protocol.resp import Attribute, BigNumber, MultiReply, Push, Verbatim

if TYPE_CHECKING:
    from actors.server.client import Client

WRONG_TYPE_NAME = (
    "ERR Wrong protocol type name. Please use one of the following: "
    "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"
)


def debug_protocol(client: Client, argv: list[bytes]) -> Any:
    if len(argv) != 3:
        raise errors.wrong_arity("debug|protocol")
    name = argv[2].lower()
    if name == b"string":
        return b"Hello World"
    if name == b"integer":
        return 12345
    if name == b"double":
        return 3.141
    if name == b"bignum":
        return BigNumber(b"1234567999999999999999999999999999999")
    if name == b"null":
        return None
    if name == b"array":
        return [0, 1, 2]
    if name == b"set":
        return {0, 1, 2}
    if name == b"map":
        return {0: False, 1: True, 2: False}
    if name == b"attrib":
        # Attributes are not replies: a real reply follows (and RESP2 clients get only that).
        attribute = Attribute({b"key-popularity": [b"key:123", 90]})
        return MultiReply([attribute, b"Some real reply following the attribute"])
    if name == b"push":
        if not client.resp3:
            raise CommandError("ERR RESP2 is not supported by this command")
        # A push is out of band: a normal reply follows, so a client that drops pushes still gets one.
        return MultiReply([Push([b"server-cpu-usage", 42]), b"Some real reply following the push reply"])
    if name == b"true":
        return True
    if name == b"false":
        return False
    if name == b"verbatim":
        return Verbatim(b"This is a verbatim\nstring")
    raise CommandError(WRONG_TYPE_NAME)


DEBUG_HANDLERS[b"protocol"] = debug_protocol
