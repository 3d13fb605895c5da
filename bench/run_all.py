"""Run every benchmark of the project and print one table of their result lines.

    ./dev bench            # or: .venv/bin/python bench/run_all.py [--only NAME ...]

Each ``bench/bench_*.py`` prints its figures beside a baseline measured in the
same run, as a ratio. They run one after another (these machines have 2 cores:
never two benchmarks at once); a benchmark that fails is reported, not hidden.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", nargs="*", help="run only these (e.g. blazeface vad)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per benchmark")
    args = p.parse_args()
    scripts = sorted(BENCH.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    rows: list[tuple[str, str]] = []
    failed = 0
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        print(f"--- {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(script)], capture_output=True, text=True, timeout=args.timeout
            )
        except subprocess.TimeoutExpired:
            rows.append((name, f"TIMED OUT after {args.timeout} s"))
            failed += 1
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            lines.append(f"FAILED (exit {proc.returncode}): {tail}")
            failed += 1
        for line in lines or ["(no output)"]:
            rows.append((name, line))
        print(f"    {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    width = max((len(n) for n, _ in rows), default=10)
    print(f"{'benchmark'.ljust(width)}  result (baseline measured in the same run)")
    print(f"{'-' * width}  {'-' * 60}")
    for name, line in rows:
        print(f"{name.ljust(width)}  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
