"""Client SDKs: the Python :class:`GameClient`, the bot swarm, and the browser client in ``web/``."""
