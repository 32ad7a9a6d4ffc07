"""Server CPU per run of this checkout against an older revision, measured alternately.

Checks `--base` out into a temporary `git worktree`, then for `--rounds` rounds runs
`http_load.py --pin` on it (its own code on a database its own migrations made, see
`http_load.py --code`) and on this checkout, one after the other, so that drift of the machine
hits both alike. Prints every pass and the medians, and writes RESULTS-revision_ab.md.

    .venv/bin/python benchmarks/revision_ab.py --base f588e2a [--rounds 3] [--workloads w1,w2]

Needs the ADK bench's load generator (BENCH_ADK_DIR, as http_load.py) and 2 CPUs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HTTP_LOAD = ROOT / "benchmarks" / "http_load.py"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS-revision_ab.md"


def main(argv: list[str] | None = None) -> int:
    """Run the passes, print and write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default="w1,w2")
    parser.add_argument("--concurrency", default="8")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--no-write", action="store_true", help="do not write the RESULTS md")
    args = parser.parse_args(argv)

    head = _git("rev-parse", "--short", "HEAD")
    base = _git("rev-parse", "--short", args.base)
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    passes: dict[str, list[dict[str, Any]]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory(prefix="revision-ab-") as tmp:
        checkout = Path(tmp) / "base"
        _git("worktree", "add", "--detach", str(checkout), args.base)
        try:
            for round_no in range(1, args.rounds + 1):
                for name, code in (("base", checkout), ("head", None)):
                    result = _measure(args, code, Path(tmp) / f"{name}-{round_no}")
                    passes[name].append(result)
                    print(f"round {round_no} {name}: {_summary(result, args)}", flush=True)
        finally:
            _git("worktree", "remove", "--force", str(checkout))
    table = _render(passes, args, base, head + (" (with uncommitted changes)" if dirty else ""))
    print(table)
    if not args.no_write:
        RESULTS_MD.write_text(table)
    return 0


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _measure(args: argparse.Namespace, code: Path | None, results_dir: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        str(HTTP_LOAD),
        "--pin",
        "--no-write",
        "--workloads",
        args.workloads,
        "--concurrency",
        args.concurrency,
        "--duration",
        str(args.duration),
        "--results-dir",
        str(results_dir),
    ]
    if code is not None:
        command += ["--code", str(code)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=os.environ.copy())
    [out] = results_dir.glob("ours-*.json")
    return dict(json.loads(out.read_text()))


def _levels(result: dict[str, Any], workload: str) -> list[dict[str, Any]]:
    return list(result.get(workload, []))


def _summary(result: dict[str, Any], args: argparse.Namespace) -> str:
    parts = []
    for workload in args.workloads.split(","):
        for level in _levels(result, workload):
            parts.append(
                f"{workload} c={level['concurrency']} {level['server_cpu_ms_per_run']:.3f} ms "
                f"(PG {level['pg_cpu_ms_per_run']:.3f}, errors {level['errors']})"
            )
    return "; ".join(parts)


def _render(
    passes: dict[str, list[dict[str, Any]]], args: argparse.Namespace, base: str, head: str
) -> str:
    lines = [
        "# Server CPU per run: this revision against an older one",
        "",
        f"Measured {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} on "
        f"{os.cpu_count()} CPUs: base `{base}`, head `{head}`, {args.rounds} rounds of "
        f"{args.duration:.0f} s per workload, base and head alternating. Each pass is "
        "`benchmarks/http_load.py --pin` (the server alone on CPU 0; Postgres and the load "
        "generator on the other), the base served from a `git worktree` on a database its own "
        "migrations made. `benchmarks/revision_ab.py` reproduces it.",
        "",
        "| wl | conc | base CPU ms/run (median) | head CPU ms/run (median) | head / base | "
        "base PG ms/run | head PG ms/run | every pass (base; head) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for workload in args.workloads.split(","):
        levels = _levels(passes["head"][0], workload)
        for index, level in enumerate(levels):
            cpu = {
                name: [_levels(r, workload)[index]["server_cpu_ms_per_run"] for r in results]
                for name, results in passes.items()
            }
            pg = {
                name: [_levels(r, workload)[index]["pg_cpu_ms_per_run"] for r in results]
                for name, results in passes.items()
            }
            base_cpu, head_cpu = statistics.median(cpu["base"]), statistics.median(cpu["head"])
            every = (
                ", ".join(f"{v:.3f}" for v in cpu["base"])
                + "; "
                + ", ".join(f"{v:.3f}" for v in cpu["head"])
            )
            lines.append(
                f"| {workload.upper()} | {level['concurrency']} | {base_cpu:.3f} | "
                f"{head_cpu:.3f} | {head_cpu / base_cpu - 1:+.1%} | "
                f"{statistics.median(pg['base']):.3f} | {statistics.median(pg['head']):.3f} | "
                f"{every} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
