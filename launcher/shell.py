"""The client shell: ``redactor cli``, a redis-cli look-alike over the native protocol (ZeroMQ).

    redactor cli [-h host] [-p port] [--bus-port N] [-a password] [-n db] [-c] [--raw | --no-raw] [-3] [command ...]

``-p`` is the node's RESP port, as with redis-cli; the shell talks to the node's bus port, which is that port
+ 10000 unless ``--bus-port`` says otherwise (a node started with a ``bus-port`` directive). With a command the
shell runs it, prints the reply and exits (1 on an error reply or when the node does not answer). Without one
it reads commands: interactively with history (~/.redactor_history, or $REDACTOR_HISTFILE) and completion of
command names when stdin is a terminal, else one command per line of stdin.

Output is redis-cli's: ``"quoted"`` bulk strings with escapes, ``OK`` for status replies, ``(integer) 1``,
``(nil)``, ``(error) ERR ...``, ``(empty array)``, numbered arrays indented by nesting level; INFO and CLIENT
LIST print their text as-is. When stdout is not a terminal the output is raw (bare values, one per line),
as redis-cli does; ``--no-raw`` keeps the formatted output anyway. ``-3`` prints maps and doubles the way
redis-cli does in RESP3 (``1# "key" => "value"``, ``(double) 1.5``); by default a map prints as RESP2's flat
array, as redis-cli shows it against a RESP2 connection.

The node may go away: the client (protocol/client.py) retries with Lazy Pirate reconnects, replays AUTH,
SELECT and subscriptions, and the shell says "Reconnected to host:port". ``-c`` follows a cluster's MOVED and
ASK redirections as redis-cli -c does (shell_cluster.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from protocol.client import DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, ConnectionLost, NativeClient
from protocol.curve import CurveError, CurveKeys, load_keypair, load_public_key
from protocol.envelope import ReplyError
from protocol.errors import ProtocolError
from protocol.ports import bus_port_for
from protocol.resp import format_double
from protocol.resp_parse import split_inline

HISTORY_FILE = "~/.redactor_history"
# In subscribe mode the shell PINGs the node after this much silence, so a lost node is noticed (and the
# Lazy Pirate reconnects and resubscribes) even when no message arrives.
SUBSCRIBE_HEARTBEAT_MS = 1000
# Commands whose reply redis-cli prints as plain text even on a terminal (cliSendCommand's output_raw list).
_RAW_TEXT_COMMANDS = {
    (b"info", None),
    (b"lolwut", None),
    (b"client", b"list"),
    (b"client", b"info"),
    (b"memory", b"doctor"),
    (b"memory", b"malloc-stats"),
    (b"latency", b"doctor"),
    (b"latency", b"graph"),
    (b"latency", b"histogram"),
    (b"cluster", b"nodes"),
    (b"cluster", b"info"),
    (b"debug", b"htstats"),
    (b"debug", b"htstats-key"),
}


# -- formatting ----------------------------------------------------------------------------------------


def quote_bytes(data: bytes) -> bytes:
    """A bulk string as redis-cli prints it (sdscatrepr): in double quotes, escapes for the unprintable."""
    out = bytearray(b'"')
    for byte in data:
        if byte in (0x5C, 0x22):  # backslash, double quote
            out += b"\\" + bytes([byte])
        elif byte == 0x0A:
            out += b"\\n"
        elif byte == 0x0D:
            out += b"\\r"
        elif byte == 0x09:
            out += b"\\t"
        elif byte == 0x07:
            out += b"\\a"
        elif byte == 0x08:
            out += b"\\b"
        elif 0x20 <= byte <= 0x7E:
            out.append(byte)
        else:
            out += b"\\x%02x" % byte
    out += b'"'
    return bytes(out)


def _flatten_map(value: dict[Any, Any]) -> list[Any]:
    flat: list[Any] = []
    for key, item in value.items():
        flat += [key, item]
    return flat


def _is_multiline(value: Any, resp3: bool) -> bool:
    """redis-cli's cliIsMultilineValueTTY: whether a map value takes more than one line."""
    if isinstance(value, dict):
        if not resp3:
            value = _flatten_map(value)
        elif len(value) != 1:
            return len(value) > 1
        else:
            return _is_multiline(next(iter(value.values())), resp3)
    if isinstance(value, list | tuple):
        return len(value) > 1 or (len(value) == 1 and _is_multiline(value[0], resp3))
    return False


def format_tty(value: Any, resp3: bool = False, prefix: bytes = b"") -> bytes:
    """A reply the way redis-cli prints it on a terminal (cliFormatReplyTTY), newline included."""
    if isinstance(value, ReplyError):
        return b"(error) " + str(value).encode() + b"\n"
    if isinstance(value, str):
        return value.encode() + b"\n"
    if isinstance(value, bytes):
        return quote_bytes(value) + b"\n"
    if isinstance(value, bool):
        return b"(true)\n" if value else b"(false)\n"
    if isinstance(value, int):
        return b"(integer) %d\n" % value
    if isinstance(value, float):
        return (b"(double) " + format_double(value) if resp3 else quote_bytes(format_double(value))) + b"\n"
    if value is None:
        return b"(nil)\n"
    is_map = isinstance(value, dict) and resp3
    if isinstance(value, dict) and not resp3:
        value = _flatten_map(value)
    items: list[Any] = list(value.items()) if is_map else list(value)
    if not items:
        return b"(empty hash)\n" if is_map else b"(empty array)\n"
    width = len(str(len(items)))
    child_prefix = prefix + b" " * (width + 2)
    sep = b"#" if is_map else b")"
    out = bytearray()
    for index, item in enumerate(items, 1):
        out += (prefix if index > 1 else b"") + str(index).rjust(width).encode() + sep + b" "
        if is_map:
            key, val = item
            out += format_tty(key, resp3, child_prefix)[:-1] + b" => "
            if _is_multiline(val, resp3):
                out += b"\n" + child_prefix  # a line break before a multi-line value keeps it aligned
            out += format_tty(val, resp3, child_prefix)
        else:
            out += format_tty(item, resp3, child_prefix)
    return bytes(out)


def format_raw(value: Any, resp3: bool = False) -> bytes:
    """A reply the way ``redis-cli --raw`` prints it (cliFormatReplyRaw), without the final newline."""
    if isinstance(value, ReplyError):
        return str(value).encode() + b"\n"
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"(true)" if value else b"(false)"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return format_double(value)
    if value is None:
        return b""
    if isinstance(value, dict):
        if resp3:
            return b"\n".join(format_raw(k, resp3) + b" " + format_raw(v, resp3) for k, v in value.items())
        value = _flatten_map(value)
    return b"\n".join(format_raw(item, resp3) for item in value)


# -- the shell -----------------------------------------------------------------------------------------


def _blocking_wait_ms(argv: list[bytes]) -> int | None:
    """How long a blocking command may legitimately wait (ms; 0 = forever), or None for ordinary commands."""
    name = argv[0].lower()
    try:
        if (
            name in (b"blpop", b"brpop", b"brpoplpush", b"blmove", b"bzpopmin", b"bzpopmax")
            and len(argv) >= 3
        ):
            return int(float(argv[-1]) * 1000)
        if name in (b"blmpop", b"bzmpop") and len(argv) >= 2:
            return int(float(argv[1]) * 1000)
        if name == b"wait" and len(argv) == 3:
            return int(argv[2])
        if name == b"debug" and len(argv) == 3 and argv[1].lower() == b"sleep":
            return int(float(argv[2]) * 1000)
        if name in (b"xread", b"xreadgroup"):
            for i, arg in enumerate(argv[:-1]):
                if arg.lower() == b"block":
                    return int(argv[i + 1])
    except ValueError:
        return None
    return None


def _speaks_resp_only(host: str, port: int, bus_port: int) -> bool:
    """A server with no bus (a sentinel, a redis-server): its RESP port accepts, its bus port does not."""
    import socket

    def accepts(p: int) -> bool:
        try:
            with socket.create_connection((host, p), timeout=0.5):
                return True
        except OSError:
            return False

    return not accepts(bus_port) and accepts(port)


class Shell:
    """One shell session: a client, an output mode and the state the prompt shows."""

    def __init__(self, args: argparse.Namespace, out: Any = None, err: TextIO | None = None) -> None:
        self.host: str = args.host
        self.port: int = args.port
        self.raw: bool = args.raw
        self.resp3: bool = args.resp3
        self.out = out if out is not None else sys.stdout.buffer
        self.err = err if err is not None else sys.stderr
        self.timeout_ms: int = args.timeout_ms
        self.connected = True
        self.args = args
        # -c: follow MOVED / ASK (shell_cluster.py); redirections are printed only at the prompt.
        self.cluster_mode: bool = bool(getattr(args, "cluster_mode", False))
        self.interactive = False
        self.client: Any = self._open_client(args.bus_port)

    def _open_client(self, bus_port_option: int) -> Any:
        bus_port = bus_port_for(self.port, bus_port_option)
        if _speaks_resp_only(self.host, self.port, bus_port):
            from launcher.resp_shell_client import RespShellClient

            return RespShellClient(self.host, self.port, self.args.timeout_ms)
        return NativeClient(
            self.host,
            bus_port,
            self.args.timeout_ms,
            self.args.retries,
            self._on_reconnect,
            curve=_curve_option(self.args),
        )

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _on_reconnect(self, host: str, port: int) -> None:
        self.err.write(f"Reconnected to {self.address}\n")
        self.err.flush()

    def prompt(self) -> str:
        if not self.connected:
            return "not connected> "
        db = self.client.db
        return f"{self.address}[{db}]> " if db else f"{self.address}> "

    def close(self) -> None:
        self.client.close()

    # -- running commands ------------------------------------------------------------------------------

    def call(self, argv: list[bytes]) -> Any:
        """Send one command; ReplyError values stand for error replies. Raises ConnectionLost."""
        wait_ms = _blocking_wait_ms(argv)
        try:
            if wait_ms is not None:
                # A blocking command must not be re-sent by the Lazy Pirate, and may wait as long as it asked.
                reply = self.client.call(
                    *argv, timeout_ms=0 if wait_ms == 0 else wait_ms + self.timeout_ms, retries=0
                )
            else:
                reply = self.client.call(*argv)
        except ReplyError as exc:
            reply = exc
        self.connected = True
        if self.cluster_mode:
            reply = self._follow_redirections(argv, reply)
        return reply

    def _follow_redirections(self, argv: list[bytes], reply: Any) -> Any:
        """-c: on MOVED / ASK, move to the node named (ASKING first for an ASK) and send ``argv`` again."""
        from launcher.shell_cluster import MAX_REDIRECTIONS, parse_redirection, redirected_line

        for _ in range(MAX_REDIRECTIONS):
            redirection = parse_redirection(reply)
            if redirection is None:
                break
            if self.interactive:
                self.write(redirected_line(redirection))
            self.client.close()
            self.host, self.port = redirection.host, redirection.port
            self.client = self._open_client(0)  # a cluster peer's bus port is its port + 10000
            _connect(self, self.args, lambda text: None)  # AUTH and SELECT again, as redis-cli does
            try:
                if redirection.ask:
                    self.client.call(b"ASKING")
                reply = self.client.call(*argv)
            except ReplyError as exc:
                reply = exc
        return reply

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

    def print_reply(self, argv: list[bytes], reply: Any) -> None:
        sub = argv[1].lower() if len(argv) > 1 else None
        name = argv[0].lower()
        plain_text = (name, None) in _RAW_TEXT_COMMANDS or (name, sub) in _RAW_TEXT_COMMANDS
        if self.raw:
            self.write(format_raw(reply, self.resp3) + b"\n")
        elif plain_text and isinstance(reply, bytes):
            self.write(reply if reply.endswith(b"\n") else reply + b"\n")
        else:
            self.write(format_tty(reply, self.resp3))

    def run(self, argv: list[bytes]) -> bool:
        """Run a command and print its reply; False if it was an error reply or the node did not answer."""
        name = argv[0].lower()
        if name in (b"subscribe", b"psubscribe", b"ssubscribe"):
            return self.subscribe(argv)
        try:
            reply = self.call(argv)
        except ConnectionLost:
            if name == b"shutdown":
                return True  # the node went away as asked; it never answers SHUTDOWN
            self.connected = False
            self.err.write(f"Could not connect to redactor at {self.address}: no reply\n")
            self.err.flush()
            return False
        self.print_reply(argv, reply)
        return not isinstance(reply, ReplyError)

    def subscribe(self, argv: list[bytes]) -> bool:
        """(P)SUBSCRIBE: print each message as it arrives, until Ctrl-C (then unsubscribe and return)."""
        try:
            reply = self.call(argv)
        except ConnectionLost:
            self.connected = False
            self.err.write(f"Could not connect to redactor at {self.address}: no reply\n")
            return False
        if isinstance(reply, ReplyError):
            self.print_reply(argv, reply)
            return False
        if not self.raw:
            self.write(b"Reading messages... (press Ctrl-C to quit)\n")
        # The confirmations come back as the reply (one per channel) or as pushes; print what came.
        if isinstance(reply, list) and reply and isinstance(reply[0], list):
            for item in reply:
                self.print_reply(argv, item)
        elif isinstance(reply, list) and reply:
            self.print_reply(argv, reply)
        try:
            while True:
                message = self.client.receive_push(SUBSCRIBE_HEARTBEAT_MS)
                if message is not None:
                    self.print_reply(argv, message)
                    continue
                try:
                    self.client.call("PING")  # heartbeat: reconnects and resubscribes if the node was lost
                    self.connected = True
                except ConnectionLost:
                    self.connected = False
                except ReplyError:
                    pass
        except KeyboardInterrupt:
            pass
        for command in (b"UNSUBSCRIBE", b"PUNSUBSCRIBE"):
            try:
                self.client.call(command, retries=0)
            except (ConnectionLost, ReplyError):
                pass
        while self.client.receive_push(0) is not None:
            pass  # the unsubscribe confirmations
        return True

    def run_line(self, line: str) -> bool | None:
        """One line typed at the prompt. None means the shell should exit."""
        try:
            argv = split_inline(line.encode())
        except ProtocolError:
            self.err.write("Invalid argument(s)\n")
            self.err.flush()
            return False
        if not argv:
            return True
        name = argv[0].lower()
        if name in (b"quit", b"exit") and len(argv) == 1:
            return None
        if name == b"help":
            self.write(help_text(argv[1:]).encode())
            return True
        if name == b"clear" and len(argv) == 1:
            self.write(b"\x1b[H\x1b[2J")
            return True
        repeat = 1
        if len(argv) > 1 and argv[0].isdigit():
            repeat, argv = int(argv[0]), argv[1:]
        ok = True
        for _ in range(repeat):
            ok = self.run(argv) and ok
        return ok


def help_text(topic: list[bytes]) -> str:
    """``help`` and ``help <command>``, from the node's command table."""
    from actors.commands import load_all

    table = load_all()
    if not topic:
        return (
            "redactor cli: type a command as you would in redis-cli.\n"
            '      "help <command>" for a command\'s summary\n'
            '      "quit" or "exit" to leave; Tab completes command names\n'
        )
    cmd = table.get(topic[0].lower())
    if cmd is None:
        return f"No help for '{topic[0].decode('utf-8', 'replace')}'\n"
    arity = f"{cmd.arity} (exactly)" if cmd.arity > 0 else f"at least {-cmd.arity}"
    return (
        f"\n  {cmd.name.upper()}\n  summary: {cmd.summary}\n  group: {cmd.group}\n"
        f"  arguments, name included: {arity}\n\n"
    )


# -- interactive ---------------------------------------------------------------------------------------


def _command_names() -> list[str]:
    from actors.commands import load_all

    names = sorted(name.decode() for name in load_all())
    return [n.upper() for n in names] + ["HELP", "QUIT", "EXIT", "CLEAR"]


def _interactive(shell: Shell) -> int:
    """A prompt_toolkit session: history file, completion of command names, Ctrl-C clears, Ctrl-D leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import CompleteEvent, Completer, Completion
    from prompt_toolkit.document import Document
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    names = _command_names()

    class CommandCompleter(Completer):
        """Completes the first word only: a command name, in the case the user started typing."""

        def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
            text = document.text_before_cursor.lstrip()
            if " " in text:
                return
            lower = text.islower()
            for name in names:
                if name.lower().startswith(text.lower()):
                    yield Completion(name.lower() if lower else name, start_position=-len(text))

    path = os.path.expanduser(os.environ.get("REDACTOR_HISTFILE") or HISTORY_FILE)
    history: Any = InMemoryHistory() if path == "/dev/null" else FileHistory(path)
    session: PromptSession[str] = PromptSession(
        history=history, completer=CommandCompleter(), complete_while_typing=False
    )
    while True:
        try:
            line = session.prompt(shell.prompt())
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        if shell.run_line(line) is None:
            return 0


def _read_stdin(shell: Shell, lines: Iterable[str]) -> int:
    """Commands from a pipe or file, one per line (``redactor cli < commands.txt``)."""
    status = 0
    for line in lines:
        result = shell.run_line(line.rstrip("\r\n"))
        if result is None:
            break
        if result is False:
            status = 1
    return status


# -- entry point ---------------------------------------------------------------------------------------


def _curve_option(args: argparse.Namespace) -> tuple[CurveKeys, bytes] | None:
    """--curve-key (this user's .key_secret) and --curve-server-key (the node's public key: 40 Z85 characters
    or its .key file; without it the node is expected to hold the user's own key, the shared-key setup)."""
    key_file = getattr(args, "curve_key", None)
    if not key_file:
        return None
    keys = load_keypair(key_file)
    server = getattr(args, "curve_server_key", None)
    return keys, load_public_key(server) if server else keys.public


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redactor cli", add_help=False, description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-h", dest="host", default="127.0.0.1", help="node host (default 127.0.0.1)")
    parser.add_argument("-p", dest="port", type=int, default=6379, help="node RESP port (default 6379)")
    parser.add_argument("--bus-port", type=int, default=0, help="node bus port (default: RESP port + 10000)")
    parser.add_argument("-a", dest="password", default=None, help="password (AUTH)")
    parser.add_argument("--curve-key", default=None, help="CURVE key file for a node with bus keys (keygen)")
    parser.add_argument(
        "--curve-server-key", default=None, help="the node's CURVE public key (Z85, or its .key file)"
    )
    parser.add_argument("--user", default=None, help="user name for AUTH (default: the default user)")
    parser.add_argument("-n", dest="db", type=int, default=0, help="database number")
    parser.add_argument(
        "-c", dest="cluster_mode", action="store_true", help="cluster mode: follow -MOVED and -ASK"
    )
    parser.add_argument("--raw", dest="raw", action="store_true", default=None, help="print bare values")
    parser.add_argument(
        "--no-raw", dest="raw", action="store_false", help="format output even when not a tty"
    )
    parser.add_argument(
        "-3", dest="resp3", action="store_true", help="print maps and doubles as RESP3 shows them"
    )
    parser.add_argument("--timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS, help="wait per attempt (ms)")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES, help="Lazy Pirate retries")
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="a command to run once")
    return parser


def _connect(shell: Shell, args: argparse.Namespace, warn: Callable[[str], None]) -> None:
    """AUTH and SELECT as redis-cli does on start: failures are reported, not fatal."""
    if args.password is not None:
        warn(
            "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.\n"
        )
        auth = [b"AUTH"] + ([args.user.encode()] if args.user else []) + [args.password.encode()]
        try:
            shell.client.call(*auth)
        except ReplyError as exc:
            warn(f"AUTH failed: {exc}\n")
        except ConnectionLost:
            shell.connected = False
    if args.db:
        try:
            shell.client.call("SELECT", args.db)
        except ReplyError as exc:
            warn(f"SELECT {args.db} failed: {exc}\n")
        except ConnectionLost:
            shell.connected = False


def glue_option_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--opt VALUE`` as ``--opt=VALUE`` (``-a VALUE`` as ``-aVALUE``) for every option that takes a value,
    up to the command: argparse refuses a separate value that starts with "-", and a Z85 key (--curve-server-key)
    or a password (-a) may well start with one. redis-cli takes the next word whatever it is, and so do we."""
    takes_value = {
        option
        for action in parser._actions  # argparse keeps no public list of its options
        if action.option_strings and action.nargs is None and action.const is None
        for option in action.option_strings
    }
    glued: list[str] = []
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):  # the command: the rest is its arguments
            glued.append(word)
            glued.extend(words)
            break
        value = next(words, None) if word in takes_value else None
        if value is None:
            glued.append(word)
        else:
            glued.append(f"{word}={value}" if word.startswith("--") else f"{word}{value}")
    return glued


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(glue_option_values(parser, argv))
    if args.raw is None:
        # As redis-cli: raw output when stdout is not a terminal (a pipe, a file, a test).
        args.raw = not sys.stdout.isatty()
    try:
        shell = Shell(args)
    except CurveError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1

    def warn(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    try:
        _connect(shell, args, warn)
        if args.command:
            return 0 if shell.run([a.encode("utf-8", "surrogateescape") for a in args.command]) else 1
        if sys.stdin.isatty():
            shell.interactive = True
            return _interactive(shell)
        return _read_stdin(shell, sys.stdin)
    except KeyboardInterrupt:
        return 130
    finally:
        shell.close()
