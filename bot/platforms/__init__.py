"""Chat platform adapters: translate native payloads to Inbound objects, call handlers, send cards."""
