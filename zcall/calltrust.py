"""What one call means for trust in its ZRTP peer: the part of the call policy that touches the trust cache.

Plain logic, no I/O: it turns what ZRTP learnt and what the people said about the words into actions for
the shell (store or roll back a secret, set or clear verified) and says whether the call may use the
microphone. The CallCore (zcall/callcore.py) owns one per call.
"""

from __future__ import annotations

from zcall import actions as act
from zcall.events import AlertKind
from zcall.keying import ZrtpFacts
from zcall.routing import looks_like_a_name

IDENTITY_TEXT = (
    "This is not the device you chose: {label} is {expected}, but the peer answered as {met}. The microphone "
    "stays muted. Read the words to each other; hang up if they differ."
)
UNBOUND_TEXT = (
    "The words do not cover this call's encryption: the DTLS session at the other end is not ours, so "
    "someone between the units (the server?) decrypts the audio. The microphone stays muted. Hang up."
)
Alarm = tuple[AlertKind, str]


class CallTrust:
    def __init__(self, label: str, expected_zid: bytes | None, account: str | None = None) -> None:
        self.label = label
        self.expected_zid = expected_zid  # the identity the call was chosen by (discovery, trust list)
        self.account = account  # the server account called or calling (user@host); None on the LAN
        self._account_waits = False  # learnt only once the words settle an alarm
        self.peer_zid: bytes | None = None
        self.verified = False
        self.alarm = False  # identity or cache mismatch: the microphone waits for the words to match
        self.unbound = False  # ZRTP is not bound to the DTLS session that keys the media: no words help
        self._pending: tuple[bytes, int] | None = None  # a new secret held back after a mismatch
        self._stored = False  # this call stored a new secret (rolled back if the words differ)

    def met(self, facts: ZrtpFacts) -> tuple[list[act.Action], list[Alarm]]:
        """ZRTP finished with this peer: the actions for the cache, and the alarms to raise."""
        zid = self.peer_zid = facts.peer_zid
        # A trust entry is named after a unit, never after the URI that was dialled (the user can rename it).
        name = self.label if looks_like_a_name(self.label) else ""
        actions: list[act.Action] = [act.RememberPeer(zid, name)]
        alarms: list[Alarm] = []
        if self.expected_zid is not None and zid != self.expected_zid:
            self.alarm = True
            expected = self.expected_zid.hex()
            text = IDENTITY_TEXT.format(label=self.label, expected=expected, met=zid.hex())
            alarms.append((AlertKind.IDENTITY_MISMATCH, text))
        if facts.channel_bound is False:
            # The ZRTP peer may well be genuine, but the media is keyed by someone else's DTLS session. Both
            # ends see this, so both leave the cache alone and it stays in step.
            self.alarm = self.unbound = True
            self.verified = False
            alarms.append((AlertKind.CHANNEL_BINDING_MISMATCH, UNBOUND_TEXT))
            return actions, alarms
        if facts.cache == "mismatch":
            # The new secret waits for the people's word; until then the device is not trusted.
            self.alarm = True
            actions.append(act.SetVerified(zid, False))
            if facts.new_rs1 is not None:
                self._pending = (facts.new_rs1, facts.rs1_expires_in)
        elif facts.new_rs1 is not None:
            actions.append(act.StoreSecret(zid, facts.new_rs1, facts.rs1_expires_in))
            self._stored = True
        # Verified needs both sides' V flags over a matching secret chain (RFC 6189 §7.1), and no alarm.
        both_said_so = facts.cached_verified and facts.peer_verified
        self.verified = facts.cache == "match" and both_said_so and not self.alarm
        if facts.channel_bound is True and self.account is not None:
            # Only a ZRTP bound to this call's DTLS keys says who is at the account. After an alarm (another
            # device answers there, or its secret differs) it is learnt only when the words match.
            if self.alarm:
                self._account_waits = True
            else:
                actions.append(act.RememberAccount(self.account, zid))
        return actions, alarms

    def words(self, match: bool) -> list[act.Action]:
        """The people compared the words: a match adopts the secret and verifies the device; a difference
        revokes trust and undoes the secret this call stored."""
        assert self.peer_zid is not None
        zid = self.peer_zid
        if self.unbound and match:
            return []  # equal words vouch for ZRTP, not for the DTLS keys the audio uses
        if not match:
            self._pending, self._account_waits = None, False
            self.verified = False
            return [act.SetVerified(zid, False), *([act.RollbackSecret(zid)] if self._stored else [])]
        actions: list[act.Action] = []
        if self._pending is not None:
            rs1, expires_in = self._pending
            actions.append(act.StoreSecret(zid, rs1, expires_in))
            self._pending, self._stored = None, True
        self.verified, self.alarm = True, False
        if self._account_waits and self.account is not None:
            actions.append(act.RememberAccount(self.account, zid))
            self._account_waits = False
        # SetSasVerified: our V flag in the next Confirm.
        return [*actions, act.SetVerified(zid, True), act.SetSasVerified(True)]

    def forget_pending(self) -> None:
        self._pending = None
