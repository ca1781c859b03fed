"""Test hosts in network namespaces joined by veth (two hosts) or a bridge (three or more), or routed through
a router namespace (two hosts on subnets of their own).

Each host gets `lo` up, one interface with a 10.x address on a subnet unique to this run, and a
multicast route so mDNS works. Everything is torn down on exit, even when the test fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

_counter = itertools.count()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One namespace: its name, its interface and its IPv4 address."""

    netns: str
    iface: str
    ip: str
    prefix_len: int = 24
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(self.argv(argv), **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        env = dict(os.environ)
        env.update(self.env)
        env.update(kw.pop("env", {}))
        return subprocess.Popen(self.argv(argv), env=env, **kw)


@dataclass
class Lan:
    hosts: list[Host]
    bridge_ns: str | None = None

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]


def _unique_tag() -> str:
    return f"{os.getpid() % 10000}{next(_counter)}"


@contextlib.contextmanager
def lan(count: int = 2, prefix: str = "zc") -> Iterator[Lan]:
    """Make `count` hosts on one LAN; yield them; always tear down."""
    if count < 2:
        raise ValueError("a LAN needs two hosts or more")
    tag = _unique_tag()
    # A /24 unique to this process and LAN: 10.<pid-derived>.<counter>.0/24
    second = 100 + os.getpid() % 150
    third = next(_counter) % 250
    names = [f"{prefix}{tag}h{i}" for i in range(count)]
    created: list[str] = []
    bridge_ns: str | None = None
    try:
        hosts: list[Host] = []
        if count == 2:
            for name in names:
                _ip("netns", "add", name)
                created.append(name)
            _ip("link", "add", f"v{tag}a", "type", "veth", "peer", "name", f"v{tag}b")
            for i, (name, end) in enumerate(zip(names, ("a", "b"), strict=True)):
                _ip("link", "set", f"v{tag}{end}", "netns", name)
                _ip("-n", name, "link", "set", f"v{tag}{end}", "name", "eth0")
                hosts.append(Host(name, "eth0", f"10.{second}.{third}.{i + 1}"))
        else:
            bridge_ns = f"{prefix}{tag}br"
            _ip("netns", "add", bridge_ns)
            created.append(bridge_ns)
            _ip("-n", bridge_ns, "link", "add", "br0", "type", "bridge")
            _ip("-n", bridge_ns, "link", "set", "br0", "up")
            _ip("-n", bridge_ns, "link", "set", "lo", "up")
            for i, name in enumerate(names):
                _ip("netns", "add", name)
                created.append(name)
                port = f"p{i}"
                _ip("-n", bridge_ns, "link", "add", port, "type", "veth",
                    "peer", "name", "eth0", "netns", name)
                _ip("-n", bridge_ns, "link", "set", port, "master", "br0")
                _ip("-n", bridge_ns, "link", "set", port, "up")
                hosts.append(Host(name, "eth0", f"10.{second}.{third}.{i + 1}"))
        for host in hosts:
            _ip("-n", host.netns, "link", "set", "lo", "up")
            _ip("-n", host.netns, "addr", "add", f"{host.ip}/{host.prefix_len}", "dev", host.iface)
            _ip("-n", host.netns, "link", "set", host.iface, "up")
            # Multicast (mDNS) leaves by the LAN interface, not lo.
            _ip("-n", host.netns, "route", "add", "224.0.0.0/4", "dev", host.iface)
        yield Lan(hosts, bridge_ns)
    finally:
        _delete(created)


def _delete(namespaces: list[str]) -> None:
    for name in reversed(namespaces):
        # Kill whatever still runs inside, then delete the namespace (its veth ends go with it).
        listing = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in listing.stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class Routed:
    """Two hosts on subnets of their own and the router namespace between them (IPv4 forwarding on): what
    crosses from one host to the other passes the router's forward hook, where nftables can drop it."""

    hosts: list[Host]
    router_ns: str

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def nft(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.router_ns, "nft", *args], check=True,
                              capture_output=True, text=True, timeout=30)


@contextlib.contextmanager
def routed(prefix: str = "zr") -> Iterator[Routed]:
    """Host 0 on 10.<a>.<b>.0/24, host 1 on 10.<a>.<b+1>.0/24, the router at .1 of both; always torn down."""
    tag = _unique_tag()
    second = 100 + os.getpid() % 150
    third = next(_counter) % 125 * 2
    router = f"{prefix}{tag}r"
    names = [f"{prefix}{tag}h{i}" for i in range(2)]
    created: list[str] = []
    try:
        for name in (router, *names):
            _ip("netns", "add", name)
            created.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True,
                       capture_output=True)
        hosts: list[Host] = []
        for i, name in enumerate(names):
            subnet = f"10.{second}.{third + i}"
            _ip("-n", router, "link", "add", f"r{i}", "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("-n", router, "addr", "add", f"{subnet}.1/24", "dev", f"r{i}")
            _ip("-n", router, "link", "set", f"r{i}", "up")
            host = Host(name, "eth0", f"{subnet}.2")
            _ip("-n", name, "addr", "add", f"{host.ip}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "route", "add", "default", "via", f"{subnet}.1")
            hosts.append(host)
        yield Routed(hosts, router)
    finally:
        _delete(created)
