"""Call history: the last calls, kept across restarts in one owner-only JSON-lines file in the data folder.

Fed from the phone's public events (`Phone.subscribe(history.hear)`): it follows each call from its first
`call` event to `ended`, learns the ZID from `secure` and LAN addresses from `peer`, and writes one line per
ended call. The file is bounded (MAX_ENTRIES kept; compacted when it reaches twice that) and every line read
back is checked: a line that is too long, not JSON or not a valid record is skipped and counted by reason.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

from zcall import events
from zcall.privatefile import write_private

MAX_ENTRIES = 200
MAX_LINE = 2048  # a record is a few hundred bytes; anything longer was not written by us
MAX_TEXT = 512  # longest peer name, URI or reason kept
MAX_FILE = 2 * MAX_ENTRIES * (MAX_LINE + 1)  # only this much of the file's end is ever read
ZID_HEX = re.compile(r"[0-9a-f]{24}")


class Reject(enum.Enum):
    """Why a line of the history file was skipped (a closed set: never the line's own text)."""

    TOO_LONG = "too_long"
    NOT_JSON = "not_json"
    NOT_A_RECORD = "not_a_record"
    BAD_FIELD = "bad_field"


@dataclass(frozen=True)
class CallRecord:
    at: float  # when the call ended (Unix time)
    direction: Literal["in", "out"]
    peer: str  # what the peer called itself (or what was dialled)
    zid: str  # the ZID ZRTP proved (or the one the call was placed to), hex; "" if none
    uri: str  # a SIP URI that reached the peer (the URI dialled, or its LAN address); "" if none known
    reason: str
    duration_s: float
    secure: bool  # keys were agreed (ZRTP or DTLS-SRTP)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)


FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "at": (int, float),
    "direction": (str,),
    "peer": (str,),
    "zid": (str,),
    "uri": (str,),
    "reason": (str,),
    "duration_s": (int, float),
    "secure": (bool,),
}


def parse_line(line: str) -> CallRecord | Reject:
    """One line of the file as a record, or why it is not one."""
    if len(line) > MAX_LINE:
        return Reject.TOO_LONG
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return Reject.NOT_JSON
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(CallRecord)}:
        return Reject.NOT_A_RECORD
    for name, types in FIELD_TYPES.items():
        value = data[name]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            return Reject.BAD_FIELD
    if (
        data["direction"] not in ("in", "out")
        or any(len(data[name]) > MAX_TEXT for name in ("peer", "uri", "reason"))
        or (data["zid"] and not ZID_HEX.fullmatch(data["zid"]))
        or not 0 <= data["at"] < 1e11
        or not 0 <= data["duration_s"] < 1e9
    ):
        return Reject.BAD_FIELD
    return CallRecord(**data)


def _is_uri(text: str) -> bool:
    return text.lower().startswith(("sip:", "sips:"))


@dataclass
class _Open:
    """A call not ended yet, as far as the events told."""

    direction: events.Direction
    peer: str
    uri: str = ""  # the call event's: a caller's From, or the URI dialled
    zid: str = ""
    secure: bool = False


class History:
    """The newest calls first. `hear` is the listener to subscribe; `entries` what to show."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.rejected: collections.Counter[Reject] = collections.Counter()
        self._open: dict[str, _Open] = {}
        self._lan: dict[str, tuple[str, str]] = {}  # LAN peer name -> (ZID, its SIP URI)
        self._lines_in_file = 0
        self.entries: collections.deque[CallRecord] = collections.deque(maxlen=MAX_ENTRIES)
        self.entries.extendleft(self._load())

    # --- reading ---

    def _load(self) -> list[CallRecord]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # none yet, or not ours to read (a symlink is refused): start empty
            return []
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - MAX_FILE))
            data = handle.read(MAX_FILE)
        lines = data.decode("utf-8", errors="replace").split("\n")
        if size > MAX_FILE:
            lines = lines[1:]  # the first line was cut by the seek
        records: list[CallRecord] = []
        for line in lines:
            if not line.strip():
                continue
            self._lines_in_file += 1
            parsed = parse_line(line)
            if isinstance(parsed, Reject):
                self.rejected[parsed] += 1
            else:
                records.append(parsed)
        return records[-MAX_ENTRIES:]

    def last_uri(self, zid: str) -> str:
        """The newest URI that reached this device ("" if none): how to call it when it is not on the LAN."""
        return next((r.uri for r in self.entries if r.zid == zid and r.uri), "")

    # --- following the phone ---

    def hear(self, event: events.Event) -> None:
        if isinstance(event, events.Peer):
            if event.action == "up" and event.address is not None:
                self._lan[event.name] = (event.zid, f"sip:zcall@{event.address}:{event.port}")
        elif isinstance(event, events.Call):
            if event.id not in self._open:
                self._open[event.id] = _Open(event.direction, event.peer, event.uri or "")
        elif isinstance(event, events.Secure):
            call = self._open.get(event.id)
            if call is not None:
                call.secure = True
                call.zid = event.peer_zid or call.zid
        elif isinstance(event, events.Ended):
            call = self._open.pop(event.id, None)
            if call is not None:
                self.add(self._record(call, event))

    def placed(self, call_id: str, zid: str) -> None:
        """The ZID a call was placed to (the TUI dials LAN peers by ZID), until ZRTP proves one."""
        call = self._open.get(call_id)
        if call is not None and not call.zid and ZID_HEX.fullmatch(zid):
            call.zid = zid

    def _record(self, call: _Open, ended: events.Ended) -> CallRecord:
        uri = call.peer if _is_uri(call.peer) else ""
        lan = self._lan.get(call.peer)
        if not uri and lan is not None and (not call.zid or lan[0] == call.zid):
            uri = lan[1]
        if not uri and call.zid:
            uri = next((u for z, u in self._lan.values() if z == call.zid), "")
        # A caller's own URI, off the LAN list (mDNS off): calling it back is bound to the ZID it proved.
        uri = uri or (call.uri if _is_uri(call.uri) else "") or (self.last_uri(call.zid) if call.zid else "")
        return CallRecord(
            at=self.clock(),
            direction=call.direction,
            peer=call.peer[:MAX_TEXT],
            zid=call.zid,
            uri=uri[:MAX_TEXT],
            reason=ended.reason[:MAX_TEXT],
            duration_s=max(0.0, ended.duration_s),
            secure=call.secure,
        )

    # --- writing ---

    def add(self, record: CallRecord) -> None:
        """Keep a record in memory and on disk; a disk that refuses is not the call's problem."""
        self.entries.appendleft(record)
        with contextlib.suppress(OSError):
            if self._lines_in_file + 1 >= 2 * MAX_ENTRIES:
                self._rewrite(reversed(self.entries))
            else:
                self._append(record)

    def _append(self, record: CallRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags, 0o600)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, 0o600)  # tighten a file a careless copy left readable
            handle.write((record.to_json() + "\n").encode())
        self._lines_in_file += 1

    def _rewrite(self, records: Iterable[CallRecord]) -> None:
        """Replace the file with just these records (oldest first), atomically."""
        lines = [r.to_json() + "\n" for r in records]
        write_private(self.path, "".join(lines).encode())
        self._lines_in_file = len(lines)
