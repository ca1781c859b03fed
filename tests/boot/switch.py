"""The emulated units' LAN: a switch that belongs to no unit, so any unit can lose power and come back on it.

A network namespace of the test's own holds a Linux bridge (the switch), one persistent tap port per unit
and dnsmasq as the LAN's DHCP server. Each unit's QEMU runs inside the namespace and opens its tap by name;
the tap outlives a killed QEMU, and the next QEMU plugs into the same port. (Before, alpha's QEMU held the
LAN, a hub with a socket to beta, and beta was off the LAN for good once alpha's power was cut.)
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.netns import _delete, _unique_tag

SUBNET = "10.77.0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class Switch:
    netns: str
    ports: dict[str, str]  # unit name -> its tap

    def netdev(self, unit: str) -> list[str]:
        """QEMU's -netdev for `unit` (id `lan`): its port on the switch."""
        return ["-netdev", f"tap,id=lan,ifname={self.ports[unit]},script=no,downscript=no"]

    def inside(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]


@contextlib.contextmanager
def switch(units: Sequence[str], workdir: Path) -> Iterator[Switch]:
    """A switch with a port for each of `units` and a DHCP server; always torn down (with what runs in it)."""
    tag = _unique_tag()
    netns = f"zcboot{tag}"
    ports = {unit: f"tap{i}" for i, unit in enumerate(units)}
    dhcp: subprocess.Popen[bytes] | None = None
    try:
        _ip("netns", "add", netns)
        _ip("-n", netns, "link", "set", "lo", "up")
        # No multicast snooping: mDNS must reach every port whatever IGMP the guests send (or do not).
        _ip("-n", netns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", netns, "addr", "add", f"{SUBNET}.1/24", "dev", "br0")
        _ip("-n", netns, "link", "set", "br0", "up")
        for tap in ports.values():
            _ip("-n", netns, "tuntap", "add", "dev", tap, "mode", "tap")
            _ip("-n", netns, "link", "set", tap, "master", "br0")
            _ip("-n", netns, "link", "set", tap, "up")
        log = (workdir / "dnsmasq.log").open("ab")
        dhcp = subprocess.Popen(
            ["ip", "netns", "exec", netns, "dnsmasq", "--keep-in-foreground", "--log-dhcp",
             "--log-facility=-", "--port=0", "--interface=br0", "--bind-interfaces", "--except-interface=lo",
             f"--dhcp-range={SUBNET}.10,{SUBNET}.99,1h", f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
             "--conf-file=/dev/null", "--pid-file="],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        yield Switch(netns, ports)
    finally:
        if dhcp is not None:
            dhcp.kill()
            dhcp.wait(timeout=10)
        _delete([netns])
