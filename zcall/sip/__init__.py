"""SIP (RFC 3261) for zcall: sans-I/O messages, SDP, transactions, dialogs, digest; asyncio transports.

The phone drives a UserAgent on its transport through zcall.sipleg (LAN over UDP, a server account over TLS);
it needs little more than what is re-exported here, and the SDP offer/answer helpers in zcall.sip.offeranswer.
"""

from zcall.sip.dialog import UaConfig
from zcall.sip.digest import DigestClient
from zcall.sip.errors import SipParseError
from zcall.sip.events import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallFailed,
    CallProgress,
    IncomingCall,
    OptionsResult,
    Registered,
    RegistrationFailed,
    ReInviteReceived,
    ReInviteResult,
    UaEvent,
)
from zcall.sip.model import Request, Response
from zcall.sip.parser import parse
from zcall.sip.transaction import Timers
from zcall.sip.ua import UserAgent

__all__ = [
    "CallAnswered",
    "CallConfirmed",
    "CallEnded",
    "CallFailed",
    "CallProgress",
    "DigestClient",
    "IncomingCall",
    "OptionsResult",
    "ReInviteReceived",
    "ReInviteResult",
    "Registered",
    "RegistrationFailed",
    "Request",
    "Response",
    "SipParseError",
    "Timers",
    "UaConfig",
    "UaEvent",
    "UserAgent",
    "parse",
]
