"""`python -m zcall.discovery`: run discovery alone and print what happens as JSON lines (tests, debugging).

Each line has "event" and "t" (unix time): registering, registered, renamed, up, down, closed. Stops on
SIGTERM/SIGINT, or after --for seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

from zcall.discovery.lan import Discovery
from zcall.discovery.service import PeerDown, PeerUp


def _print(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.time(), **fields}) + "\n")
    sys.stdout.flush()


def _report(event: PeerUp | PeerDown) -> None:
    if isinstance(event, PeerUp):
        _print("up", name=event.name, zid=event.zid.hex(), address=event.address, port=event.port,
               sip_port=event.sip_port)
    else:
        _print("down", name=event.name, zid=event.zid.hex())


async def _run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    discovery = Discovery(
        args.name, bytes.fromhex(args.zid), args.sip_port, args.bind, on_event=_report,
        on_rename=lambda old, new: _print("renamed", old=old, new=new), probe=not args.no_probe,
        advertise=not args.browse_only,
    )
    if args.start_at is not None:  # lets a test start several units probing at the same instant
        await asyncio.sleep(max(0.0, args.start_at - time.time()))
    _print("registering", name=args.name)
    await discovery.start()
    _print("registered" if discovery.advertise else "browsing", name=discovery.name)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.run_for)
    except TimeoutError:
        pass
    await discovery.close()
    _print("closed", drops=dict(discovery.drops))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zcall.discovery")
    parser.add_argument("--name", required=True)
    parser.add_argument("--zid", required=True, help="24 hex characters")
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--bind", default=None, help="IPv4 address whose interface mDNS uses")
    parser.add_argument("--start-at", type=float, default=None, help="unix time to start registering")
    parser.add_argument("--browse-only", action="store_true", help="list peers without advertising")
    parser.add_argument("--no-probe", action="store_true", help="claim the name without probing (tests)")
    parser.add_argument("--for", dest="run_for", type=float, default=None, help="stop after SECONDS")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
