"""asyncio / uvloop transport adapter for the sans-I/O WebSocket core."""
