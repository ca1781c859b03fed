"""ZRTP (RFC 6189): wire messages, cryptography, the sans-I/O session, SAS rendering and the secrets cache."""
