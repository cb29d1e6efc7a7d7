"""Sentinel logic without processes: sentinel.conf parse and rewrite, the instance map's field order, votes
(one per epoch, durable before the answer), the leader count, and replica selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.sentinel import failover
from actors.sentinel.config import (
    GENERATED_MARKER,
    SentinelConfigError,
    add_replica,
    add_sentinel,
    load,
    render,
)
from actors.sentinel.monitor import Monitor
from actors.sentinel.state import Flag, Kind, now_ms

MYID = "a" * 40
OTHER = "b" * 40
THIRD = "c" * 40


def write_conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sentinel.conf"
    path.write_text(text)
    return path


def monitor_for(tmp_path: Path, extra: str = "") -> tuple[Monitor, list[tuple[str, str]]]:
    path = write_conf(
        tmp_path,
        "# my comment\nport 26379\nsentinel monitor mymaster 127.0.0.1 7001 2\n"
        f"sentinel down-after-milliseconds mymaster 1000\nsentinel myid {MYID}\n{extra}",
    )
    events: list[tuple[str, str]] = []
    config = load(str(path), [])
    monitor = Monitor(
        config, lambda channel, payload: events.append((channel, payload)), lambda level, text: None
    )
    return monitor, events


def test_conf_is_parsed_and_rewritten_keeping_other_lines(tmp_path: Path) -> None:
    monitor, _ = monitor_for(
        tmp_path,
        f"sentinel known-replica mymaster 127.0.0.1 7002\nsentinel known-sentinel mymaster 127.0.0.1 26380 {OTHER}\n"
        f"sentinel current-epoch 3\nsentinel config-epoch mymaster 2\n",
    )
    master = monitor.state.masters["mymaster"]
    assert (master.quorum, master.down_after_ms, master.config_epoch, monitor.state.current_epoch) == (
        2,
        1000,
        2,
        3,
    )
    assert list(master.replicas) == ["127.0.0.1:7002"] and list(master.sentinels) == [OTHER]
    master.ip, master.port = "127.0.0.1", 7002
    monitor.flush_config()
    lines = Path(monitor.config.path).read_text().splitlines()
    assert lines[:4] == [
        "# my comment",
        "port 26379",
        "sentinel monitor mymaster 127.0.0.1 7002 2",
        "sentinel down-after-milliseconds mymaster 1000",
    ]
    assert lines.count(GENERATED_MARKER) == 1
    assert f"sentinel myid {MYID}" in lines and "sentinel current-epoch 3" in lines
    # A rewritten file reads back to the same state, and rewrites to the same bytes.
    again = load(monitor.config.path, [])
    assert again.state.masters["mymaster"].port == 7002 and again.state.myid == MYID
    text = Path(monitor.config.path).read_text()
    monitor.flush_config()
    assert Path(monitor.config.path).read_text() == text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("sentinel monitor m 127.0.0.1 7001 0", "Quorum must be 1 or greater."),
        ("sentinel bogus x", "Unrecognized sentinel configuration statement."),
        ("foo bar", "does not implement 'foo'"),
        # A node's directive is read by the node's rules (redis-sentinel, the same program, reads it so).
        ("maxmemory lots", "argument must be a memory value"),
        ("repl-diskless-sync-delay 1 2", "wrong number of arguments"),
        # ... but one redis-sentinel acts on and this one does not implement stays refused.
        ("unixsocket /tmp/s.sock", "does not implement 'unixsocket'"),
        ("maxclients 0", "argument must be between 1 and"),
        ("tls-port 1", "does not implement 'tls-port'"),
        # Checked as redis-sentinel 7.0 checks them, with its words (they were stored or passed over as given).
        ("loglevel bogus", r"must be one of the following: debug, verbose, notice, warning"),
        ("loglevel nothing", r"must be one of the following: debug, verbose, notice, warning"),
        ("hz bogus", "argument couldn't be parsed into an integer"),
        ("port 01", "argument couldn't be parsed into an integer"),
        ("protected-mode maybe", "argument must be 'yes' or 'no'"),
        ("tcp-keepalive -1", "argument must be between 0 and 2147483647 inclusive"),
        ("daemonize maybe", "argument must be 'yes' or 'no'"),
        ("sentinel resolve-hostnames maybe", "Please specify yes or no for the option."),
        # A hostname needs resolve-hostnames yes (Redis's words; the option may come later in the file).
        ("sentinel monitor m localhost 7001 2", "Can't resolve instance hostname."),
        (
            "sentinel monitor m 127.0.0.1 7001 2\nsentinel master-reboot-down-after-period m -1",
            "negative time parameter",
        ),
    ],
)
def test_bad_lines_stop_start_up(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(SentinelConfigError, match=message):
        load(str(write_conf(tmp_path, line + "\n")), [])


def test_a_nodes_directives_load_and_stay_in_the_file(tmp_path: Path) -> None:
    """redis-sentinel accepts every directive redis-server does (Redis's own sentinel tests write
    repl-diskless-sync-delay and enable-protected-configs into sentinel.conf): they load, mean nothing to a
    sentinel, and a rewrite keeps them where they were."""
    lines = "repl-diskless-sync-delay 0\nenable-protected-configs yes\nmaxmemory 10mb\n"
    path = write_conf(tmp_path, lines + "sentinel monitor m 127.0.0.1 7001 2\n")
    config = load(str(path), [])
    assert "m" in config.state.masters
    rewritten = render(config, path.read_text())
    assert rewritten.startswith(lines)


def test_instance_maps_follow_redis_field_order(tmp_path: Path) -> None:
    monitor, _ = monitor_for(tmp_path)
    master = monitor.state.masters["mymaster"]
    replica = add_replica(master, "127.0.0.1", 7002)
    sentinel = add_sentinel(master, "127.0.0.1", 26380, OTHER)
    assert replica is not None
    now = now_ms()
    master.flags |= Flag.S_DOWN
    master.s_down_since_ms = now
    keys = master.instance_map(now)[::2]
    assert keys[:11] == [
        b"name", b"ip", b"port", b"runid", b"flags", b"link-pending-commands", b"link-refcount",
        b"last-ping-sent", b"last-ok-ping-reply", b"last-ping-reply", b"s-down-time",
    ]  # fmt: skip
    assert master.instance_map(now)[9] == b"s_down,master,disconnected"
    assert replica.instance_map(now)[::2][-7:] == [
        b"master-link-down-time", b"master-link-status", b"master-host", b"master-port", b"slave-priority",
        b"slave-repl-offset", b"replica-announced",
    ]  # fmt: skip
    assert sentinel.instance_map(now)[::2][-3:] == [
        b"last-hello-message",
        b"voted-leader",
        b"voted-leader-epoch",
    ]
    assert replica.event_text() == "slave 127.0.0.1:7002 127.0.0.1 7002 @ mymaster 127.0.0.1 7001"


def test_one_vote_per_epoch_and_it_is_on_disk_before_the_answer(tmp_path: Path) -> None:
    monitor, events = monitor_for(tmp_path)
    master = monitor.state.masters["mymaster"]
    assert failover.vote_leader(monitor, master, 5, OTHER) == (OTHER, 5)
    assert "sentinel leader-epoch mymaster 5" in Path(monitor.config.path).read_text()
    assert failover.vote_leader(monitor, master, 5, THIRD) == (OTHER, 5)  # the vote of epoch 5 is taken
    assert failover.vote_leader(monitor, master, 4, THIRD) == (OTHER, 5)  # an older epoch gets nothing
    assert ("+new-epoch", "5") in events and ("+vote-for-leader", f"{OTHER} 5") in events


def test_leader_needs_a_majority_and_the_quorum(tmp_path: Path) -> None:
    monitor, _ = monitor_for(tmp_path)
    master = monitor.state.masters["mymaster"]
    a = add_sentinel(master, "127.0.0.1", 26380, OTHER)
    add_sentinel(master, "127.0.0.1", 26381, THIRD)
    monitor.state.current_epoch = 1
    assert failover.get_leader(monitor, master, 1) is None  # only my own vote: 1 of 3
    a.leader, a.leader_epoch = MYID, 1
    assert failover.get_leader(monitor, master, 1) == MYID


def test_replica_selection_priority_offset_runid_and_never_priority_zero(tmp_path: Path) -> None:
    monitor, _ = monitor_for(tmp_path)
    master = monitor.state.masters["mymaster"]
    now = now_ms()
    replicas = []
    for port, priority, offset, runid in (
        (7002, 100, 10, "b"),
        (7003, 100, 20, "c"),
        (7004, 0, 99, "a"),
        (7005, 100, 20, "a"),
    ):
        r = add_replica(master, "127.0.0.1", port)
        assert r is not None
        r.link.connected, r.info_refresh_ms, r.link.last_avail_ms = True, now, now
        r.slave_priority, r.slave_repl_offset, r.runid, r.role_reported = (
            priority,
            offset,
            runid * 40,
            Kind.REPLICA,
        )
        replicas.append(r)
    chosen = failover.select_replica(monitor, master, now)
    assert chosen is not None and chosen.port == 7005
    for r in replicas:
        r.slave_priority = 0
    assert failover.select_replica(monitor, master, now) is None


def test_unimplemented_settings_are_accepted_at_their_defaults(tmp_path: Path) -> None:
    conf = (
        "sentinel monitor m 127.0.0.1 7001 2\nsentinel resolve-hostnames no\nsentinel announce-hostnames no\n"
        "sentinel master-reboot-down-after-period m 0\n"
    )
    loaded = load(str(write_conf(tmp_path, conf)), [])
    assert loaded.state.masters["m"].master_reboot_down_after_ms == 0
    assert not loaded.state.resolve_hostnames and not loaded.state.announce_hostnames


def test_a_rewrite_keeps_each_option_in_its_place_and_the_comments_between(tmp_path: Path) -> None:
    """Redis 7.0 rewrites each sentinel option in the place of the file's line of that option (Redis's own
    sentinel tests compare the first lines of a rewritten file with the file given); deny-scripts-reconfig no
    survives the rewrite (it was dropped, and a restarted sentinel then refused SENTINEL SET of scripts)."""
    head = (
        "# assume master is down after being unresponsive for 20s\n"
        "sentinel down-after-milliseconds setmaster 20000\n"
        "# reconfigure one slave at a time\n"
        "sentinel parallel-syncs setmaster 2\n"
        "# wait for 4m before assuming failover went wrong\n"
        "sentinel failover-timeout setmaster 240000\n"
        "# monitoring set\n"
        "sentinel monitor setmaster 10.0.0.1 30000 2\n"
    )
    path = write_conf(tmp_path, head + "\nport 20000\nsentinel deny-scripts-reconfig no\n")
    config = load(str(path), [])
    config.state.myid = MYID
    rewritten = render(config, path.read_text())
    assert rewritten.startswith(head)
    assert "sentinel deny-scripts-reconfig no" in rewritten.split(GENERATED_MARKER)[1].splitlines()
    path.write_text(rewritten)
    assert not load(str(path), []).state.deny_scripts_reconfig


def test_hostnames_load_resolved_and_rewrite_as_names(tmp_path: Path) -> None:
    """resolve-hostnames yes (even after the monitor line): instances get the address their name resolves to;
    announce-hostnames yes: the rewrite, replies and events keep the names (Redis's announceSentinelAddr)."""
    monitor, events = monitor_for(
        tmp_path,
        "sentinel known-replica mymaster localhost 7002\nsentinel resolve-hostnames yes\n"
        "sentinel announce-hostnames yes\n",
    )
    state = monitor.state
    master = state.masters["mymaster"]
    replica = master.replicas[next(iter(master.replicas))]
    assert replica.hostname == "localhost" and replica.ip in ("127.0.0.1", "::1")
    assert state.shown(replica) == "localhost" and state.names(replica, replica.ip)
    assert state.names(replica, "LOCALHOST") and not state.names(replica, "10.0.0.1")
    assert (
        state.master_by_addr("127.0.0.1", 7001) is master and state.master_by_addr("127.0.0.1", 7002) is None
    )
    monitor.event("#", "+sdown", replica)
    assert events[-1] == ("+sdown", f"slave {replica.name} localhost 7002 @ mymaster 127.0.0.1 7001")
    monitor.flush_config()
    text = Path(monitor.config.path).read_text()
    assert (
        "sentinel known-replica mymaster localhost 7002" in text and "sentinel resolve-hostnames yes" in text
    )
    state.announce_hostnames = False
    assert state.shown(replica) == replica.ip
    # A hostname without resolve-hostnames: refused at MONITOR, skipped when INFO reports it.
    state.resolve_hostnames = False
    assert state.resolve("localhost") is None and state.resolve("::1") == "::1"
