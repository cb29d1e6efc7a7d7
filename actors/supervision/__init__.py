"""Supervision: every actor's base class and the supervisor that restarts actors that die.

Layout:
    supervisor.py SupervisedActor, Supervisor, ChildSpec, restart strategies and intensity
"""
