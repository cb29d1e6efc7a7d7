"""The monitor: links to every master, replica and sentinel, the periodic PING / INFO / hello, and what their
replies mean (replica discovery, roles, SDOWN, ODOWN, TILT). One asyncio task runs the timer, as Redis's
sentinelTimer does; every command is its own small task, so a slow instance never delays another.

Links (Redis: two connections per data node, one per sentinel): a *command* connection for PING, INFO,
PUBLISH and the failover's MULTI, and for data nodes a *pub/sub* connection subscribed to
``__sentinel__:hello``. Both are named ``sentinel-<id8>-cmd|pubsub``. The failover state machine lives in
failover.py and is called from ``tick``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

from actors.sentinel import failover
from actors.sentinel.config import SentinelConfig, add_replica, add_sentinel, flush
from actors.sentinel.scripts import ScriptRunner
from actors.sentinel.state import (
    HELLO_CHANNEL,
    FailoverState,
    Flag,
    Instance,
    Kind,
    SentinelState,
    now_ms,
)
from protocol.resp_client import ConnectionLost, ReplyError, RespClient

# The timer's period: Redis runs sentinel at a randomised hz (10-19) so sentinels do not tick in step.
TIMER_MIN_MS = 50
TIMER_MAX_MS = 100
CONNECT_TIMEOUT_S = 1.0
# Replicas of a master that is failing over are polled with INFO this often (Redis: 1 s). Faster polling is
# how a promotion and the replicas' reconfiguration are seen sooner.
FAST_INFO_PERIOD_MS = 250

EventSink = Callable[[str, str], None]  # (channel, payload): the sentinel's own pub/sub
LogSink = Callable[[str, str], None]  # (level char "#*-.", text)


class Monitor:
    """The sentinel's brain: owns ``SentinelState`` and every link; runs on the process's event loop."""

    def __init__(
        self,
        config: SentinelConfig,
        publish: EventSink,
        log: LogSink,
        write_config: Callable[[SentinelConfig], None] = flush,
    ) -> None:
        self.config = config
        # Rewrites sentinel.conf, synchronously (a vote is durable before it is answered): the config writer
        # actor in a running sentinel (system.py), a direct atomic write otherwise.
        self.write_config = write_config
        self.state: SentinelState = config.state
        self.publish = publish
        self.log = log
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.scripts = ScriptRunner(self.state.timing, lambda kind, text: self.event("#", kind, None, text))

    # -- events and persistence -------------------------------------------------------------------------

    def event(self, level: str, kind: str, instance: Instance | None, text: str = "") -> None:
        """Log and publish one event (Redis's sentinelEvent): ``%@`` is the instance's description."""
        message = instance.event_text(self.state.announce_hostnames) if instance is not None else ""
        if text:
            message = f"{message} {text}" if message else text
        self.log(level, f"{kind} {message}")
        if level != ".":
            self.publish(kind, message)
        if level == "#" and instance is not None:
            master = instance if instance.kind is Kind.MASTER else instance.master
            if master is not None and master.notification_script:
                self.scripts.run(master.notification_script, kind, message)

    def client_reconfig(
        self, master: Instance, role: str, old: tuple[str, int], new: tuple[str, int]
    ) -> None:
        """Run the master's client-reconfig-script, as Redis does when a failover moves the master."""
        if master.client_reconfig_script:
            args = (master.name, role, "start", old[0], str(old[1]), new[0], str(new[1]))
            self.scripts.run(master.client_reconfig_script, *args)

    def flush_config(self) -> None:
        try:
            self.write_config(self.config)
        except OSError as exc:
            self.log("#", f"WARNING: Sentinel was not able to save the new configuration on disk!!!: {exc}")

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for master in self.state.masters.values():
            for instance in (master, *master.replicas.values(), *master.sentinels.values()):
                await self.close_link(instance)
        for task in list(self._tasks):
            task.cancel()
        self.scripts.cancel()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(random.randint(TIMER_MIN_MS, TIMER_MAX_MS) / 1000)
            try:
                self.tick()
            except Exception as exc:  # a bug in one tick must not stop monitoring
                self.log("#", f"sentinel timer error: {exc!r}")

    # -- the timer --------------------------------------------------------------------------------------

    def tick(self) -> None:
        now = now_ms()
        state = self.state
        self.scripts.tick()  # Redis runs, collects and times out scripts on every timer tick, TILT or not
        delta = now - state.previous_timer_ms
        if delta < 0 or delta > state.timing["tilt-trigger"]:
            state.tilt = True
            state.tilt_start_ms = now
            self.event("#", "+tilt", None, "#tilt mode entered")
        state.previous_timer_ms = now
        switch: list[Instance] = []
        for master in list(state.masters.values()):
            self.handle_instance(master, now)
            for replica in list(master.replicas.values()):
                self.handle_instance(replica, now)
            for sentinel in list(master.sentinels.values()):
                self.handle_instance(sentinel, now)
            if master.failover_state is FailoverState.UPDATE_CONFIG:
                switch.append(master)
        for master in switch:
            failover.switch_to_promoted(self, master)

    def handle_instance(self, ri: Instance, now: int) -> None:
        self.reconnect(ri, now)
        self.send_periodic(ri, now)
        state = self.state
        if state.tilt:
            if now - state.tilt_start_ms < state.timing["tilt-period"]:
                return
            state.tilt = False
            self.event("#", "-tilt", None, "#tilt mode exited")
        self.check_subjectively_down(ri, now)
        if ri.kind is Kind.MASTER:
            self.check_objectively_down(ri, now)
            if failover.start_if_needed(self, ri, now):
                self.ask_master_state(ri, now, force=True)
            failover.step(self, ri, now)
            self.ask_master_state(ri, now, force=False)

    # -- links ------------------------------------------------------------------------------------------

    def reconnect(self, ri: Instance, now: int) -> None:
        link = ri.link
        if link.connected or link.connecting:
            return
        if now - link.last_attempt_ms < 100:
            return
        link.last_attempt_ms = now
        link.connecting = True
        self.spawn(self._connect(ri))

    def _credentials(self, ri: Instance) -> tuple[str | None, str | None]:
        if ri.kind is Kind.SENTINEL:
            return self.state.sentinel_user, self.state.sentinel_pass
        master = ri if ri.kind is Kind.MASTER else ri.master
        assert master is not None
        return master.auth_user, master.auth_pass

    async def _connect(self, ri: Instance) -> None:
        link = ri.link
        user, password = self._credentials(ri)
        prefix = f"sentinel-{self.state.myid[:8]}"
        cmd: RespClient | None = None
        pubsub: RespClient | None = None
        try:
            cmd = await RespClient.connect(
                ri.ip, ri.port, timeout_s=CONNECT_TIMEOUT_S, password=password, username=user
            )
            cmd.timeout_s = None  # replies are awaited as long as the link lives; SDOWN watches the time
            self.spawn(self._quiet(cmd.call("CLIENT", "SETNAME", f"{prefix}-cmd")))
            if ri.kind is not Kind.SENTINEL:
                pubsub = await RespClient.connect(
                    ri.ip, ri.port, timeout_s=CONNECT_TIMEOUT_S, password=password, username=user
                )
                await pubsub.call("CLIENT", "SETNAME", f"{prefix}-pubsub")
                await pubsub.subscribe(HELLO_CHANNEL)
                pubsub.timeout_s = None
        except (OSError, ReplyError, ConnectionLost) as exc:
            for client in (cmd, pubsub):
                if client is not None:
                    await client.close()
            link.connecting = False
            if isinstance(exc, ReplyError):
                self.log("-", f"link to {ri.addr} refused: {exc}")
            return
        link.cmd = cmd
        link.pubsub = pubsub
        link.connecting = False
        link.info_pending = link.ask_pending = False
        link.connected = True
        now = now_ms()
        link.connected_at_ms = now
        link.pending_commands = 0
        link.last_pubsub_ms = now
        if pubsub is not None:
            self.spawn(self._read_hellos(ri, pubsub))
        self.spawn(self._watch_closed(ri, cmd))
        self.send_ping(ri)

    async def _quiet(self, coro: Any) -> Any:
        with contextlib.suppress(OSError, ReplyError, ConnectionLost):
            return await coro
        return None

    async def _watch_closed(self, ri: Instance, cmd: RespClient) -> None:
        await cmd.wait_closed()
        if ri.link.cmd is cmd:
            await self.close_link(ri)

    async def _read_hellos(self, ri: Instance, pubsub: RespClient) -> None:
        try:
            async for message in pubsub.messages():
                ri.link.last_pubsub_ms = now_ms()
                if message.kind == "message" and isinstance(message.data, bytes):
                    self.process_hello(message.data.decode("utf-8", "replace"))
        except (ConnectionLost, OSError):
            pass
        if ri.link.pubsub is pubsub:
            await self.close_link(ri)

    async def close_link(self, ri: Instance) -> None:
        link = ri.link
        cmd, pubsub = link.cmd, link.pubsub
        link.cmd = link.pubsub = None
        if link.connected:
            link.connected = False
        for client in (cmd, pubsub):
            if client is not None:
                await client.close()

    def command(self, ri: Instance, *args: Any, on_reply: Callable[[Any], None] | None = None) -> bool:
        """Send one command on ``ri``'s command link (False if it is down); ``on_reply`` gets the reply or a
        ``ReplyError``. Renamed commands (sentinel rename-command) are renamed here."""
        cmd: RespClient | None = ri.link.cmd
        if cmd is None or cmd.is_closed:
            return False
        master = ri if ri.kind is Kind.MASTER else ri.master
        if master is not None and ri.kind is not Kind.SENTINEL and master.rename_commands:
            args = (master.rename_commands.get(str(args[0]).lower(), args[0]), *args[1:])
        ri.link.pending_commands += 1
        self.spawn(self._command(ri, cmd, args, on_reply))
        return True

    async def _command(
        self, ri: Instance, cmd: RespClient, args: tuple[Any, ...], on_reply: Callable[[Any], None] | None
    ) -> None:
        try:
            reply: Any = await cmd.call(*args)
        except ReplyError as exc:
            reply = exc
        except (ConnectionLost, OSError):
            return
        finally:
            ri.link.pending_commands = max(0, ri.link.pending_commands - 1)
        if on_reply is not None and ri.link.connected:
            on_reply(reply)

    def transaction(
        self, ri: Instance, commands: list[list[Any]], on_done: Callable[[], None] | None = None
    ) -> bool:
        """Send commands as one write (the failover's MULTI ... EXEC); replies are discarded, as Redis does."""
        cmd: RespClient | None = ri.link.cmd
        if cmd is None or cmd.is_closed:
            return False
        master = ri if ri.kind is Kind.MASTER else ri.master
        renames = master.rename_commands if master is not None else {}
        commands = [[renames.get(str(c[0]).lower(), c[0]), *c[1:]] for c in commands]

        async def run() -> None:
            with contextlib.suppress(ConnectionLost, OSError, ReplyError):
                await cmd.pipeline(commands, raise_on_error=False)
            if on_done is not None:
                on_done()

        self.spawn(run())
        return True

    async def one_shot_transaction(self, ri: Instance, commands: list[list[Any]]) -> None:
        """Send ``commands`` on a connection of their own (for an instance whose link is being replaced)."""
        user, password = self._credentials(ri)
        renames = ri.master.rename_commands if ri.master is not None else {}
        commands = [[renames.get(str(c[0]).lower(), c[0]), *c[1:]] for c in commands]
        with contextlib.suppress(OSError, ReplyError, ConnectionLost):
            client = await RespClient.connect(
                ri.ip, ri.port, timeout_s=CONNECT_TIMEOUT_S, password=password, username=user
            )
            try:
                await client.pipeline(commands, raise_on_error=False)
            finally:
                await client.close()

    # -- periodic commands ------------------------------------------------------------------------------

    def send_periodic(self, ri: Instance, now: int) -> None:
        link = ri.link
        if not link.connected:
            return
        timing = self.state.timing
        # A link that stopped answering is closed and reopened (Redis: the instance may be paused or the
        # connection half-open); the pub/sub link is watched the same way.
        if (
            link.act_ping_ms
            and now - link.connected_at_ms > timing["min-link-reconnect-period"]
            and now - link.act_ping_ms > ri.down_after_ms // 2
            and now - link.last_pong_ms > ri.down_after_ms // 2
        ) or (ri.kind is not Kind.SENTINEL and now - link.last_pubsub_ms > timing["publish-period"] * 3):
            self.spawn(self.close_link(ri))
            return
        if ri.kind is not Kind.SENTINEL:
            info_period = timing["info-period"]
            master = ri.master
            if (
                ri.kind is Kind.REPLICA
                and master is not None
                and (master.flags & (Flag.O_DOWN | Flag.FAILOVER_IN_PROGRESS) or ri.master_link_down_ms)
            ):
                info_period = min(info_period, FAST_INFO_PERIOD_MS)
            if (not ri.info_refresh_ms or now - ri.info_refresh_ms > info_period) and not link.info_pending:
                self.send_info(ri)
        ping_period = min(ri.down_after_ms, timing["ping-period"])
        if now - link.last_pong_ms > ping_period and now - link.last_ping_ms > ping_period // 2:
            self.send_ping(ri)
        if now - ri.last_pub_ms > timing["publish-period"]:
            self.send_hello(ri, now)

    def send_ping(self, ri: Instance) -> None:
        now = now_ms()

        def on_reply(reply: Any) -> None:
            link = ri.link
            ok = reply == b"PONG" or (
                isinstance(reply, ReplyError) and str(reply).startswith(("LOADING", "MASTERDOWN"))
            )
            if ok:
                link.last_avail_ms = now_ms()
                link.act_ping_ms = 0
                if reply == b"PONG":
                    ri.flags &= ~Flag.MASTER_REBOOT  # serving again (-LOADING does not count)
            elif isinstance(reply, ReplyError) and str(reply).startswith("BUSY") and ri.has(Flag.S_DOWN):
                if not ri.has(Flag.SCRIPT_KILL_SENT):
                    self.command(ri, "SCRIPT", "KILL")
                    ri.flags |= Flag.SCRIPT_KILL_SENT
            link.last_pong_ms = now_ms()

        if self.command(ri, "PING", on_reply=on_reply):
            ri.link.last_ping_ms = now
            if not ri.link.act_ping_ms:
                ri.link.act_ping_ms = now

    def send_info(self, ri: Instance) -> None:
        def on_reply(reply: Any) -> None:
            ri.link.info_pending = False
            if isinstance(reply, bytes):
                self.refresh_from_info(ri, reply.decode("utf-8", "replace"))

        if self.command(ri, "INFO", on_reply=on_reply):
            ri.link.info_pending = True

    def hello_payload(self, ri: Instance) -> str | None:
        master = ri if ri.kind is Kind.MASTER else ri.master
        assert master is not None
        state = self.state
        ip = state.announce_ip
        if not ip:
            cmd: RespClient | None = ri.link.cmd
            address = cmd.local_address if cmd is not None else None
            if address is None:
                return None
            ip = address[0]
        port = state.announce_port or self.config.port
        current = failover.current_master(master)
        shown = state.shown(current)
        return f"{ip},{port},{state.myid},{state.current_epoch},{master.name},{shown},{current.port},{master.config_epoch}"

    def send_hello(self, ri: Instance, now: int) -> None:
        payload = self.hello_payload(ri)
        if payload is not None and self.command(ri, "PUBLISH", HELLO_CHANNEL, payload):
            ri.last_pub_ms = now

    def force_hello(self, master: Instance) -> None:
        """Send hellos at the next tick to everything under ``master`` (a config change to spread at once)."""
        for ri in (master, *master.replicas.values(), *master.sentinels.values()):
            ri.last_pub_ms = 0

    # -- replies --------------------------------------------------------------------------------------

    def refresh_from_info(self, ri: Instance, info: str) -> None:
        """Redis's sentinelRefreshInstanceInfo: roles, replica discovery, and the failover's progress."""
        now = now_ms()
        ri.info = info
        role: Kind | None = None
        fields: dict[str, str] = {}
        discovered = False
        for line in info.split("\r\n"):
            key, sep, value = line.partition(":")
            if not sep:
                continue
            if key == "run_id" and len(value) == 40:
                if ri.runid and ri.runid != value:
                    self.event("*", "+reboot", ri)
                    if ri.has(Flag.MASTER) and ri.master_reboot_down_after_ms:
                        ri.flags |= Flag.MASTER_REBOOT
                        ri.master_reboot_since_ms = now_ms()
                ri.runid = value
            elif key.startswith("slave") and key[5:].isdigit() and ri.kind is Kind.MASTER:
                parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
                # (a hostname is taken only with resolve-hostnames yes, as its address: Redis's rule)
                address = self.state.resolve(parts.get("ip", ""))
                if address is not None and parts.get("port", "").isdigit():
                    replica = add_replica(ri, address, int(parts["port"]), parts["ip"])
                    if replica is not None:
                        self.event("*", "+slave", replica)
                        discovered = True
            elif key == "role":
                role = Kind.MASTER if value == "master" else Kind.REPLICA if value == "slave" else None
            else:
                fields[key] = value
        if discovered:
            self.flush_config()
        if "master_link_down_since_seconds" in fields:
            with contextlib.suppress(ValueError):
                ri.master_link_down_ms = int(fields["master_link_down_since_seconds"]) * 1000
        else:
            ri.master_link_down_ms = 0
        ri.info_refresh_ms = now
        if role is None:
            return
        if role is not ri.role_reported:
            ri.role_reported = role
            ri.role_reported_ms = now
            if role is Kind.REPLICA:
                ri.slave_conf_change_ms = now
            same = (ri.kind is Kind.MASTER) == (role is Kind.MASTER)
            self.event(
                "-", "+role-change" if same else "-role-change", ri, f"new reported role is {role.value}"
            )
        if role is Kind.REPLICA:
            host = fields.get("master_host", "")
            port = int(fields["master_port"]) if fields.get("master_port", "").isdigit() else 0
            if (host, port) != (ri.slave_master_host, ri.slave_master_port):
                ri.slave_master_host, ri.slave_master_port = host, port
                ri.slave_conf_change_ms = now
            ri.slave_master_link_up = fields.get("master_link_status") == "up"
            with contextlib.suppress(ValueError):
                ri.slave_priority = int(fields.get("slave_priority", fields.get("replica_priority", "100")))
                ri.slave_repl_offset = int(fields.get("slave_repl_offset", "0"))
                ri.replica_announced = fields.get("replica_announced", "1") != "0"
        if self.state.tilt:
            return
        failover.after_info(self, ri, role, now)

    def process_hello(self, payload: str) -> None:
        """Redis's sentinelProcessHelloMessage: learn sentinels, epochs and newer master addresses."""
        tokens = payload.split(",")
        if len(tokens) != 8:
            return
        ip, port_text, runid, epoch_text, name, master_ip, master_port_text, config_epoch_text = tokens
        state = self.state
        if runid == state.myid:
            return
        master = state.masters.get(name)
        if master is None:
            return
        try:
            port, epoch = int(port_text), int(epoch_text)
            master_port, config_epoch = int(master_port_text), int(config_epoch_text)
        except ValueError:
            return
        host, address = ip, state.resolve(ip)  # (a sentinel may announce a hostname: resolve-hostnames yes)
        if address is None:
            return
        ip = address
        sentinel = master.sentinels.get(runid)
        if sentinel is None:
            for other in list(master.sentinels.values()):
                if (other.ip, other.port) == (ip, port):
                    # A sentinel restarted with a new id (its myid line lost). Redis keeps the old entry
                    # with port 0 (+sentinel-invalid-addr), which inflates num-other-sentinels and the
                    # majority; we drop it: one address, one sentinel.
                    self.event("*", "+sentinel-invalid-addr", other)
                    del master.sentinels[other.runid]
                    self.spawn(self.close_link(other))
            sentinel = add_sentinel(master, ip, port, runid, host)
            self.event("*", "+sentinel", sentinel)
            self.flush_config()
        elif (sentinel.ip, sentinel.port) != (ip, port):
            self.spawn(self.close_link(sentinel))
            sentinel.ip, sentinel.port, sentinel.hostname = ip, port, host
            self.event("*", "+sentinel-address-update", sentinel, "1 additional matching instances")
            self.flush_config()
        if epoch > state.current_epoch:
            state.current_epoch = epoch
            self.flush_config()
            self.event("#", "+new-epoch", None, str(epoch))
        if master.config_epoch < config_epoch:
            master.config_epoch = config_epoch
            new_ip = state.resolve(master_ip)
            if new_ip is not None and (master.port != master_port or new_ip != master.ip):
                old_shown, old_port = state.shown(master), master.port
                new_shown = master_ip if state.announce_hostnames else new_ip
                self.event("#", "+config-update-from", sentinel)
                self.event(
                    "#",
                    "+switch-master",
                    None,
                    f"{master.name} {old_shown} {old_port} {new_shown} {master_port}",
                )
                failover.reset_master_and_change_address(self, master, new_ip, master_port, master_ip)
                self.client_reconfig(master, "observer", (old_shown, old_port), (new_shown, master_port))
        sentinel.last_hello_ms = now_ms()

    # -- failure detection ------------------------------------------------------------------------------

    def check_subjectively_down(self, ri: Instance, now: int) -> None:
        link = ri.link
        if link.act_ping_ms:
            elapsed = now - link.act_ping_ms
        elif not link.connected:
            elapsed = now - link.last_avail_ms
        else:
            elapsed = 0
        info_period = self.state.timing["info-period"]
        reports_replica = (
            ri.kind is Kind.MASTER
            and ri.role_reported is Kind.REPLICA
            and now - ri.role_reported_ms > ri.down_after_ms + info_period * 2
        )
        # A restarted master still loading after master-reboot-down-after-period is down too.
        rebooting = (
            ri.has(Flag.MASTER_REBOOT) and now - ri.master_reboot_since_ms > ri.master_reboot_down_after_ms
        )
        if elapsed > ri.down_after_ms or reports_replica or rebooting:
            if not ri.has(Flag.S_DOWN):
                self.event("#", "+sdown", ri)
                ri.s_down_since_ms = now
                ri.flags |= Flag.S_DOWN
        elif ri.has(Flag.S_DOWN):
            self.event("#", "-sdown", ri)
            ri.flags &= ~(Flag.S_DOWN | Flag.SCRIPT_KILL_SENT)

    def check_objectively_down(self, master: Instance, now: int) -> None:
        votes = 0
        if master.has(Flag.S_DOWN):
            votes = 1 + sum(1 for s in master.sentinels.values() if s.has(Flag.MASTER_DOWN))
        if votes and votes >= master.quorum:
            if not master.has(Flag.O_DOWN):
                self.event("#", "+odown", master, f"#quorum {votes}/{master.quorum}")
                master.flags |= Flag.O_DOWN
                master.o_down_since_ms = now
        elif master.has(Flag.O_DOWN):
            self.event("#", "-odown", master)
            master.flags &= ~Flag.O_DOWN

    def ask_master_state(self, master: Instance, now: int, force: bool) -> None:
        """SENTINEL IS-MASTER-DOWN-BY-ADDR to the other sentinels (a vote request once failing over)."""
        ask_period = self.state.timing["ask-period"]
        for sentinel in master.sentinels.values():
            elapsed = now - sentinel.last_master_down_reply_ms
            if elapsed > ask_period * 5:
                sentinel.flags &= ~Flag.MASTER_DOWN
                sentinel.leader = None
            if not master.has(Flag.S_DOWN) or not sentinel.link.connected:
                continue
            if not force and elapsed < ask_period:
                continue
            if sentinel.link.ask_pending:
                continue
            runid = self.state.myid if master.failover_state is not FailoverState.NONE else "*"
            self.command(
                sentinel, "SENTINEL", "is-master-down-by-addr", self.state.shown(master), master.port,
                self.state.current_epoch, runid, on_reply=self._down_reply(sentinel),
            )  # fmt: skip
            sentinel.link.ask_pending = True

    def _down_reply(self, sentinel: Instance) -> Callable[[Any], None]:
        def on_reply(reply: Any) -> None:
            sentinel.link.ask_pending = False
            if not (isinstance(reply, list) and len(reply) == 3 and isinstance(reply[0], int)):
                return
            sentinel.last_master_down_reply_ms = now_ms()
            if reply[0] == 1:
                sentinel.flags |= Flag.MASTER_DOWN
            else:
                sentinel.flags &= ~Flag.MASTER_DOWN
            leader = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
            if leader != "*":
                if sentinel.leader_epoch != reply[2] or sentinel.leader != leader:
                    self.log("*", f"{sentinel.name} voted for {leader} {reply[2]}")
                sentinel.leader = leader
                sentinel.leader_epoch = int(reply[2])

        return on_reply
