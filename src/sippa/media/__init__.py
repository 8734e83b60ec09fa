"""L2: the media engine: RTP/SRTP streams, audio sources and sinks. Knows RTP, never SIP."""
