"""L0: SDP (RFC 8866), offer/answer (RFC 3264) and SDES crypto attributes (RFC 4568)."""
