"""Example games built only on gameserver's public API."""
