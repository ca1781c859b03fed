"""The namespace fixture: hosts reach each other, multicast crosses, teardown leaves nothing."""

from __future__ import annotations

import subprocess

from tests.support import netns
from tests.support.prereq import require_root


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_two_hosts_ping_each_other(lan2: netns.Lan) -> None:
    a, b = lan2.hosts
    assert a.ip != b.ip
    result = a.run(["ping", "-c", "1", "-W", "2", b.ip])
    assert result.returncode == 0, result.stdout + result.stderr


def test_three_hosts_on_a_bridge(lan3: netns.Lan) -> None:
    for host in lan3.hosts[1:]:
        result = lan3[0].run(["ping", "-c", "1", "-W", "2", host.ip])
        assert result.returncode == 0, result.stdout + result.stderr


def test_multicast_crosses_the_link(lan2: netns.Lan) -> None:
    a, b = lan2.hosts
    receiver = (
        "import socket,struct;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('',5353));"
        f"s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,struct.pack('4s4s',socket.inet_aton('224.0.0.251'),socket.inet_aton('{b.ip}')));"
        "s.settimeout(5);print(s.recvfrom(100)[0].decode())"
    )
    sender = (
        "import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        f"s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton('{a.ip}'));"
        "[(s.sendto(b'hello-mdns',('224.0.0.251',5353)),time.sleep(0.2)) for _ in range(10)]"
    )
    listener = b.popen(["python3", "-c", receiver], stdout=subprocess.PIPE, text=True)
    a.run(["python3", "-c", sender])
    out, _ = listener.communicate(timeout=10)
    assert out.strip() == "hello-mdns"


def test_teardown_removes_namespaces_even_on_failure() -> None:
    require_root()
    before = _namespaces()
    names: list[str] = []
    try:
        with netns.lan(2) as lan:
            names = [h.netns for h in lan.hosts]
            assert set(names) <= _namespaces()
            raise RuntimeError("test failure inside the LAN")
    except RuntimeError:
        pass
    assert not set(names) & _namespaces()
    assert _namespaces() == before
