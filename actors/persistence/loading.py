"""Loading at start-up: the AOF (with an old single-file AOF upgraded first) or the RDB, with progress.

Runs on the master actor's loop thread; clients get -LOADING meanwhile. An RDB is parsed in a worker thread,
with the load helper (rdb/helper.py) on a second core when the file is large: the launcher starts one on
dbfilename before the node's imports (``prefetched_load_helper``), and the load takes it if it fits. AOF files
are replayed on the loop in slices (aof/replay.py). Progress feeds INFO persistence's ``loading_*`` fields and
a ``loading_progress`` log line. DEBUG RELOAD and DEBUG LOADAOF reload through here too. A dataset that cannot
be loaded raises LoadError: the node must not start, and no file is changed.

Replication info of a loaded RDB: ``server.loaded_repl_id`` / ``server.loaded_repl_offset`` (None when the
file had none).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

import greenlet
import structlog

from actors.persistence.aof.file import AofState, write_base
from actors.persistence.aof.manifest import (
    AofFileType,
    AofInfo,
    Manifest,
    ManifestError,
    read_manifest,
    write_manifest,
)
from actors.persistence.aof.replay import AofLoadError, AofReplay, ReplayState
from actors.persistence.jobs import remove_quietly
from actors.persistence.rdb import reader as rdb_reader
from actors.persistence.rdb.format import PROGRESS_EVERY_KEYS, RdbData, RdbError
from actors.persistence.rdb.helper import LoadHelper

if TYPE_CHECKING:
    from actors.persistence.aof_sink import AofSink
    from actors.persistence.jobs import Jobs
    from actors.server.server import Server

log = structlog.get_logger("redactor.persistence")

# AOF replay runs on the loop in slices this long, so clients keep getting -LOADING while it runs.
REPLAY_SLICE_S = 0.02
# Loading logs its progress at most this often.
LOADING_LOG_INTERVAL_S = 1.0
# key-load-delay's wait (below) is served in slices this long, each advancing INFO's loading fields.
KEY_LOAD_DELAY_SLICE_S = 0.05


def key_load_delay_s(delay_us: int, keys: int) -> float:
    """How much longer loading ``keys`` keys takes with ``key-load-delay delay_us`` (a hidden test knob, as
    Redis's): Redis sleeps ``delay_us`` after each key, or for a negative value 1 us after one key in
    ``-delay_us`` on average (debugDelay)."""
    if delay_us >= 0:
        return keys * delay_us / 1e6
    return keys / -delay_us / 1e6


class LoadError(Exception):
    """The dataset on disk cannot be loaded: the node must not start (exit status 1). Files are untouched."""


class Loading:
    """Start-up loading and DEBUG RELOAD (loop thread; the RDB parse in a worker thread)."""

    def __init__(self, server: Server, sink: AofSink, jobs: Jobs) -> None:
        self.server = server
        self.config = server.config
        self.sink = sink
        self.jobs = jobs
        # Test knob (DEBUG SET-LOAD-DELAY): a load waits this long before reading (tests observe -LOADING).
        self.load_delay_s = 0.0
        # A helper process started by the launcher on the RDB file before the node's imports (rdb/helper.py):
        # the start-up load takes it; if that load does not happen, load_on_start closes it.
        self.prefetched_load_helper: LoadHelper | None = None
        self.rdb_last_load_keys_loaded = 0
        self.rdb_last_load_keys_expired = 0
        # INFO persistence loading_* fields.
        self.loading_start_s = 0
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        self._loading_started_monotonic = 0.0
        self._loading_logged_monotonic = 0.0

    def _begin_loading(self, source: str, total_bytes: int, files: list[str]) -> None:
        self.server.loading = True
        self.loading_start_s = int(time.time())
        self.loading_total_bytes = total_bytes
        self.loading_loaded_bytes = 0
        self._loading_started_monotonic = self._loading_logged_monotonic = time.monotonic()
        log.info("loading_started", source=source, files=files, bytes=total_bytes)

    def replica_loading(self, total_bytes: int) -> None:
        """A replica's full sync begins its load (actors/replication/loop_side.py, which sets the server's
        loading or async_loading): INFO's loading_* fields describe it, ``total_bytes`` long and parsed as it
        arrives. Redis logs its own lines for it (the sync's)."""
        self.loading_start_s = int(time.time())
        self.loading_total_bytes = self.loading_loaded_bytes = max(total_bytes, 0)

    def _loading_progress(self, loaded_bytes: int, keys: int) -> None:
        """Any thread: record (and now and then log) how far loading got."""
        self.loading_loaded_bytes = loaded_bytes
        now = time.monotonic()
        if now - self._loading_logged_monotonic >= LOADING_LOG_INTERVAL_S:
            self._loading_logged_monotonic = now
            log.info(
                "loading_progress",
                bytes=loaded_bytes,
                total_bytes=self.loading_total_bytes,
                keys=keys,
                percent=round(self.loading_percent(), 1),
            )

    def loading_percent(self) -> float:
        return (
            100.0 * self.loading_loaded_bytes / self.loading_total_bytes if self.loading_total_bytes else 0.0
        )

    def _end_loading(self, source: str) -> None:
        self.server.loading = False
        duration_s = time.monotonic() - self._loading_started_monotonic
        log.info(
            "loading_finished",
            source=source,
            keys=self.server.keyspace.total_keys(),
            bytes=self.loading_loaded_bytes,
            duration_ms=round(duration_s * 1000, 1),
            # (Redis's words: an operator's scripts wait for them)
            message=f"DB loaded from {'disk' if source == 'rdb' else 'append only file'}: {duration_s:.3f} seconds",
        )

    def _master_drops_expired(self) -> bool:
        """A master drops the keys that expired while it was down (a replica keeps them for its master's DELs:
        a replica by replicaof, or a cluster node whose nodes.conf names its master, as Redis loads nodes.conf
        before the data)."""
        cluster = self.server.cluster
        if cluster is not None and cluster.is_replica():
            return False
        return not self.server.is_replica and not self.config["replicaof"]

    def _drop_expired_named(self) -> int:
        """The start-up load's sweep: delete the keys whose time passed, naming them in the server's
        ``expired_on_load``."""
        keyspace = self.server.keyspace
        now = keyspace.clock()
        dropped = 0
        for db in keyspace.dbs:
            gone = [key for key, when in db.expires.items() if when < now]
            for key in gone:
                db.delete(key)
            self.server.expired_on_load.extend((db.id, key) for key in gone)
            dropped += len(gone)
        return dropped

    async def _read_rdb(
        self, path: str, base_bytes: int, for_aof: bool, drop_expired: bool = True
    ) -> RdbData:
        """Parse an RDB file in a worker thread (the loop keeps answering -LOADING meanwhile). ``drop_expired``:
        a master's load leaves out the keys whose time passed (not for an AOF's preamble)."""
        server = self.server
        drop_before: int | None = None
        if not for_aof and drop_expired and self._master_drops_expired():
            drop_before = server.keyspace.clock()

        calls = [0]

        def progress(position: int) -> None:
            # Worker thread. rdb_reader.load reports every PROGRESS_EVERY_KEYS keys (and once at the end).
            calls[0] += 1
            self._loading_progress(base_bytes + position, calls[0] * PROGRESS_EVERY_KEYS)

        helper = self._load_helper(path, drop_before)

        def load() -> RdbData:
            # The worker thread reads the helper's pipe, so it closes it too: a cancelled await (a shutdown
            # during the load) must not close the pipe under a read still going on.
            try:
                return rdb_reader.load_file(path, len(server.keyspace.dbs), progress, drop_before, helper)
            finally:
                if helper is not None:
                    helper.close()
                    log.info("load_helper_finished", runs=helper.runs_applied, keys=helper.keys_applied)

        data = await asyncio.to_thread(load)
        await self._serve_key_load_delay(
            base_bytes, os.path.getsize(path), sum(len(db.data) for db in data.dbs)
        )
        return data

    async def _serve_key_load_delay(self, base_bytes: int, size_bytes: int, keys: int) -> None:
        """``key-load-delay``: keep the node loading for as long as Redis's per-key sleeps would (the test suites
        use it to catch a node mid-load: -LOADING replies, a sentinel's master-reboot-down-after-period). The
        parse itself runs at full speed (its loop gets no per-key test); the wait comes after it, on the loop,
        in slices that walk INFO's loading fields from the start of the file to its end, as the keys would. A
        shutdown meanwhile cancels it with the load."""
        total_s = key_load_delay_s(int(self.config["key-load-delay"]), keys)
        if total_s <= 0:
            return
        started = time.monotonic()
        while (elapsed_s := time.monotonic() - started) < total_s:
            share = elapsed_s / total_s
            self._loading_progress(base_bytes + int(size_bytes * share), int(keys * share))
            await asyncio.sleep(min(KEY_LOAD_DELAY_SLICE_S, total_s - elapsed_s))

    def _load_helper(self, path: str, drop_before_ms: int | None) -> LoadHelper | None:
        """The helper process for loading ``path`` on a second core: the one the launcher started before the
        node's imports (if it is for this file and the same expiry rule), else a new one (None: not worth it)."""
        helper, self.prefetched_load_helper = self.prefetched_load_helper, None
        if helper is not None:
            helper.taken = True  # this load owns it now, whatever becomes of it: the launcher leaves it be
            same_rule = (helper.drop_before_ms is None) == (drop_before_ms is None)
            if helper.path == os.path.abspath(path) and same_rule:
                return helper
            helper.close()
        return LoadHelper.spawn(path, drop_before_ms)

    async def _load_rdb_file(self, path: str, at_start: bool = False) -> None:
        """Load ``path`` (dump.rdb). ``at_start``: the node's start-up load, whose expired keys are recorded in
        the server's ``expired_on_load`` rather than dropped unnamed."""
        size = os.path.getsize(path)
        self._begin_loading("rdb", size, [path])
        try:
            if self.load_delay_s:
                await asyncio.sleep(self.load_delay_s)
            try:
                data = await self._read_rdb(path, 0, for_aof=False, drop_expired=not at_start)
            except RdbError as exc:
                raise LoadError(
                    f"Can't load the RDB file {path}: {exc}. The file was left unchanged."
                ) from None
            except OSError as exc:
                raise LoadError(
                    f"Fatal error: can't open the RDB file {path} for reading: {exc.strerror}"
                ) from None
            self.server.keyspace.replace_all(data.dbs)
            if at_start and self._master_drops_expired():
                data.expired_skipped += self._drop_expired_named()
            self.rdb_last_load_keys_loaded = self.server.keyspace.total_keys()
            self.rdb_last_load_keys_expired = data.expired_skipped
            repl_id = data.aux.get("repl-id")
            repl_offset = data.aux.get("repl-offset")
            self.server.loaded_repl_id = repl_id.decode() if repl_id else None
            offset_ok = repl_offset is not None and repl_offset.lstrip(b"-").isdigit()
            self.server.loaded_repl_offset = (
                int(repl_offset) if repl_offset is not None and offset_ok else None
            )
            self.loading_loaded_bytes = size
        finally:
            self._end_loading("rdb")

    async def _load_aof_files(self) -> None:
        aof = self.sink.aof
        files = aof.manifest.loadable()
        sizes = []
        for info in files:
            path = aof.path(info.name)
            if not os.path.exists(path):
                # (Redis's words, then where it looked)
                raise LoadError(
                    f"The append log file {info.name} doesn't exist: No such file or directory (listed in the "
                    f"manifest, looked for in {aof.dirname})"
                )
            sizes.append(os.path.getsize(path))
        total = sum(sizes)
        if not total:
            return
        self._begin_loading("aof", total, [info.name for info in files])
        server = self.server
        done_bytes = 0
        try:
            if self.load_delay_s:
                await asyncio.sleep(self.load_delay_s)
            for index, info in enumerate(files):
                path = aof.path(info.name)
                last_file = index == len(files) - 1
                start = 0
                with open(path, "rb") as fh:
                    is_rdb = fh.read(5) == b"REDIS"
                if is_rdb:
                    if index != 0:
                        raise LoadError(f"The AOF file {info.name} is an RDB but is not the base file")
                    try:
                        data = await self._read_rdb(path, done_bytes, for_aof=True)
                    except RdbError as exc:
                        raise LoadError(
                            f"Error reading the RDB base file {info.name}, AOF loading aborted: {exc}"
                        ) from None
                    server.keyspace.replace_all(data.dbs)
                    start = data.end_offset
                replay = AofReplay(
                    server, path, info.name, start, last_file, bool(self.config["aof-load-truncated"])
                )
                # key-load-delay: Redis sleeps after each command it replays; here after each slice, for its
                # commands (the loop answers -LOADING meanwhile), a slice being at most a slice's worth of them.
                delay_us = int(self.config["key-load-delay"])
                per_slice = max(1, int(REPLAY_SLICE_S * 1e6) // delay_us) if delay_us > 0 else 0
                try:
                    while True:
                        applied = replay.commands_applied
                        state = await self._replay_slice(replay, per_slice)
                        self._loading_progress(done_bytes + replay.position, server.keyspace.total_keys())
                        await asyncio.sleep(key_load_delay_s(delay_us, replay.commands_applied - applied))
                        if state is not ReplayState.RUNNING:
                            break
                finally:
                    replay.close()
                if state is ReplayState.TRUNCATED:
                    sizes[index] = replay.size_bytes
                log.info(
                    "aof_file_loaded",
                    file=info.name,
                    kind=info.type.name.lower(),
                    commands=replay.commands_applied,
                    truncated=state is ReplayState.TRUNCATED,
                )
                done_bytes += sizes[index]
            self.loading_loaded_bytes = done_bytes
        except AofLoadError as exc:
            raise LoadError(str(exc)) from None
        finally:
            self._end_loading("aof")

    async def _replay_slice(self, replay: AofReplay, per_slice: int) -> ReplayState:
        """``replay.run`` for a slice, in a greenlet of its own, so that a script replayed from the file that
        runs past busy-reply-threshold can hand the loop turns (clients get -LOADING meanwhile, as Redis's
        processEventsWhileBlocked answers them while it loads): the script's hook switches to this greenlet
        with LOADING_TURN (``Server.loading_turns``), and the script goes on after one turn of the loop."""
        from actors.server.server import LOADING_TURN

        server = self.server
        slice_task = greenlet.greenlet(replay.run)
        resume: Any = slice_task.switch
        args: tuple[Any, ...] = (REPLAY_SLICE_S, per_slice)
        while True:
            server.loading_turns = greenlet.getcurrent()
            try:
                result = resume(*args)
            finally:
                server.loading_turns = None
            if result is not LOADING_TURN or slice_task.dead:
                state: ReplayState = result
                return state
            await asyncio.sleep(0)  # a turn of the loop: -LOADING to clients, timers, replies
            run = server.scripting.run
            # The script's greenlet paused in its hook: switching into it resumes the script (and, when it
            # ends, the slice it was called from: whatever the slice returns then comes back here).
            resume, args = (run.task.switch, ()) if run is not None else (slice_task.switch, ())

    async def load_on_start(self) -> None:
        """Load the AOF (appendonly yes) or the RDB into the keyspace, then open the AOF for appending.

        Runs on the loop thread; clients get -LOADING meanwhile. Raises LoadError when the node must not start.
        """
        try:
            await self._load_on_start()
        finally:
            if self.prefetched_load_helper is not None:  # not taken: the dataset came from the AOF, or none
                self.prefetched_load_helper.taken = True
                self.prefetched_load_helper.close()
                self.prefetched_load_helper = None

    async def _load_on_start(self) -> None:
        config = self.config
        aof = self.sink.aof
        try:
            manifest = read_manifest(aof.dirname, aof.filename)
        except ManifestError as exc:
            if config["appendonly"]:
                raise LoadError(str(exc)) from None
            log.warning("aof_manifest_ignored", reason=str(exc))
            manifest = None
        if manifest is not None:
            aof.manifest = manifest
        if not config["appendonly"]:
            if os.path.exists(self.jobs.rdb_path):
                await self._load_rdb_file(self.jobs.rdb_path, at_start=True)
            return
        self._upgrade_old_aof()
        if aof.manifest.loadable():
            await self._load_aof_files()
            aof.loaded_sizes()
        elif os.path.exists(self.jobs.rdb_path):
            # No AOF yet but a snapshot: load it, so that switching appendonly on keeps the data (the base
            # written below is made from it). Note: redis-server 7.0 ignores dump.rdb in this case.
            await self._load_rdb_file(self.jobs.rdb_path)
        if self.jobs.shutting_down:
            return
        try:
            aof.ensure_dir()
            if aof.manifest.base is None and not aof.manifest.incrs:
                self._write_first_base()
            aof.open_last_incr()
        except OSError as exc:
            raise LoadError(
                f"Can't open or create the append-only file in {aof.dirname}: {exc.strerror or exc}"
            ) from None
        self.server.aof_feeding = True
        self.server.stream.forget_db()
        self.jobs.delete_history()  # (history files a manifest lists from before: Redis removes them at start)

    def _upgrade_old_aof(self) -> None:
        """A Redis < 7 single appendonly.aof in ``dir``: move it into the AOF directory as the base
        (aofUpgradePrepare), so it loads and is rewritten like any other base."""
        aof = self.sink.aof
        name = aof.filename
        manifest = aof.manifest
        if not os.path.isfile(name):
            return
        if manifest.base is not None or manifest.incrs:
            if not (
                manifest.base is not None
                and not manifest.incrs
                and manifest.base.name == name
                and not os.path.exists(aof.path(name))
            ):
                return
        aof.ensure_dir()
        upgraded = Manifest(base=AofInfo(name, 1, AofFileType.BASE), curr_base_seq=1)
        write_manifest(aof.dirname, aof.filename, upgraded)
        os.rename(name, aof.path(name))
        aof.manifest = upgraded
        log.info("aof_upgraded", file=name, dir=aof.dirname)

    def _write_first_base(self) -> None:
        """No AOF at all: write a base of the current dataset before the first incr file (as Redis does)."""
        aof = self.sink.aof
        manifest = aof.manifest.copy()
        preamble = bool(self.config["aof-use-rdb-preamble"])
        name = manifest.new_base(aof.filename, preamble)
        temp = f"temp-rewriteaof-{os.getpid()}.aof"
        try:
            write_base(
                temp,
                self.server.keyspace.dbs,
                preamble,
                self.jobs.aux(True),
                self.config["aof-timestamp-enabled"],
            )
            os.rename(temp, aof.path(name))
        except BaseException:
            remove_quietly(temp)
            raise
        manifest.history = []
        write_manifest(aof.dirname, aof.filename, manifest)
        aof.manifest = manifest
        aof.current_size = aof.base_size = aof.file_size(name)
        log.info(
            "aof_base_created",
            file=name,
            reason="server start",
            message=f"Creating AOF base file {name} on server start",
        )

    # -- DEBUG RELOAD ----------------------------------------------------------------------------------------

    async def reload(self, save: bool) -> str | None:
        """DEBUG RELOAD: SAVE, then load dbfilename back (clients get -LOADING meanwhile). Returns an error."""
        if save and not self.jobs.save():
            return "ERR"
        try:
            await self._load_rdb_file(self.jobs.rdb_path)
        except LoadError as exc:
            log.error("reload_failed", reason=str(exc))
            return "ERR Error trying to load the RDB dump"
        return None

    # -- DEBUG LOADAOF ---------------------------------------------------------------------------------------

    async def load_aof(self) -> str | None:
        """DEBUG LOADAOF: write what the AOF still has pending, empty the dataset and replay the AOF files
        (debug.c: flushAppendOnlyFile, emptyData, loadAppendOnlyFiles). Clients get -LOADING meanwhile; the
        replay appends nothing. Returns an error.

        Redis exits when the files cannot be loaded (or there is no AOF); a node keeps running and answers an
        error instead, with whatever part of the dataset was loaded (the log says why). With appendonly no the
        files a BGREWRITEAOF left are loaded all the same, as Redis does."""
        aof = self.sink.aof
        if aof.state is not AofState.OFF:
            self.sink.write_pending()
        # The manifest as the disk has it (Redis's aofLoadManifestFromDisk): with AOF off after a rewrite, the
        # next incr's sequence number starts over from what the file lists, as Redis's does.
        try:
            aof.manifest = read_manifest(aof.dirname, aof.filename) or Manifest()
        except ManifestError as exc:
            log.error("loadaof_failed", reason=str(exc))
            return "ERR Error trying to load the AOF files, check server logs."
        self.server.keyspace.replace_all([])
        self.jobs.delete_history()
        try:
            await self._load_aof_files()
        except LoadError as exc:
            log.error("loadaof_failed", reason=str(exc))
            return "ERR Error trying to load the AOF files, check server logs."
        self.server.keyspace.dirty = 0  # as Redis: what was just loaded is what the files hold
        log.info("aof_loaded", reason="DEBUG LOADAOF", keys=self.server.keyspace.total_keys())
        return None
