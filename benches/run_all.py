"""Run every benchmark in sequence, each printing its ratios against its anchors.

    .venv/bin/python benches/run_all.py [--quick] [--only NAME ...]

Each benchmark is its own script (run one directly for its options); this runner only
sequences them with sizes that fit a 2-core machine in a few minutes (``--quick``: smaller
still). Load on the machine skews latency numbers: each benchmark prints its own context.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (full arguments, quick arguments)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "stats": ([], ["--repeat", "3", "--skip-scipy-loop"]),
    "attest": (["--size", "2"], ["--size", "0.25", "--repeat", "2"]),
    "receipts": ([], ["--receipts", "20000"]),
    "register": ([], ["--count", "200"]),
    "gateway": ([], ["--quick"]),
    "rollback": ([], ["--rounds", "5"]),
    "judge": (["--rows", "2000"], ["--rows", "300", "--anchor-rows", "50"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args()
    failed = []
    for name, (full, quick) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / f"bench_{name}.py"), *(quick if args.quick else full)]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
