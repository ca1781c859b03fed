"""DTLS-SRTP key agreement (RFC 5763/5764) for calls beyond the LAN, in the house's sans-I/O style.

Typical use by a call (SDP side in zcall.sip.offeranswer, sockets in media/stream.py)::

    from zcall.dtls import DtlsSrtpSession, DtlsSecure, answer_setup, fingerprint_of, role_for

    ours = fingerprint_of(identity.certificate)           # "sha-256 AB:CD:..." for our a=fingerprint
    role = role_for(local_setup, remote_setup, is_offerer)  # "client" (a=setup active) or "server"
    dtls = DtlsSrtpSession(role, identity.certificate, identity.private_key, remote_fingerprint=theirs)
    dtls.start(now)
    # loop: send dtls.datagrams_to_send(now); feed DTLS datagrams (first byte 20..63, RFC 7983) to
    # dtls.receive(data, now); call dtls.handle_timer(now) when dtls.get_timer() says;
    # drain dtls.next_event().
    event = dtls.next_event()
    if isinstance(event, DtlsSecure):
        sender = SrtpSender(event.sender_keys()); receiver = SrtpReceiver(event.receiver_keys())

Contract:
- `DtlsSrtpSession(role, certificate, private_key, remote_fingerprint=None, profiles=DEFAULT_PROFILES,
  *, mtu=1200, handshake_timeout=30.0)`: cryptography certificate and key (Identity.certificate/.private_key);
  `remote_fingerprint` is one a=fingerprint value or all of them (AudioParams.fingerprints): the strongest
  hash offered is checked (RFC 8122 §5), unusable values (md5, malformed) are skipped if others remain;
  `profiles` are zcall.media.srtp.SrtpProfile values in preference order (a server picks by its own order).
- `start(now)`: a client sends its ClientHello. A server needs no start(): its first receive() starts it.
- `set_remote_fingerprint(fp_or_fps, now=None)`: the a=fingerprint when it arrives after the media (an
  offerer's answer racing the answerer's ClientHello). The early flight is answered as it arrives, not
  held for a retransmission; the keys are held until the fingerprint is known and matches.
- `receive(data, now)` never raises: oversize or malformed datagrams are counted in `.drops[reason]`.
- `get_timer()` / `handle_timer(now)`: retransmission (OpenSSL's own timer, reported on the caller's clock)
  and the handshake deadline (started by start() or the first datagram; covers waiting for the fingerprint).
  OpenSSL measures retransmission time on its own clock (pyOpenSSL has no DTLS_set_timer_cb): a fake clock
  that runs ahead gets a no-op and a later timer, so loss tests run on the real clock (~1 s per loss).
- `next_event()` -> DtlsSecure | FingerprintMismatch | DtlsFailed | DtlsClosed | None. After
  FingerprintMismatch or DtlsFailed the session is dead (state "failed") and has made no keys public.
  DtlsSecure.local_* protect what we send, .remote_* what the peer sends; `.sender_keys()` and
  `.receiver_keys()` give zcall.media.srtp.SrtpKeys; `.channel_binding` is a 32-byte exporter value (label
  EXPERIMENTAL-zcall-zrtp-auxsecret) equal on both ends only when no one terminates DTLS in between.
- `close(now)` queues close_notify. `.state`, `.drops`, `.retransmissions` are for stats and tests.
- Fingerprints: sha-256 by default; sha-1/224/384/512 accepted from the peer; compared in constant time.
"""

from zcall.dtls.events import DtlsClosed, DtlsEvent, DtlsFailed, DtlsSecure, FingerprintMismatch
from zcall.dtls.fingerprint import Fingerprint, FingerprintParseError, PeerPin, fingerprint_of
from zcall.dtls.profiles import DEFAULT_PROFILES
from zcall.dtls.records import RecordError
from zcall.dtls.session import DtlsSrtpSession
from zcall.dtls.setup import Role, SetupError, answer_setup, role_for

__all__ = [
    "DEFAULT_PROFILES",
    "DtlsClosed",
    "DtlsEvent",
    "DtlsFailed",
    "DtlsSecure",
    "DtlsSrtpSession",
    "Fingerprint",
    "FingerprintMismatch",
    "FingerprintParseError",
    "PeerPin",
    "RecordError",
    "Role",
    "SetupError",
    "answer_setup",
    "fingerprint_of",
    "role_for",
]
