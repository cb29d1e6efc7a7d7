"""CLUSTER's subcommand list (actors/commands/cluster.py, which may not import the cluster actor) names exactly
the subcommands the cluster actor's admin table serves."""

from __future__ import annotations

import importlib
import pkgutil

import actors.cluster
from actors.cluster import admin
from actors.commands.cluster import CLUSTER_SUBCOMMANDS


def test_cluster_subcommands_are_the_admin_tables() -> None:
    for module in pkgutil.iter_modules(actors.cluster.__path__):
        importlib.import_module(f"actors.cluster.{module.name}")  # each registers its handlers
    assert sorted(CLUSTER_SUBCOMMANDS) == sorted(admin._HANDLERS)
