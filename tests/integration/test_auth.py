"""Authentication and protected mode, on both protocols: requirepass (NOAUTH, WRONGPASS, AUTH, HELLO AUTH) over
RESP and over the native protocol, the shell's -a, and protected mode refusing non-loopback clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.client import NativeClient, ReplyError
from protocol.resp import encode_command
from tests.harness import REPO, NodeProcess, wait_for

PASSWORD = "s3cret"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
HELLO_NOAUTH = (
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> "
    "option can be used to authenticate the client and select the RESP protocol version at the same time"
)
NO_PASSWORD_SET = (
    "AUTH <password> called without any password configured for the default user. Are you sure your "
    "configuration is correct?"
)
# Redis 7.0's text, typo included ("Setup a an").
DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the "
    b"default user. In this mode connections are only accepted from the loopback interface. If you want to connect "
    b"from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode "
    b"sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    b"the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you "
    b"do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected "
    b"mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then "
    b"restarting the server. 3) If you started the server manually just for testing, restart it with the "
    b"'--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only "
    b"need to do one of the above things in order for the server to start accepting connections from the "
    b"outside.\r\n"
)


def wait_until_answering(node: NodeProcess) -> None:
    """The harness's readiness check PINGs without a password; with requirepass a NOAUTH reply means ready."""

    def answers() -> bool:
        assert node.alive(), node.log()
        with socket.create_connection(("127.0.0.1", node.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(100).startswith(b"-NOAUTH")

    wait_for(answers, 15, what=f"{node.name} to answer")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    n = NodeProcess(Path(tmp_path_factory.mktemp("auth")), requirepass=PASSWORD).start(wait=False)
    wait_until_answering(n)
    yield n
    n.stop()


class Conversation:
    """One raw RESP connection: send a command, get the exact reply line(s) back."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def __call__(self, *args: str) -> bytes:
        """Send one command; the first line of its reply (enough for status, error and integer replies)."""
        self.sock.sendall(encode_command([a.encode() for a in args]))
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def talk(node: NodeProcess) -> Iterator[Conversation]:
    conversation = Conversation(node.port)
    yield conversation
    conversation.close()


# -- RESP ------------------------------------------------------------------------------------------------


def test_commands_before_auth_get_noauth(talk: Conversation) -> None:
    for args in (("GET", "k"), ("PING",), ("SET", "k", "v"), ("CONFIG", "GET", "port"), ("SELECT", "1")):
        assert talk(*args) == b"-" + NOAUTH.encode()
    # Unknown commands and arity are checked first, as in Redis.
    assert talk("GET") == b"-ERR wrong number of arguments for 'get' command"
    assert talk("NOSUCH") == b"-ERR unknown command 'NOSUCH', with args beginning with: "


def test_auth_with_a_wrong_password_or_user_is_wrongpass(talk: Conversation) -> None:
    assert talk("AUTH", "wrong") == b"-" + WRONGPASS.encode()
    assert talk("AUTH", "bob", PASSWORD) == b"-" + WRONGPASS.encode()
    assert talk("AUTH", "default", "wrong") == b"-" + WRONGPASS.encode()
    assert talk("AUTH", "a", "b", "c") == b"-ERR syntax error"
    assert talk("GET", "k") == b"-" + NOAUTH.encode()


def test_auth_with_the_password_opens_the_connection(node: NodeProcess, talk: Conversation) -> None:
    assert talk("AUTH", PASSWORD) == b"+OK"
    assert talk("SET", "k", "v") == b"+OK"
    other = Conversation(node.port)
    assert other("AUTH", "default", PASSWORD) == b"+OK"
    assert other("EXISTS", "k") == b":1"
    other.close()
    authed = node.client(protocol=2, password=PASSWORD)  # redis-py sends AUTH itself
    assert authed.get("k") == b"v"


def test_hello_needs_auth_first_or_auth_inside(node: NodeProcess, talk: Conversation) -> None:
    assert talk("HELLO", "3") == b"-" + HELLO_NOAUTH.encode()
    assert talk("HELLO") == b"-" + HELLO_NOAUTH.encode()
    assert talk("HELLO", "3", "AUTH", "default", "wrong") == b"-" + WRONGPASS.encode()
    assert talk("HELLO", "2", "AUTH", "default", PASSWORD, "SETNAME", "authed") == b"*14"
    talk.buffer = b""
    talk.sock.sendall(b"CLIENT GETNAME\r\n")
    reply = b""
    while not reply.endswith(b"authed\r\n"):
        chunk = talk.sock.recv(65536)
        assert chunk
        reply += chunk
    assert reply.endswith(b"$6\r\nauthed\r\n")
    resp3 = node.client(protocol=3, password=PASSWORD)  # redis-py 8 authenticates with HELLO 3 AUTH
    assert resp3.ping() is True


def test_reset_drops_the_authentication(talk: Conversation) -> None:
    assert talk("AUTH", PASSWORD) == b"+OK"
    assert talk("RESET") == b"+RESET"
    assert talk("GET", "k") == b"-" + NOAUTH.encode()


def test_changing_requirepass_keeps_open_connections_authenticated(
    node: NodeProcess, talk: Conversation
) -> None:
    admin = node.client(protocol=2, password=PASSWORD)
    try:
        assert admin.config_set("requirepass", "other") is True
        assert admin.ping() is True  # already in
        assert talk("AUTH", PASSWORD) == b"-" + WRONGPASS.encode()
        assert talk("AUTH", "other") == b"+OK"
    finally:
        admin.config_set("requirepass", PASSWORD)


def test_auth_without_a_configured_password_is_an_error(tmp_path: Path) -> None:
    open_node = NodeProcess(tmp_path, "open").start()
    talk = Conversation(open_node.port)
    try:
        assert talk("AUTH", "x") == b"-ERR " + NO_PASSWORD_SET.encode()
        assert talk("AUTH", "default", "anything") == b"+OK"  # the default user has nopass
        # No user "bob" (Redis 7.0 checks the ACL users; only the one-argument form gets the hint above).
        assert talk("AUTH", "bob", "x") == b"-" + WRONGPASS.encode()
    finally:
        talk.close()
        open_node.stop()


# -- native protocol -------------------------------------------------------------------------------------


def test_native_clients_need_auth_too(node: NodeProcess) -> None:
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=3000, retries=1) as client:
        with pytest.raises(ReplyError) as info:
            client.call("GET", "k")
        assert str(info.value) == NOAUTH
        with pytest.raises(ReplyError) as info:
            client.call("AUTH", "wrong")
        assert str(info.value) == WRONGPASS
        assert client.call("AUTH", PASSWORD) == "OK"
        assert client.call("PING") == "PONG"
    with NativeClient("127.0.0.1", node.bus_port, timeout_ms=3000, retries=1) as client:
        hello = client.call("HELLO", "3", "AUTH", "default", PASSWORD)
        assert isinstance(hello, dict) and hello[b"proto"] == 3
        assert client.call("PING") == "PONG"


def test_the_native_client_authenticates_again_after_a_node_restart(tmp_path: Path) -> None:
    locked = NodeProcess(tmp_path, "locked", requirepass=PASSWORD)
    locked.start(wait=False)
    wait_until_answering(locked)
    with NativeClient("127.0.0.1", locked.bus_port, timeout_ms=500, retries=30) as client:
        assert client.call("AUTH", PASSWORD) == "OK"
        locked.kill()
        locked.start(wait=False)
        assert client.call("SET", "k", "v") == "OK"  # AUTH was replayed on the new connection
        locked.stop()


# -- the shell -------------------------------------------------------------------------------------------


def _cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, REDACTOR_HISTFILE="/dev/null")
    return subprocess.run(
        [sys.executable, "-m", "launcher.main", "cli", "-p", str(port), *args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_the_shell_authenticates_with_dash_a(node: NodeProcess) -> None:
    result = _cli(node.port, "-a", PASSWORD, "ping")
    assert (result.returncode, result.stdout) == (0, "PONG\n")
    assert result.stderr == (
        "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.\n"
    )
    result = _cli(node.port, "ping")
    assert (result.returncode, result.stdout) == (1, NOAUTH + "\n\n")
    result = _cli(node.port, "-a", "wrong", "ping")
    assert result.returncode == 1
    assert result.stderr.endswith(f"AUTH failed: {WRONGPASS}\n")


# -- protected mode --------------------------------------------------------------------------------------


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than loopback (the route a UDP socket would take; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: connecting a UDP socket only picks a route
            address = probe.getsockname()[0]
        except OSError:
            address = None
    if address and not address.startswith("127.") and address != "0.0.0.0":
        return str(address)
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            candidate = str(info[4][0])
            if not candidate.startswith("127."):
                return candidate
    except OSError:
        pass
    return None


def _talk(address: str, port: int, data: bytes) -> bytes:
    with socket.create_connection((address, port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return out
            if not chunk:
                return out
            out += chunk
            if out.endswith(b"\r\n") and not out.startswith(b"-DENIED"):
                return out


def test_protected_mode_refuses_non_loopback_clients_without_a_password(tmp_path: Path) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    exposed = NodeProcess(tmp_path, "exposed", bind="0.0.0.0").start()
    try:
        assert _talk(address, exposed.port, b"PING\r\n") == DENIED
        assert _talk("127.0.0.1", exposed.port, b"PING\r\n") == b"+PONG\r\n"
        assert exposed.client().info("stats")["rejected_connections"] == 1
        exposed.client().config_set("protected-mode", "no")
        assert _talk(address, exposed.port, b"PING\r\n") == b"+PONG\r\n"
    finally:
        exposed.stop()


def test_protected_mode_lets_non_loopback_clients_in_when_a_password_is_set(tmp_path: Path) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    exposed = NodeProcess(tmp_path, "exposed-pw", bind="0.0.0.0", requirepass=PASSWORD)
    exposed.start(wait=False)
    try:
        wait_until_answering(exposed)
        assert _talk(address, exposed.port, b"PING\r\n") == b"-NOAUTH Authentication required.\r\n"
        assert _talk(address, exposed.port, f"AUTH {PASSWORD}\r\nPING\r\n".encode()) in (
            b"+OK\r\n",
            b"+OK\r\n+PONG\r\n",
        )
    finally:
        exposed.stop()
