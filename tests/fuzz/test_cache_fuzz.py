"""Hypothesis: the SQLite cache behaves like a dictionary model; hostile files only give CacheError."""

from __future__ import annotations

import pathlib
import tempfile
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from zcall.zrtp.cache import NEVER_EXPIRES, RetainedSecrets, StoredBefore, ZrtpCache
from zcall.zrtp.cachefile import CacheError

ZIDS = [bytes([n]) * 12 for n in range(3)]


@dataclass
class Model:
    rs1: bytes | None = None
    rs1_exp: float | None = None
    rs2: bytes | None = None
    rs2_exp: float | None = None
    verified: bool = False

    def view(self, now: float) -> RetainedSecrets:
        rs1 = self.rs1 if self.rs1 is not None and (self.rs1_exp is None or now < self.rs1_exp) else None
        rs2 = self.rs2 if self.rs2 is not None and (self.rs2_exp is None or now < self.rs2_exp) else None
        return RetainedSecrets(
            rs1=rs1,
            rs2=rs2,
            verified=self.verified and (rs1 is not None or rs2 is not None),
            rs1_expires_at=self.rs1_exp if rs1 is not None else None,
        )


_zid = st.sampled_from(ZIDS)
_ops = st.one_of(
    st.tuples(
        st.just("store"), _zid, st.binary(min_size=1, max_size=64),
        st.sampled_from([0, 1, 5, 30, 3600, NEVER_EXPIRES]),
    ),
    st.tuples(st.just("verify"), _zid, st.booleans()),
    st.tuples(st.just("rollback"), _zid),
    st.tuples(st.just("forget"), _zid),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=40)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_ops, max_size=25))
def test_cache_matches_model(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "cache.sqlite"
        cache = ZrtpCache(path)
        model: dict[bytes, Model] = {}
        # The last store per ZID: what the cache returned, and the model before it with what it wrote.
        stores: dict[bytes, tuple[StoredBefore, Model, bytes | None]] = {}
        now = 1_000_000.0
        try:
            for op in ops:
                kind = op[0]
                if kind == "store":
                    zid, secret, expires = op[1], op[2], op[3]
                    assert isinstance(zid, bytes) and isinstance(secret, bytes) and isinstance(expires, int)
                    before = cache.store_new_rs1(zid, secret, expires, now)
                    m = model.setdefault(zid, Model())
                    stores[zid] = (before, replace(m), None if expires == 0 else secret)
                    if expires == 0:
                        model[zid] = Model()
                    else:
                        live = m.view(now)
                        exp = None if expires == NEVER_EXPIRES else now + expires
                        m.rs2, m.rs2_exp, m.rs1, m.rs1_exp = m.rs1, m.rs1_exp, secret, exp
                        # A new chain after everything expired is not the chain that was verified.
                        m.verified = m.verified and (live.rs1 is not None or live.rs2 is not None)
                elif kind == "rollback":
                    zid = op[1]
                    assert isinstance(zid, bytes)
                    if zid in stores:
                        before, old, written = stores.pop(zid)
                        cache.rollback(before)
                        if zid in model:
                            m = model[zid]
                            if m.rs1 == written:
                                model[zid] = replace(old)
                            model[zid].verified = False
                elif kind == "verify":
                    zid, flag = op[1], op[2]
                    assert isinstance(zid, bytes) and isinstance(flag, bool)
                    cache.set_verified(zid, flag)
                    model.setdefault(zid, Model()).verified = flag
                elif kind == "forget":
                    zid = op[1]
                    assert isinstance(zid, bytes)
                    cache.forget(zid)
                    model.pop(zid, None)
                elif kind == "reopen":
                    cache.close()
                    cache = ZrtpCache(path)
                else:
                    assert isinstance(op[1], int)
                    now += op[1]
                for zid in ZIDS:
                    expected = model[zid].view(now) if zid in model else None
                    assert cache.lookup(zid, now) == expected
        finally:
            cache.close()


_header = b"SQLite format 3\x00"


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.binary(min_size=1, max_size=2048), st.binary(max_size=2048).map(lambda b: _header + b)))
def test_hostile_file_gives_cache_error_and_is_kept(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "cache.sqlite"
        path.write_bytes(data)
        try:
            ZrtpCache(path).close()
        except CacheError:
            kept = list(path.parent.glob("cache.sqlite.corrupt-*"))
            assert [k.read_bytes() for k in kept] == [data]
