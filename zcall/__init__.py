"""zcall: secure calling for a desk unit — SIP, ZRTP with SAS words, Opus over SRTP."""

__version__ = "0.1.0"
