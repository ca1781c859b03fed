"""LAN discovery: advertise this unit over mDNS and report other zcall units as PeerUp / PeerDown."""

from zcall.discovery.lan import Discovery, DiscoveryError
from zcall.discovery.service import SIP_SERVICE, ZCALL_SERVICE, PeerDown, PeerUp, TxtError

__all__ = ["SIP_SERVICE", "ZCALL_SERVICE", "Discovery", "DiscoveryError", "PeerDown", "PeerUp", "TxtError"]
