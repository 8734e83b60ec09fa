"""L1: the asyncio runtime that pumps the SIP core: transports, TLS policy, DNS."""
