"""One node process: configuration in, a serving node out, until SHUTDOWN or SIGTERM.

Start-up order: enter ``dir``, configure logging (a relative logfile is in ``dir``), bind the RESP port (so a port clash fails fast), start the
node's actors, load the dataset (clients get -LOADING meanwhile), then serve. Shutdown runs in reverse:
stop accepting, save if asked, flush, stop the actors, exit 0. Exit status 1 means the node could not start;
any other non-zero status means it died and the launcher should restart it: 3 (``EXIT_SUPERVISOR_GAVE_UP``)
when the node's actors failed more often than the supervisor's restart intensity allows.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import signal
import ssl
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
import uvloop

from actors.bus import curve as bus_curve
from actors.bus.bus import BusActor
from actors.config import Config, ConfigError
from actors.data.allocator import HeapTrimmer
from actors.files import write_bytes_atomically
from actors.loop.master import MasterActor
from actors.persistence.actor import PersistenceActor
from actors.persistence.loading import LoadError
from actors.persistence.persistence import Persistence
from actors.persistence.rdb.helper import LoadHelper
from actors.replication.actor import ReplicationActor
from actors.replication.loop_side import Replication
from actors.server.server import REDIS_VERSION, VERSION, Server
from actors.server.shutdown import Shutdown, ShutdownFlags, ShutdownState
from actors.server.tls import TLS_FAILED, TlsConfigError, build_server_context, tls_wanted
from actors.supervision.supervisor import ChildStartError, Strategy, Supervisor
from launcher import pidfile, supervised
from launcher.config_rewrite import rewrite_config_file
from protocol.curve import CurveError

if TYPE_CHECKING:
    from actors.cluster.facade import Cluster  # imported when cluster-enabled: ~10% of an empty node's start

log = structlog.get_logger("redactor.node")

# Exit status when the supervisor gave up on the node's actors: the launcher restarts the process.
EXIT_SUPERVISOR_GAVE_UP = 3


def _change_dir(config: Config, path: str) -> None:
    """CONFIG SET dir: the node moves into ``path``, so the next RDB and AOF files go there (Redis chdirs);
    CONFIG GET dir then answers the absolute path, as Redis's getcwd()."""
    try:
        os.chdir(path)
    except OSError as exc:
        raise ConfigError(exc.strerror or str(exc)) from None
    config.values["dir"] = os.getcwd()


def _log_start(config: Config) -> None:
    """Redis's start-up lines: its banner (on a terminal, or with always-show-logo yes: Redis's logo, whose
    "PID: n" line tools and Redis's own test suite wait for), else "Running mode=..., port=...."."""
    mode = "cluster" if config["cluster-enabled"] else "standalone"
    port = config["port"] or config["tls-port"]
    if config["always-show-logo"] or sys.stdout.isatty():
        message = (
            f"redactor {VERSION} (Redis {REDIS_VERSION} compatible), running in {mode} mode, Port: {port}"
        )
        log.info("node_starting", mode=mode, port=port, message=f"{message}, PID: {os.getpid()}")
    else:
        log.info("node_starting", mode=mode, port=port, message=f"Running mode={mode}, port={port}.")


class Node:
    def __init__(self, config: Config, config_file: str = "", load_helper: LoadHelper | None = None) -> None:
        self.config = config
        self.load_helper = load_helper  # started by launcher/main.py on dump.rdb, for the start-up load
        self.config_file = os.path.abspath(config_file) if config_file else ""
        self.server: Server | None = None
        self.master: MasterActor | None = None
        self.supervisor: Supervisor | None = None
        # The SSL context of tls-port (actors/server/tls.py), built before anything binds.
        self.tls_context: ssl.SSLContext | None = None
        # one_for_one: the node's actors share no state that a sibling's restart would invalidate.
        self.supervisor_strategy = Strategy.ONE_FOR_ONE
        self.exit_code = 0
        self._shutting_down = False
        self.cluster: Cluster | None = None

    def run(self) -> int:
        from launcher.logs import configure_logging

        config = self.config
        data_dir = os.path.abspath(config["dir"])
        try:
            os.makedirs(data_dir, exist_ok=True)
            os.chdir(data_dir)
        except OSError as exc:
            print(f"Can't chdir to '{data_dir}': {exc.strerror}", file=sys.stderr)
            return 1
        # A relative logfile is in `dir`, as Redis's: it chdirs into `dir` while reading the configuration and
        # opens the log file from there.
        logfile = os.path.join(data_dir, config["logfile"]) if config["logfile"] else ""
        syslog_to = (config["syslog-ident"], config["syslog-facility"]) if config["syslog-enabled"] else None
        # (no logfile: standard output, as Redis's `logfile ""`; scripts and Redis's test suite read it there)
        configure_logging(config["loglevel"], logfile, role="node", syslog_to=syslog_to, to_stdout=True)
        config.values["dir"] = data_dir  # CONFIG GET dir answers the absolute path, as Redis's getcwd()
        _log_start(config)
        pidfile.create(config["pidfile"])
        config.on_change("dir", functools.partial(_change_dir, config))
        tls_context = None
        if tls_wanted(config):
            try:
                tls_context = build_server_context(config)
            except TlsConfigError as exc:  # Redis's two lines, then exit 1 (nothing listening is worse)
                log.error("tls_config_failed", reason=str(exc))
                print(f"{exc}\n{TLS_FAILED}", file=sys.stderr)
                return 1
        self.tls_context = tls_context
        try:
            bus_curve.check(config)  # refused here, with its reason, rather than as a bus actor crash
        except CurveError as exc:
            log.error("bus_curve_config_failed", reason=str(exc))
            print(f"redactor: {exc}", file=sys.stderr)
            return 1
        try:
            self.server = Server(config)
        except ConfigError as exc:  # ACL users that cannot load (aclfile, `user` lines): Redis stops too
            print(str(exc), file=sys.stderr)
            return 1
        self.server.config_file = self.config_file
        self.server.supervised_mode = supervised.resolve(config["supervised"])
        self.server.acl.write_file = write_bytes_atomically  # ACL SAVE replaces the ACL file atomically
        if self.config_file:
            self.server.config_rewrite = functools.partial(rewrite_config_file, config, self.config_file)
        self.master = MasterActor(self.server)
        # A burst's freed heap goes back to the system once the node is idle (actors/data/allocator.py).
        server = self.server
        self.master.cron_jobs.append(HeapTrimmer(lambda: server.stats.net_input_bytes).cron)
        self.shutdown = Shutdown(self.server, self._finish_shutdown)
        self.server.request_shutdown = self.shutdown.request
        self.server.abort_shutdown = self.shutdown.abort
        self.master.cron_jobs.append(self.shutdown.cron)
        persistence = Persistence(self.server, self.master)  # sets server.persistence: AOF sink, cron, INFO
        persistence.prefetched_load_helper = self.load_helper
        Replication(self.server, self.master)  # sets server.replication: stream feed, WAIT, INFO replication
        if config["cluster-enabled"]:
            from actors.cluster.facade import Cluster
            from actors.cluster.nodesconf import NodesConfError

            if config["replicaof"] is not None:
                print("redactor: replicaof directive not allowed in cluster mode", file=sys.stderr)
                return 1
            try:
                # sets server.cluster: routing, CLUSTER, gossip cron (actors/cluster)
                self.cluster = Cluster(self.server, self.master, config, self.bus_port)
            except (NodesConfError, OSError) as exc:
                print(f"redactor: {exc}", file=sys.stderr)
                return 1
        self.server.loading = True  # until _load_dataset is done: clients that connect early get -LOADING
        if not gc.isenabled():
            # launcher/main.py turned collection off for start-up: what start-up made (modules, functions,
            # the command table) lives as long as the node, so it moves to the permanent generation (never
            # scanned again) rather than being scanned now, and collection resumes for what serving makes.
            gc.freeze()
            gc.enable()
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            try:
                runner.run(self._main())
            except (OSError, ChildStartError) as exc:
                log.error("node_start_failed", reason=str(exc))
                print(f"redactor: {exc}", file=sys.stderr)
                self.exit_code = 1
            finally:
                self._stop_actors()
                self.master.close()
        return self.exit_code

    async def _main(self) -> None:
        assert self.master is not None and self.server is not None
        config = self.config
        port = config["port"]
        binds = config["bind"]
        await self.master.start(binds, port, config["tls-port"], self.tls_context)
        # The dataset starts loading before the actors start: the RDB parse runs in a worker thread, so the
        # actors' start-up (threads, sockets, confirmations) overlaps it instead of delaying it.
        assert self.server.persistence is not None  # installed in run(), before the loop starts
        loading = asyncio.ensure_future(self.server.persistence.load_on_start())
        await asyncio.sleep(0)  # the load runs up to its worker thread (or to its end, with nothing to read)
        try:
            self._start_actors()
        except BaseException:
            loading.cancel()  # the node will not start: exit without waiting for a dataset it will not serve
            raise
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        log.info(
            "node_started",
            port=port,
            bus_port=self.bus_port,
            pid=os.getpid(),
            version=VERSION,
            dir=os.getcwd(),
            config_file=self.config_file or None,
            message="Server initialized",
        )
        await self._load_dataset(loading)
        await self.master.wait_stopped()
        if self.exit_code == 1:
            return  # it never served: its last line stays the error (Redis exits there too; tools read it)
        pidfile.remove(
            config["pidfile"], lambda: log.info("pidfile_removed", message="Removing the pid file.")
        )
        log.info("node_stopped", port=port, pid=os.getpid(), message="Redis is now ready to exit, bye bye...")

    @property
    def bus_port(self) -> int:
        return self.config.bus_port()

    # -- actors ----------------------------------------------------------------------------------------

    def child_specs(self) -> list[tuple[str, Callable[[], Any]]]:
        """The node's actors in start order: (name, factory returning a started pykka ActorRef).

        Each subsystem adds its actor here; the supervisor (actors/supervisor.py) starts them in this order,
        stops them in reverse, and restarts them by calling the factory again.
        """
        assert self.master is not None and self.server is not None
        master = self.master
        server = self.server
        cluster = self.cluster
        extensions: list[Callable[[BusActor], Any]] = [ReplicationActor]
        if cluster is not None:
            from actors.cluster.link import ClusterLink

            extensions.append(lambda bus: ClusterLink(bus, cluster.on_frames))
        return [
            # The bus actor, extended with replication: it owns the bus port's ROUTER (native clients too).
            (
                "replication",
                lambda: BusActor.start(master, self.config["bind"], self.bus_port, extensions),
            ),
            ("persistence", lambda: PersistenceActor.start(server.persistence)),
        ]

    def _start_actors(self) -> None:
        """Start the child specs through the supervisor (raises ChildStartError if one cannot start)."""
        assert self.master is not None and self.server is not None
        self.supervisor = Supervisor(
            self.child_specs(),
            strategy=self.supervisor_strategy,
            schedule=self.master.call_threadsafe,
            on_give_up=self._on_supervisor_gave_up,
        )
        self.supervisor.install(self.server, self.master)
        self.supervisor.start()

    def _stop_actors(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()

    def _on_supervisor_gave_up(self, reason: str) -> None:
        """Loop thread: the actors failed too often (they are stopped already); stop serving and exit non-zero."""
        assert self.master is not None
        log.error("node_gave_up", reason=reason, exit_code=EXIT_SUPERVISOR_GAVE_UP)
        self.exit_code = EXIT_SUPERVISOR_GAVE_UP
        self._shutting_down = True
        self.master.stop()

    async def _load_dataset(self, loading: asyncio.Future[None]) -> None:
        """Wait for the AOF or RDB load started in ``_main``; clients get -LOADING until it is done.

        A dataset that cannot be loaded (corrupt RDB, damaged AOF) stops the node with exit status 1 and
        leaves the files as they are. Replication learns about the loaded dataset only now, with its actor
        running, whatever finished first.
        """
        assert self.master is not None and self.server is not None
        try:
            await loading
        except LoadError as exc:
            self.exit_code = 1
            self._shutting_down = True
            self.master.stop()
            # (after the stop's own lines: the error is the output's last line, where Redis leaves it and tools
            # such as Redis's test suite read it)
            log.error("dataset_load_failed", reason=str(exc))
            print(f"redactor: {exc}", file=sys.stderr)
            return
        self.server.loading = False
        log.info("node_ready", message="Ready to accept connections")
        assert self.server.replication is not None  # installed in run(), before the loop starts
        self.server.replication.on_dataset_loaded()  # replication ids of the RDB, then `replicaof`
        supervised.ready(self.server.supervised_mode, replica=self.config["replicaof"] is not None)

    # -- shutdown --------------------------------------------------------------------------------------

    def _on_signal(self, sig: int) -> None:
        """SIGTERM / SIGINT: shut down as shutdown-on-sigterm / -sigint say (a second SIGINT while the shutdown
        waits for replicas: stop waiting)."""
        name = signal.Signals(sig).name
        log.info("signal_received", signal=name, message=f"Received {name} scheduling shutdown...")
        if sig == signal.SIGINT and self.shutdown.state is ShutdownState.WAITING:
            self.shutdown.insist()
            return
        directive = "shutdown-on-sigint" if sig == signal.SIGINT else "shutdown-on-sigterm"
        self.shutdown.request(ShutdownFlags.from_words(self.config[directive]))

    def _finish_shutdown(self, flags: ShutdownFlags) -> str | None:
        """Save (as ``flags`` say), close the AOF and stop serving; the error to report if the node must keep
        running (a save that failed, without FORCE), else None."""
        if self._shutting_down:
            return None
        assert self.master is not None and self.server is not None
        persistence = self.server.persistence
        if persistence is not None:
            error = persistence.prepare_shutdown(flags.save, flags.force)
            if error:
                return str(error)
        self._shutting_down = True
        supervised.stopping(self.server.supervised_mode)
        self.master.flush_now()
        if self.server.replication is not None:
            self.server.replication.kill_children()  # replication snapshots in progress are temporary
        self.master.stop()
        return None
