"""L0: the sans-IO SIP core (RFC 3261 and friends).

No sockets, no clock, no randomness of its own: time and random values are passed in.
"""
