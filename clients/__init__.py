"""Client SDKs: the Python GameClient, the bot swarm, and the browser client in ``web/``."""
