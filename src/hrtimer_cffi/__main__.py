"""``python -m hrtimer_cffi COMMAND``: the package's command-line tools.

Commands: ``latency`` (the cyclictest-style wake-up latency tool, also
installed as ``hrtimer-latency``; see ``hrtimer_cffi.latency``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import latency


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m hrtimer_cffi",
        description="Command-line tools of hrtimer_cffi.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lat = sub.add_parser(
        "latency",
        help="measure periodic wake-up latency (cyclictest-style) against the peers",
        description=latency.build_parser().description,
    )
    latency.add_arguments(lat)
    args = parser.parse_args(argv)
    args = latency.finish_args(lat, args)
    try:
        return latency.run(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{latency.PROG}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
