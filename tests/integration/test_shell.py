"""The client shell (`redactor cli`, launcher/shell.py): one-shot commands as subprocesses against a real node,
redis-cli's output formats, commands from stdin, subscribe mode, and the reconnect notice."""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.shell import format_raw, format_tty, quote_bytes
from protocol.envelope import ReplyError
from tests.harness import REPO, NodeProcess, free_port, wait_for

CLI_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    n = NodeProcess(Path(tmp_path_factory.mktemp("shell"))).start()
    yield n
    n.stop()


def cli(node_port: int, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `redactor cli -p PORT ARGS...` the way a user would, output not to a terminal."""
    env = dict(os.environ, REDACTOR_HISTFILE="/dev/null")
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.main", "cli", "-p", str(node_port), *args],
        cwd=str(REPO),
        capture_output=True,
        timeout=CLI_TIMEOUT_S,
        input=None if stdin is None else stdin.encode(),
        env=env,
    )
    # Decoded without newline translation: INFO's \r\n must stay as the node sent it.
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode())


# -- one-shot commands -----------------------------------------------------------------------------------


def test_a_one_shot_command_prints_the_reply_and_exits_0(node: NodeProcess) -> None:
    result = cli(node.port, "set", "a", "1")
    assert (result.returncode, result.stdout, result.stderr) == (0, "OK\n", "")
    assert node.client().get("a") == b"1"


def test_an_error_reply_exits_1(node: NodeProcess) -> None:
    result = cli(node.port, "incr", "a", "b")
    assert result.returncode == 1
    assert result.stdout == "ERR wrong number of arguments for 'incr' command\n\n"
    result = cli(node.port, "--no-raw", "nosuch")
    assert result.returncode == 1
    assert result.stdout == "(error) ERR unknown command 'nosuch', with args beginning with: \n"


def test_option_values_may_start_with_a_dash_as_redis_cli_takes_them(node: NodeProcess) -> None:
    """A password, a user name or a Z85 CURVE key can start with "-": the option takes the next word anyway."""
    client = node.client()
    client.execute_command("ACL", "SETUSER", "-dash", "on", ">-pw", "+@all", "~*")
    try:
        result = cli(node.port, "--user", "-dash", "-a", "-pw", "--timeout-ms", "5000", "acl", "whoami")
        assert (result.returncode, result.stdout) == (0, "-dash\n"), result
        result = cli(node.port, "incrby", "dash-counter", "-3")  # the command's own words are left alone
        assert (result.returncode, result.stdout) == (0, "-3\n"), result
    finally:
        client.execute_command("ACL", "DELUSER", "-dash")
        client.delete("dash-counter")


def test_raw_output_is_the_default_when_stdout_is_not_a_terminal(node: NodeProcess) -> None:
    r = node.client()
    r.delete("n", "list")
    r.rpush("list", "x", "y z")
    assert cli(node.port, "incr", "n").stdout == "1\n"
    assert cli(node.port, "get", "missing").stdout == "\n"
    assert cli(node.port, "lrange", "list", "0", "-1").stdout == "x\ny z\n"
    assert cli(node.port, "lrange", "missing", "0", "-1").stdout == "\n"


def test_formatted_output_matches_redis_cli(node: NodeProcess) -> None:
    r = node.client()
    r.delete("n", "list", "s")
    r.rpush("list", "x", "y z")
    r.set("s", b"line\nbreak \x00\xff")
    assert cli(node.port, "--no-raw", "incr", "n").stdout == "(integer) 1\n"
    assert cli(node.port, "--no-raw", "get", "missing").stdout == "(nil)\n"
    assert cli(node.port, "--no-raw", "set", "k", "v").stdout == "OK\n"
    assert cli(node.port, "--no-raw", "lrange", "list", "0", "-1").stdout == '1) "x"\n2) "y z"\n'
    assert cli(node.port, "--no-raw", "lrange", "missing", "0", "-1").stdout == "(empty array)\n"
    assert cli(node.port, "--no-raw", "get", "s").stdout == '"line\\nbreak \\x00\\xff"\n'
    assert cli(node.port, "--no-raw", "mget", "k", "missing").stdout == '1) "v"\n2) (nil)\n'


def test_nested_arrays_are_numbered_and_indented(node: NodeProcess) -> None:
    r = node.client()
    r.flushdb()
    r.mset({"a": "1", "b": "2"})
    out = cli(node.port, "--no-raw", "scan", "0", "count", "100").stdout
    assert out in ('1) "0"\n2) 1) "a"\n   2) "b"\n', '1) "0"\n2) 1) "b"\n   2) "a"\n')


def test_maps_print_as_flat_arrays_and_as_maps_with_dash_3(node: NodeProcess) -> None:
    out = cli(node.port, "--no-raw", "config", "get", "maxmemory").stdout
    assert out == '1) "maxmemory"\n2) "0"\n'
    out = cli(node.port, "--no-raw", "-3", "config", "get", "maxmemory").stdout
    assert out == '1# "maxmemory" => "0"\n'
    assert cli(node.port, "config", "get", "maxmemory").stdout == "maxmemory\n0\n"


def test_info_prints_its_text_as_is(node: NodeProcess) -> None:
    out = cli(node.port, "--no-raw", "info", "server").stdout
    assert out.startswith("# Server\r\nredis_version:7.0.15\r\n")
    assert f"tcp_port:{node.port}\r\n" in out


def test_dash_n_selects_the_database(node: NodeProcess) -> None:
    assert cli(node.port, "-n", "4", "set", "in4", "x").stdout == "OK\n"
    assert node.client(db=4).get("in4") == b"x"
    result = cli(node.port, "-n", "99", "ping")
    assert result.stdout == "PONG\n"
    assert result.stderr == "SELECT 99 failed: ERR DB index is out of range\n"


def test_bus_port_option_reaches_a_node_on_another_bus_port(tmp_path: Path) -> None:
    bus_port = free_port()
    other = NodeProcess(tmp_path, "busport", bus_port=bus_port).start()
    try:
        assert cli(other.port, "--bus-port", str(bus_port), "ping").stdout == "PONG\n"
    finally:
        other.stop()


def test_a_node_that_does_not_answer_is_reported_and_exits_1() -> None:
    port = free_port()
    result = cli(port, "--timeout-ms", "100", "--retries", "1", "ping")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"Could not connect to redactor at 127.0.0.1:{port}: no reply\n"


# -- commands from stdin ---------------------------------------------------------------------------------


def test_commands_from_stdin_run_one_per_line_with_redis_cli_quoting(node: NodeProcess) -> None:
    script = 'set "key with space" "a\\nb"\nget "key with space"\nselect 2\nset x 1\nbad "quote\nquit\nping\n'
    result = cli(node.port, "--no-raw", stdin=script)
    assert result.stdout == 'OK\n"a\\nb"\nOK\nOK\n'
    assert result.stderr == "Invalid argument(s)\n"
    assert result.returncode == 1  # a line failed
    assert node.client(db=2).get("x") == b"1"


def test_a_repeat_count_runs_a_command_several_times(node: NodeProcess) -> None:
    node.client().delete("rep")
    assert cli(node.port, stdin="3 incr rep\n").stdout == "1\n2\n3\n"


# -- subscribe -------------------------------------------------------------------------------------------


def _read_until(proc: subprocess.Popen[bytes], wanted: bytes, timeout_s: float = 10.0) -> bytes:
    """Read the process's stdout until ``wanted`` appears (bounded)."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout_s
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"timed out waiting for {wanted!r}; saw {seen!r}"
        if selector.select(remaining):
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"stdout closed; saw {seen!r}"
            seen += chunk
    return seen


def _sigint_as_a_terminal_gives_it() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stuck_state(pid: int) -> str:
    """What a process that did not exit on SIGINT is doing: its signal masks and, if py-spy is there, stacks."""
    with open(f"/proc/{pid}/status") as f:
        masks = [
            line.strip() for line in f if line.startswith(("SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd"))
        ]
    stacks = ""
    if shutil.which("py-spy"):
        dump = subprocess.run(
            ["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        )
        stacks = dump.stdout + dump.stderr
    return f"{masks}\n{stacks}"


def test_subscribe_prints_messages_as_they_arrive_until_ctrl_c(node: NodeProcess) -> None:
    env = dict(os.environ, REDACTOR_HISTFILE="/dev/null")
    proc = subprocess.Popen(
        [sys.executable, "-m", "launcher.main", "cli", "-p", str(node.port), "--no-raw", "subscribe", "news"],
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # As a terminal starts it: a runner started in the background (`cmd &` in a script) ignores SIGINT, and
        # an ignored SIGINT is inherited, so Python would not turn Ctrl-C into KeyboardInterrupt.
        preexec_fn=_sigint_as_a_terminal_gives_it,
    )
    try:
        head = _read_until(proc, b"3) (integer) 1\n")
        assert (
            head == b'Reading messages... (press Ctrl-C to quit)\n1) "subscribe"\n2) "news"\n3) (integer) 1\n'
        )
        publisher = node.client()
        wait_for(lambda: publisher.publish("news", "hello") == 1, 5, what="the shell to be subscribed")
        assert _read_until(proc, b'3) "hello"\n') == b'1) "message"\n2) "news"\n3) "hello"\n'
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(10) == 0
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the shell ignored Ctrl-C for 10 s; {_stuck_state(proc.pid)}") from None
        wait_for(lambda: publisher.publish("news", "gone") == 0, 5, what="the shell to unsubscribe")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


# -- reconnects ------------------------------------------------------------------------------------------


def test_the_shell_says_when_it_reconnected_to_a_restarted_node(tmp_path: Path) -> None:
    restarted = NodeProcess(tmp_path, "restarted").start()
    env = dict(os.environ, REDACTOR_HISTFILE="/dev/null")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "launcher.main",
            "cli",
            "-p",
            str(restarted.port),
            "--timeout-ms",
            "500",
            "--retries",
            "20",
        ],
        cwd=str(REPO),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stderr is not None
    try:
        proc.stdin.write(b"echo before\n")
        proc.stdin.flush()
        _read_until(proc, b"before\n")
        restarted.kill()
        restarted.start()
        proc.stdin.write(b"echo after\n")
        proc.stdin.close()
        _read_until(proc, b"after\n")
        assert proc.wait(10) == 0
        assert proc.stderr.read() == f"Reconnected to 127.0.0.1:{restarted.port}\n".encode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        restarted.stop()


# -- formatting (pure) -----------------------------------------------------------------------------------


def test_quote_bytes_escapes_like_sdscatrepr() -> None:
    assert (
        quote_bytes(b'a"b\\c\n\r\t\x07\x08\x00\x7f\xff ~') == b'"a\\"b\\\\c\\n\\r\\t\\a\\b\\x00\\x7f\\xff ~"'
    )


def test_format_tty_aligns_indexes_and_indents_nested_arrays() -> None:
    value = [b"x"] * 9 + [[b"a", [b"b", b"c"]], []]
    assert format_tty(value) == (
        b"".join(b' %d) "x"\n' % i for i in range(1, 10))
        + b'10) 1) "a"\n    2) 1) "b"\n       2) "c"\n11) (empty array)\n'
    )


def test_format_tty_types() -> None:
    assert format_tty("OK") == b"OK\n"
    assert format_tty(b"OK") == b'"OK"\n'
    assert format_tty(-3) == b"(integer) -3\n"
    assert format_tty(None) == b"(nil)\n"
    assert format_tty(ReplyError("ERR x")) == b"(error) ERR x\n"
    assert format_tty([ReplyError("ERR y"), 1]) == b"1) (error) ERR y\n2) (integer) 1\n"
    assert format_tty(1.5) == b'"1.5"\n'
    assert format_tty(1.5, resp3=True) == b"(double) 1.5\n"
    assert format_tty({b"k": 1}) == b'1) "k"\n2) (integer) 1\n'
    # As redis-cli 7.0: a multi-line map value starts on its own line, indented.
    assert format_tty({b"k": [b"a", b"b"]}, resp3=True) == b'1# "k" => \n   1) "a"\n   2) "b"\n'
    assert format_tty({b"k": [b"a"], b"e": []}, resp3=True) == b'1# "k" => 1) "a"\n2# "e" => (empty array)\n'
    assert format_tty({}, resp3=True) == b"(empty hash)\n"


def test_format_raw_types() -> None:
    assert format_raw("OK") == b"OK"
    assert format_raw(b"a\nb") == b"a\nb"
    assert format_raw(7) == b"7"
    assert format_raw(None) == b""
    assert format_raw(ReplyError("ERR z")) == b"ERR z\n"
    assert format_raw([b"a", [b"b", 1]]) == b"a\nb\n1"
    assert format_raw({b"k": b"v"}) == b"k\nv"
    assert format_raw({b"k": b"v"}, resp3=True) == b"k v"
    assert format_raw(0.5) == b"0.5"
