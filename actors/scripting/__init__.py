"""Lua scripting and functions, as Redis 7.0's: EVAL / EVALSHA / SCRIPT and FUNCTION / FCALL run here.

Layout:
    runtime.py      the one Lua 5.1 state (lupa), its sandbox, the ``redis`` table, the error handler
    libs.py         cmsgpack, bit and struct for scripts, over Python's stdlib
    cjson.py        cjson for scripts: lua-cjson 2.1.0's encoder, decoder and settings
    convert.py      reply <-> Lua value conversions (RESP2 and RESP3 rules)
    bridge.py       redis.call / redis.pcall and the small redis.* helpers: each call's checks and dispatch
    refusals.py     commands refused from scripts by their arguments (CLUSTER RESET, XREAD BLOCK...)
    lane.py         the script lane: a script's plain GET / SET inline, with Server.call's exact effects
    engine.py       the EVAL script cache, the run in progress (greenlet, busy-reply-threshold, -BUSY,
                    SCRIPT KILL), effects propagation wrapped in MULTI/EXEC
    meminfo.py      INFO memory's scripting lines (number_of_cached_scripts, used_memory_vm_eval...)
    functions.py    function libraries: FUNCTION LOAD / DELETE / LIST / DUMP / RESTORE, FCALL, RDB opcode

The commands themselves are in actors/commands/scripting.py and actors/commands/functions.py. Everything
here runs on the master actor's loop thread.
"""
