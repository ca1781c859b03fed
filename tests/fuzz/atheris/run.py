"""Run one atheris target: `python -m tests.fuzz.atheris.run TARGET [libFuzzer flags] [corpus dirs]`.

The zcall package is instrumented for coverage; the corpus directory is seeded from targets.seeds() when
empty. A crash prints the input and exits non-zero: each one becomes a regression test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["zcall"]):
    import zcall.config
    import zcall.discovery.service
    import zcall.dtls
    import zcall.media.demux
    import zcall.media.red
    import zcall.media.rtp
    import zcall.sip.digest
    import zcall.sip.offeranswer
    import zcall.sip.parser
    import zcall.sip.sdp
    import zcall.sip.ua
    import zcall.zrtp.messages
    import zcall.zrtp.packet
    import zcall.zrtp.session  # noqa: F401

from tests.fuzz.atheris.targets import TARGETS, seeds


def main() -> None:
    # libFuzzer re-runs this program for -merge and -fork without the target: it rides in the environment.
    if len(sys.argv) > 1 and sys.argv[1] in TARGETS:
        os.environ["ZCALL_FUZZ_TARGET"] = sys.argv[1]
        argv = [sys.argv[0], *sys.argv[2:]]
    else:
        argv = list(sys.argv)
    name = os.environ.get("ZCALL_FUZZ_TARGET", "")
    if name not in TARGETS:
        sys.exit(f"usage: run.py {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    argv[0] = _relauncher()
    for arg in argv[1:]:
        if not arg.startswith("-"):
            corpus = Path(arg)
            corpus.mkdir(parents=True, exist_ok=True)
            if not any(corpus.iterdir()):
                for i, seed in enumerate(seeds(name)):
                    (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup(argv, TARGETS[name])
    atheris.Fuzz()


def _relauncher() -> str:
    """An executable that starts this module again the same way, for libFuzzer's -merge/-fork children."""
    path = Path(tempfile.gettempdir()) / f"zcall-fuzz-{os.getuid()}.sh"
    root = Path(__file__).resolve().parents[3]
    text = f'#!/bin/sh\ncd "{root}" && exec "{sys.executable}" -m tests.fuzz.atheris.run "$@"\n'
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o700)
        tmp.replace(path)
    return str(path)


if __name__ == "__main__":
    main()
