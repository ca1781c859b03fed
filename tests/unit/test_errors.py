"""Every exception zcall defines has ZcallError for a root, so one `except` catches what the phone reports."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import zcall
from zcall.errors import ZcallError


def _exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(zcall.__path__, "zcall."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
    return found


def test_every_zcall_exception_is_a_zcall_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 30
    assert [c.__qualname__ for c in classes if not issubclass(c, ZcallError)] == []


def test_builtin_bases_callers_rely_on_are_kept() -> None:
    from zcall.sip.errors import SipParseError
    from zcall.trust import PeerNotFound

    assert issubclass(SipParseError, ValueError) and issubclass(PeerNotFound, LookupError)
