"""Headless bots for testing and load (``python -m clients.bots``)."""
