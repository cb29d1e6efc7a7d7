"""Supervision: every actor's base class and the supervisor that restarts actors that die.

Layout:
    supervised.py SupervisedActor, Crash: every actor's base (a low floor: imports no other actor)
    supervisor.py Supervisor, ChildSpec, restart strategies and intensity
"""
