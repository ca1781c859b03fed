"""SIP (RFC 3261) for zcall: sans-I/O messages, SDP, transactions, dialogs, digest; asyncio transports."""
