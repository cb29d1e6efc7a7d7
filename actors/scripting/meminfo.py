"""The scripting lines of INFO's memory section, as Redis 7.0 prints them (number_of_cached_scripts...).

Read from the engine if one was made; a node that never ran a script (the engine is made on first use, to
keep start-up light) has no Lua state, no scripts and no functions, and says so. Redis keeps two Lua
states (EVAL's and the functions'); redactor's one state serves both, so its size is reported once, as
EVAL's (``used_memory_vm_functions`` is 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.server.server import Server

# Redis's per-entry overheads are its C structures'; these estimate ours (a dict entry and the sha key).
_SCRIPT_ENTRY_BYTES = 120
_FUNCTION_ENTRY_BYTES = 120
# INFO memory collects the Lua heap's garbage before measuring it up to this size (see _lua_bytes).
FULL_COLLECT_MAX_BYTES = 1024 * 1024


def _human(n: float) -> str:
    """As INFO prints sizes (``46.00K``)."""
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n:.2f}G"


def _lua_bytes(lua: Any) -> int:
    """The Lua state's live heap (Redis's lua_gc(LUA_GCCOUNT) * 1024, after a full collection).

    Lua collects incrementally and lets the heap double between cycles, so the raw count of a state that ran
    a few thousand scripts is mostly garbage awaiting the next cycle (Redis steps its collector every 50
    EVALs to keep it near the live size; the node leaves the collector to Lua). A heap under
    FULL_COLLECT_MAX_BYTES is collected first, which costs well under 2 ms; a larger one (thousands of cached
    scripts) is reported as it stands, garbage included, rather than stall INFO."""
    try:
        count = lua.eval("collectgarbage('count')") * 1024
        if count < FULL_COLLECT_MAX_BYTES:
            lua.eval("collectgarbage('collect')")
            count = lua.eval("collectgarbage('count')") * 1024
        return int(count)
    except Exception:  # a state in an odd moment (a script being killed) must not break INFO
        return 0


def memory_fields(server: Server) -> list[tuple[str, Any]]:
    engine = server._scripting
    if engine is None:
        vm = scripts = functions = libraries = libraries_bytes = 0
    else:
        vm = _lua_bytes(engine.runtime.lua)
        scripts = len(engine.scripts)
        functions = len(engine.functions.functions)
        libraries = len(engine.functions.libraries)
        libraries_bytes = sum(len(lib.code) for lib in engine.functions.libraries.values())
    scripts_bytes = (
        sum(len(body) + _SCRIPT_ENTRY_BYTES for _, body in engine.scripts.values())
        if engine is not None
        else 0
    )
    functions_bytes = libraries_bytes + functions * _FUNCTION_ENTRY_BYTES
    return [
        ("used_memory_lua", vm),
        ("used_memory_vm_eval", vm),
        ("used_memory_lua_human", _human(vm)),
        ("used_memory_scripts_eval", scripts_bytes),
        ("number_of_cached_scripts", scripts),
        ("number_of_functions", functions),
        ("number_of_libraries", libraries),
        ("used_memory_vm_functions", 0),
        ("used_memory_vm_total", vm),
        ("used_memory_vm_total_human", _human(vm)),
        ("used_memory_functions", functions_bytes),
        ("used_memory_scripts", scripts_bytes + functions_bytes),
        ("used_memory_scripts_human", _human(scripts_bytes + functions_bytes)),
    ]
