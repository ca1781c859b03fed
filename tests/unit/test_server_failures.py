"""What registration_failed says when the server cannot be reached: real failures on loopback, each named
(asyncio gives no text for some: a server closing during the TLS handshake raised a bare ConnectionResetError,
which read 'cannot reach the server: ', and a refused connect only its own 'Connect call failed (...)')."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from zcall.server import describe_tls_failure, is_lasting
from zcall.sip.transport import StreamTransport, client_tls_context

LOOP = "127.0.0.1"


async def _failure(addr: tuple[str, int]) -> BaseException:
    transport = StreamTransport(lambda *_: None, client_ssl=client_tls_context())
    with pytest.raises((OSError, ssl.SSLError)) as caught:
        await transport.connect(addr, server_hostname="sip.example.test", timeout=5.0)
    await transport.close()
    return caught.value


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOP, 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_says_nothing_listens() -> None:
    exc = await _failure((LOOP, _closed_port()))
    reason = describe_tls_failure(exc)
    assert reason == "cannot reach the server: connection refused (nothing listens on that port)", reason
    assert not is_lasting(exc)


async def test_a_server_closing_during_the_handshake_is_named() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()  # accepts TCP, then closes: as a server that dies or drops us before TLS

    server = await asyncio.start_server(close_at_once, LOOP, 0)
    try:
        exc = await _failure((LOOP, server.sockets[0].getsockname()[1]))
    finally:
        server.close()
    reason = describe_tls_failure(exc)
    assert reason.startswith("cannot reach the server: ") and reason.split(": ", 1)[1].strip(), reason
    assert "closed the connection" in reason or "reset" in reason, reason


@pytest.mark.parametrize(
    "exc", [ConnectionResetError(), OSError(), ConnectionError(), ssl.SSLError(), Exception()]
)
def test_no_failure_reads_empty(exc: BaseException) -> None:
    reason = describe_tls_failure(exc)
    assert reason.split(": ", 1)[1].strip(), reason
