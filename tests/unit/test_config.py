"""Configuration: the directive table (actors/config.py) and reading redis.conf files and command lines
(launcher/config.py), with Redis's error texts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.config import Config, ConfigError, parse_memory
from launcher.config import ConfigFileError, load_config, load_file, overrides_to_text
from tests.harness import REPO

# -- files -----------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "redis.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_file_sets_every_kind_of_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
# comment lines and blank lines are skipped

port 7001
bind 127.0.0.1 -::1
requirepass "pass word"
maxmemory 100mb
appendonly yes
appendfsync always
replicaof 10.0.0.1 6380
dbfilename 'my dump.rdb'
hash-max-listpack-entries 256
""",
    )
    config = load_config(str(path), [])
    assert config["port"] == 7001
    assert config["bind"] == ["127.0.0.1", "-::1"]
    assert config["requirepass"] == "pass word"
    assert config["maxmemory"] == 100 * 1024 * 1024
    assert config["appendonly"] is True
    assert config["appendfsync"] == "always"
    assert config["replicaof"] == ("10.0.0.1", 6380)
    assert config["dbfilename"] == "my dump.rdb"
    assert config.render("hash-max-listpack-entries") == "256"


def test_several_save_lines_accumulate_and_save_empty_clears(tmp_path: Path) -> None:
    config = load_config(str(write(tmp_path, "save 900 1\nsave 300 10\nsave 60 10000\n")), [])
    assert config["save"] == [(900, 1), (300, 10), (60, 10000)]
    config = load_config(str(write(tmp_path, 'save 900 1\nsave ""\n')), [])
    assert config["save"] == []
    config = load_config(str(write(tmp_path, 'save ""\nsave 60 5\n')), [])
    assert config["save"] == [(60, 5)]
    config = load_config(str(write(tmp_path, "save 900 1 300 10\n")), [])
    assert config["save"] == [(900, 1), (300, 10)]
    assert Config()["save"] == [(3600, 1), (300, 100), (60, 10000)]


def test_aliases_and_case_are_accepted(tmp_path: Path) -> None:
    config = load_config(str(write(tmp_path, "SLAVEOF 127.0.0.1 7001\nSlave-Read-Only no\n")), [])
    assert config["replicaof"] == ("127.0.0.1", 7001)
    assert config["replica-read-only"] is False


def test_include_reads_another_file(tmp_path: Path) -> None:
    write(tmp_path, "port 7002\n", "common.conf")
    config = load_config(str(write(tmp_path, f"include {tmp_path / 'common.conf'}\nhz 20\n")), [])
    assert config["port"] == 7002 and config["hz"] == 20


@pytest.mark.parametrize(
    ("text", "lineno", "line", "reason"),
    [
        ("port 7001\nfoo bar\n", 2, "foo bar", "Bad directive or wrong number of arguments"),
        ("port abc\n", 1, "port abc", "argument couldn't be parsed into an integer"),
        ("port 70000\n", 1, "port 70000", "argument must be between 0 and 65535 inclusive"),
        ("appendonly maybe\n", 1, "appendonly maybe", "argument must be 'yes' or 'no'"),
        (
            "appendfsync sometimes\n",
            1,
            "appendfsync sometimes",
            "argument(s) must be one of the following: everysec, always, no",
        ),
        ("maxmemory lots\n", 1, "maxmemory lots", "argument must be a memory value"),
        ("port 1 2\n", 1, "port 1 2", "wrong number of arguments"),
        ("save 900\n", 1, "save 900", "Invalid save parameters"),
        (
            'requirepass "unbalanced\n',
            1,
            'requirepass "unbalanced',
            "Unbalanced quotes in configuration line",
        ),
        ("\n\nreplicaof host notaport\n", 3, "replicaof host notaport", "Invalid master port"),
        (
            "daemonize yes\n",
            1,
            "daemonize yes",
            "daemonize yes is not supported: redactor runs in the foreground (use `redactor up`)",
        ),
        (
            'rename-command CONFIG ""\nrename-command config other\n',
            2,
            "rename-command config other",
            "No such command in rename-command",
        ),
        (
            "loadmodule /m.so\n",
            1,
            "loadmodule /m.so",
            "loadmodule is not supported: redactor has no module API",
        ),
        # Redis 7.0 skips these three with one value (deprecated_configs), not with two
        (
            "list-max-ziplist-entries 512\nlua-replicate-commands 1 2\n",
            2,
            "lua-replicate-commands 1 2",
            "Bad directive or wrong number of arguments",
        ),
    ],
)
def test_a_bad_line_is_a_fatal_error_naming_file_line_and_directive(
    tmp_path: Path, text: str, lineno: int, line: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as info:
        load_config(str(path), [])
    assert str(info.value) == (
        f"\n*** FATAL CONFIG FILE ERROR (redactor 0.1.0) ***\n"
        f"Reading the configuration file {path}, at line {lineno}\n>>> '{line}'\n{reason}"
    )


def test_a_missing_file_is_a_fatal_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="Fatal error, can't open config file"):
        load_file(Config(), str(tmp_path / "nope.conf"))


def test_a_node_started_with_a_bad_config_exits_1_and_prints_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, "port 7001\nfoo bar\n")
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.main", "server", str(path)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "*** FATAL CONFIG FILE ERROR (redactor 0.1.0) ***" in proc.stderr
    assert (
        f"Reading the configuration file {path}, at line 2\n>>> 'foo bar'\nBad directive or wrong number of arguments"
        in proc.stderr
    )


def test_a_node_with_a_bad_command_line_value_exits_1(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "launcher.main", "server", "--port", "abc", "--dir", str(tmp_path)],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "Reading the configuration file (command line), at line 1\n>>> 'port abc'" in proc.stderr


# -- the command line ------------------------------------------------------------------------------------


def test_command_line_directives_parse_like_file_lines() -> None:
    args = ["--port", "7001", "--save", "", "--replicaof", "127.0.0.1 7001", "--requirepass", 'a"b c']
    assert overrides_to_text(args) == 'port 7001\nsave ""\nreplicaof "127.0.0.1 7001"\nrequirepass "a\\"b c"'
    config = load_config(None, args)
    assert config["port"] == 7001
    assert config["save"] == []
    assert config["replicaof"] == ("127.0.0.1", 7001)
    assert config["requirepass"] == 'a"b c'


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    path = str(write(tmp_path, "port 7001\nsave 900 1\n"))
    config = load_config(path, ["--port", "7005", "--save", "60 1"])
    assert config["port"] == 7005
    # As redis-server does, the command line continues the file: save points accumulate, save "" clears them.
    assert config["save"] == [(900, 1), (60, 1)]
    assert load_config(path, ["--save", ""])["save"] == []


def test_command_line_arguments_must_start_with_dashes() -> None:
    with pytest.raises(ConfigFileError, match="Invalid argument 'port': directives start with --"):
        load_config(None, ["port", "7001"])


# -- values and CONFIG SET -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100", 100),
        ("1k", 1000),
        ("1kb", 1024),
        ("1m", 10**6),
        ("1mb", 2**20),
        ("1g", 10**9),
        ("1gb", 2**30),
        ("5GB", 5 * 2**30),
        ("0", 0),
    ],
)
def test_memory_units_follow_redis(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["", "mb", "b"])
def test_memory_values_without_digits_are_zero_as_in_redis(text: str) -> None:
    """Redis's memtoull reads the digits before the unit with strtoull, which gives 0 for none at all."""
    assert parse_memory(text) == 0


@pytest.mark.parametrize("text", ["1tb", "1.5mb", "abc", "-1", "-0", " 1", "1 kb"])
def test_bad_memory_values_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_memory(text)


def test_set_runtime_validates_notifies_and_keeps_the_old_value_on_error() -> None:
    config = Config()
    seen: list[object] = []
    config.on_change("maxmemory", seen.append)
    config.set_runtime("maxmemory", ["2mb"])
    assert config["maxmemory"] == 2 * 2**20 and seen == [2 * 2**20]
    with pytest.raises(ConfigError) as info:
        config.set_runtime("maxmemory", ["lots"])
    assert (
        str(info.value)
        == "CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
    )
    assert config["maxmemory"] == 2 * 2**20
    with pytest.raises(ConfigError, match="can't set immutable config"):
        config.set_runtime("databases", ["4"])
    with pytest.raises(ConfigError, match="Unknown option or number of arguments for CONFIG SET - 'nosuch'"):
        config.set_runtime("nosuch", ["1"])
    config.set_runtime("save", ["100 10 60 5"])
    assert config["save"] == [(100, 10), (60, 5)]
    config.set_runtime("save", [""])
    assert config["save"] == []


def test_hz_is_clamped_to_redis_range() -> None:
    config = Config()
    config.set_runtime("hz", ["1000"])
    assert config["hz"] == 500
    config.set_runtime("hz", ["0"])
    assert config["hz"] == 1


def test_match_finds_directives_and_aliases_by_glob() -> None:
    config = Config()
    names = [name for name, _ in config.match("maxmemory*")]
    assert "maxmemory" in names and "maxmemory-policy" in names
    assert dict(config.match("slave-read-only")) == {"slave-read-only": "yes"}
    assert dict(config.match("save")) == {"save": "3600 1 300 100 60 10000"}
    assert dict(config.match("zset-max-listpack-entries")) == {"zset-max-listpack-entries": "128"}
    assert config.match("nosuch*") == []


def test_cluster_announce_directives_are_read_as_redis_reads_them() -> None:
    config = Config()
    config.apply("cluster-announce-ip", ["10.0.0.1"])
    assert config["cluster-announce-ip"] == "10.0.0.1"
    config.apply("cluster-announce-hostname", ["node-1.example.com"])
    assert config["cluster-announce-hostname"] == "node-1.example.com"
    config.apply("cluster-announce-hostname", [""])  # none
    with pytest.raises(
        ConfigError, match="^Hostnames may only contain alphanumeric characters, hyphens or dots$"
    ):
        config.apply("cluster-announce-hostname", ["node_1"])
    with pytest.raises(ConfigError, match="^Hostnames must be less than 256 characters$"):
        config.apply("cluster-announce-hostname", ["a" * 256])
    config.apply("cluster-announce-hostname", ["a" * 255])
    for name in (
        "cluster-announce-port",
        "cluster-announce-bus-port",
        "cluster-announce-tls-port",
        "cluster-port",
    ):
        config.apply(name, ["7000"])
        with pytest.raises(ConfigError, match="argument must be between 0 and 65535 inclusive"):
            config.apply(name, ["65536"])
    with pytest.raises(ConfigError, match="must be one of the following: ip, hostname, unknown-endpoint"):
        config.apply("cluster-preferred-endpoint-type", ["name"])
    config.apply("cluster-preferred-endpoint-type", ["Unknown-Endpoint"])
    assert config["cluster-preferred-endpoint-type"] == "unknown-endpoint"


def test_replicaof_port_zero_is_a_master_never_reached_as_in_redis() -> None:
    # redis-server 7.0 takes ports 0..65535 (its test suite starts "replicaof 127.0.0.1 0" replicas).
    config = Config()
    config.apply("replicaof", ["127.0.0.1", "0"], from_file=True)
    assert config["replicaof"] == ("127.0.0.1", 0)
    with pytest.raises(ConfigError, match="Invalid master port"):
        config.apply("replicaof", ["127.0.0.1", "65536"], from_file=True)
