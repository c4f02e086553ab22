"""The distribution ships the three top-level packages."""

import importlib


def test_packages_import() -> None:
    for name in ("protocol", "gameserver", "clients", "examples"):
        mod = importlib.import_module(name)
        assert mod.__doc__, f"{name} has no docstring"
