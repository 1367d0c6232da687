"""The long fuzz run, by hand (docs/RELIABILITY.md): every hypothesis target in tests/fuzz with the
`long` profile (20,000 examples each, random, failures kept in .hypothesis/ and replayed first).

    python bench/fuzz_long.py [--examples N] [-k EXPR] [--external]

--external keeps REDIS_URL / DATABASE_URL (the HTTP targets then run on them; never point these
at a database someone else uses: each test empties it); otherwise the embedded stores are used.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=20000, help="examples per target (default 20000)")
    p.add_argument("-k", default=None, help="pytest -k expression to pick targets")
    p.add_argument("--external", action="store_true", help="keep REDIS_URL / DATABASE_URL")
    args = p.parse_args(argv)
    env = dict(os.environ, HYPOTHESIS_PROFILE="long", FUZZ_LONG_EXAMPLES=str(args.examples))
    if not args.external:
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz", "--durations=0",
           "-o", "addopts=", "--hypothesis-show-statistics"]
    if args.k:
        cmd += ["-k", args.k]
    started = time.monotonic()
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"== {args.examples} examples per target, {time.monotonic() - started:.0f} s, exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
