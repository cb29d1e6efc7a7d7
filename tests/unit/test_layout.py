"""The layout blocks of protocol/ and launcher/topology/ name every module the package holds."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest


@pytest.mark.parametrize("package", ["protocol", "launcher.topology"])
def test_every_module_is_in_its_package_layout_block(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None and module.__doc__ is not None
    layout = module.__doc__.split("Layout:", 1)[1]
    modules = sorted(p.name for p in Path(module.__file__).parent.glob("*.py") if p.name != "__init__.py")
    missing = [name for name in modules if f"    {name} " not in layout]
    assert not missing, f"{package}'s layout block does not list {missing}"
