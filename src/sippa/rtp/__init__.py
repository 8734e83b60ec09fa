"""L0: RTP/RTCP wire formats, SRTP contexts, codecs, DTMF and jitter buffer."""
