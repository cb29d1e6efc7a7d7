"""Errors a client can see, with the exact strings Redis uses.

The tree::

    CommandError                 any error reply; str(e) is the reply without the leading '-'
    +-- WrongTypeError           WRONGTYPE Operation against a key holding the wrong kind of value
    +-- ProtocolError            ERR Protocol error: ...; the connection closes after the reply
    ProtocolVersionError         (envelope) a frame of a version this node does not speak

A command raises ``CommandError("ERR ...")`` and the connection's encoder turns it into an error reply; the
connection and the node carry on. Constants below are the messages used by more than one command.
"""

from __future__ import annotations


class CommandError(Exception):
    """An error reply. ``str(self)`` is the message as sent, starting with its code (``ERR``, ``WRONGTYPE``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def wire_bytes(self) -> bytes:
        """The message as bytes on the wire: what a script's error_reply or a client's argument carried, byte
        for byte. Bytes that are not UTF-8 arrive here as surrogate escapes (decoded with "surrogateescape"),
        and are turned back into those bytes, as Redis sends its error strings unchanged."""
        return self.message.encode("utf-8", "surrogateescape")


class WrongTypeError(CommandError):
    def __init__(self) -> None:
        super().__init__(WRONGTYPE)


class ProtocolError(CommandError):
    """Malformed input on the wire. The reply is sent, then the connection is closed.

    ``silent``: close without a reply, as Redis does when a client overruns client-query-buffer-limit.
    """

    def __init__(self, detail: str, silent: bool = False) -> None:
        super().__init__(f"ERR Protocol error: {detail}")
        self.silent = silent


class ProtocolVersionError(Exception):
    """A native-protocol frame whose version this node does not speak."""


WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
NO_SUCH_KEY = "ERR no such key"
OVERFLOW = "ERR increment or decrement would overflow"
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
READONLY = "READONLY You can't write against a read only replica."
LOADING = "LOADING Redis is loading the dataset in memory"
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
# Writes (and PING) refused while RDB snapshots fail with stop-writes-on-bgsave-error yes (shared.bgsaveerr).
MISCONF_RDB = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
    "Commands that may modify the data set are disabled, because this instance is configured to report "
    "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the "
    "Redis logs for details about the RDB error."
)
# ... and while AOF writes or fsyncs fail (writeCommandsGetDiskErrorMessage), with the OS's reason.
MISCONF_AOF = "MISCONF Errors writing to the AOF file: {}"
DB_INDEX = "ERR DB index is out of range"
SAME_OBJECT = "ERR source and destination objects are the same"


def echoed(arg: bytes) -> str:
    """A client's argument as an error message quotes it: byte for byte once the reply is encoded (surrogate
    escapes for bytes that are not UTF-8, turned back by ``CommandError.wire_bytes``), as Redis echoes it."""
    return arg.decode("utf-8", "surrogateescape")


def wrong_arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def unknown_command(name: str, args: list[bytes]) -> CommandError:
    # Redis appends "'arg' " per argument until the list reaches 128 characters.
    shown = ""
    for arg in args:
        if len(shown) >= 128:
            break
        shown += "'" + arg.decode("utf-8", "surrogateescape")[: 128 - len(shown)] + "' "
    return CommandError(f"ERR unknown command '{name[:128]}', with args beginning with: {shown}")


def unknown_subcommand(sub: str, cmd: str) -> CommandError:
    return CommandError(f"ERR unknown subcommand '{sub[:128]}'. Try {cmd.upper()} HELP.")
