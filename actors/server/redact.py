"""The arguments SLOWLOG and MONITOR show as ``(redacted)``: passwords and ACL rules, as Redis 7.0's
``redactClientCommandArgument`` calls in AUTH, HELLO, ACL SETUSER, CONFIG SET and MIGRATE.

Redis redacts in the command itself, so every later reader of the arguments sees the redacted form; here
the readers (the slowlog entry, the monitor line) ask for it, and the commands stay as they are. Only
commands that run get here: a command refused before it runs (wrong arity, unknown) is never logged."""

from __future__ import annotations

REDACTED = b"(redacted)"

# config.c's SENSITIVE_CONFIG directives: CONFIG SET shows their values redacted.
SENSITIVE_CONFIGS = frozenset((b"masterauth", b"masteruser", b"requirepass"))


def redacted(argv: list[bytes], renamed: dict[bytes, bytes]) -> list[bytes]:
    """``argv`` as SLOWLOG / MONITOR show it; ``argv`` itself (not a copy) when nothing is sensitive.

    ``renamed`` (Server.renamed): the command names rename-command gave, to each command's own name; Redis
    redacts in the command itself, so a renamed AUTH is redacted as AUTH."""
    name = argv[0].lower()
    name = renamed.get(name, name)
    if name == b"auth":
        return [argv[0], *[REDACTED] * (len(argv) - 1)]
    if name == b"hello":
        # HELLO [protover [AUTH username password] [SETNAME name]]: the two words after AUTH.
        args = list(argv)
        for i in range(2, len(args) - 2):
            if args[i].lower() == b"auth":
                args[i + 1] = args[i + 2] = REDACTED
        return args
    if name == b"acl" and len(argv) > 2 and argv[1].lower() == b"setuser":
        # The user name too: it may be a password typed in the wrong place (acl.c redacts from argv[2]).
        return [argv[0], argv[1], *[REDACTED] * (len(argv) - 2)]
    if name == b"config" and len(argv) > 3 and argv[1].lower() == b"set":
        args = list(argv)
        for i in range(2, len(args) - 1, 2):
            if args[i].lower() in SENSITIVE_CONFIGS:
                args[i + 1] = REDACTED
        return args
    if name == b"migrate":
        # MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH password | AUTH2 user password] [KEYS ...]:
        # options are read up to KEYS, as migrateCommand does, so a key named "auth" stays visible.
        args = list(argv)
        i = 6
        while i < len(args) - 1:
            option = args[i].lower()
            if option == b"keys":
                break
            if option in (b"auth", b"auth2"):
                count = 1 if option == b"auth" else 2
                args[i + 1 : i + 1 + count] = [REDACTED] * len(args[i + 1 : i + 1 + count])
                i += count
            i += 1
        return args
    return argv
