"""sippa: a secure SIP phone.

Layers (each imports only from its own layer or below):

- L0 ``sippa.sip``, ``sippa.sdp``, ``sippa.rtp``: sans-IO protocol cores
  (no sockets, no clock, no randomness of their own)
- L1 ``sippa.net``: the asyncio runtime (transports, TLS policy, DNS) that pumps the SIP core
- L2 ``sippa.media``: the media engine (RTP/SRTP streams, audio sources and sinks)
- L3 ``sippa.app``: the phone (lines, calls, settings, provisioning)
- L4 ``sippa.interfaces``: CLI, web, REST API; they talk only to ``sippa.app``
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
