"""Run one atheris target: `python -m tests.fuzz.atheris.run TARGET [libFuzzer flags] [corpus dirs]`.

The zcall package is instrumented for coverage; the corpus directory is seeded from targets.seeds() when
empty. A crash prints the input and exits non-zero: each one becomes a regression test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["zcall"]):
    import zcall.config
    import zcall.discovery.service
    import zcall.dtls
    import zcall.media.demux
    import zcall.media.rtp
    import zcall.sip.digest
    import zcall.sip.parser
    import zcall.sip.sdp
    import zcall.sip.ua
    import zcall.zrtp.messages
    import zcall.zrtp.packet
    import zcall.zrtp.session  # noqa: F401

from tests.fuzz.atheris.targets import TARGETS, seeds


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: run.py {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    name, argv = sys.argv[1], [sys.argv[0], *sys.argv[2:]]
    for arg in argv[1:]:
        if not arg.startswith("-"):
            corpus = Path(arg)
            corpus.mkdir(parents=True, exist_ok=True)
            if not any(corpus.iterdir()):
                for i, seed in enumerate(seeds(name)):
                    (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup(argv, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
