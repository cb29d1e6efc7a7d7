"""Processes: the `redactor` command and everything that starts, watches or talks to node processes.

Layout:
    main.py      the `redactor` command line (server, cli, up, down, status, logs)
    config.py    redis.conf files and command-line directives -> actors.config.Config
    config_rewrite.py  CONFIG REWRITE: the config file rewritten in place as Redis does, atomically
    logs.py      structlog setup (the only place logging is configured)
    node.py      one node process: builds the Server, starts the actors, runs the master loop
    supervised.py  `supervised systemd|upstart|auto`: telling the service manager the node is ready
    pidfile.py   the `pidfile` directive: the pid written at start, removed at a clean shutdown
    sentinel.py  one sentinel process: sentinel.conf checks, the monitor and its RESP listener (actors/sentinel/)
    shell.py     `redactor cli`, the interactive client shell over ZeroMQ
    resp_shell_client.py  the shell's RESP client, for servers with no bus (sentinels, redis-server)
    shell_cluster.py  `redactor cli -c`: parsing MOVED / ASK and the redirection line redis-cli prints
    topology/    `redactor up/down/status/logs`: whole topologies of node processes (spec, supervise,
                 status, cli; see its layout block)

Imports run one way: launcher -> actors -> protocol.
"""
