"""State changes published to live streams (SSE, WebSocket) within this process."""
