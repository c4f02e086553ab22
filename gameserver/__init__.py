"""gameserver: authoritative multiplayer game-state synchronization server."""
