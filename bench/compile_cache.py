"""The product's command timed end to end, cold and warm XLA compilation cache (issue 20).

Each run is ``python -m tuner launch ARGS`` in a fresh process with a fresh SQLite storage,
timed from the start of the process until it exits (the report written, unless ARGS say
``--no-report``); what differs between runs is only the ``--compile-cache`` folder:

- ``cold``: a new, empty folder (everything compiled, and written to the cache);
- ``warm``: the folder the cold run of the same round filled;
- ``off``: ``--compile-cache off`` (nothing read or written; with ``--modes``).

    python bench/compile_cache.py --out /tmp/cc.json -- --variant 2layer --backend jax \\
        --dataset fashion-mnist --subset 3000 --epochs 1
    python bench/compile_cache.py --rounds 2 --modes cold,warm,off --out ... -- ...

The JSON (rewritten after every run, so a run cut short keeps what it measured) holds
each run's wall time, exit code, the cache's entries and bytes after it, and the report's
``comparison.json`` (each variant's best units, CV and test accuracy); ``--log`` collects
every run's output. ``--deadline S`` stops a run still going S seconds after the first
started (SIGTERM to the launch and its workers) and skips the rest, recording so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def cache_size(folder: Path) -> tuple[int, int]:
    """Entries (compiled programs) in a cache folder and their bytes."""
    if not folder.is_dir():
        return 0, 0
    entries = [path for path in folder.iterdir() if path.name.endswith("-cache")]
    return len(entries), sum(path.stat().st_size for path in entries)


def run_once(
    mode: str,
    args: list[str],
    work: Path,
    cache: Path,
    log: Path | None,
    index: int,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One ``tuner launch`` in a fresh process; its wall time and what it left behind.

    Past ``timeout`` seconds the launch and its workers (one process group) get SIGTERM,
    which tuner answers by giving back the running trials and exiting; SIGKILL 30 s later.
    """
    if mode == "cold":
        shutil.rmtree(cache, ignore_errors=True)
    storage = work / f"{mode}-{index}.db"
    report = work / f"report-{mode}-{index}"
    command = [
        sys.executable,
        "-m",
        "tuner",
        "launch",
        *args,
        "--storage",
        f"sqlite:///{storage}",
        "--compile-cache",
        "off" if mode == "off" else str(cache),
        "--out",
        str(report),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    timed_out = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
    wall = time.perf_counter() - started
    result = subprocess.CompletedProcess(command, process.returncode, output, "")
    entries, size = cache_size(cache) if mode != "off" else (0, 0)
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"\n===== {mode} run {index}: {' '.join(command)}\n")
            handle.write(result.stdout + result.stderr)
            handle.write(f"===== {mode} run {index}: rc {result.returncode}, {wall:.1f} s\n")
    comparison = report / "comparison.json"
    record: dict[str, Any] = {
        "mode": mode,
        "round": index,
        "returncode": result.returncode,
        "wall_seconds": round(wall, 2),
        "timed_out": timed_out,
        "cache_entries": entries,
        "cache_bytes": size,
        "comparison": json.loads(comparison.read_text()) if comparison.is_file() else None,
    }
    if result.returncode != 0:
        record["error_tail"] = (result.stdout + result.stderr)[-2000:]
    print(
        f"{mode} (round {index}): rc {result.returncode}, {wall:.1f} s, cache {entries} "
        f"entries, {size / 1e6:.1f} MB",
        flush=True,
    )
    return record


def _gpus() -> list[str]:
    """The GPUs as ``nvidia-smi -L`` names them (none without it)."""
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in listing.splitlines() if line.startswith("GPU")]


def main() -> None:
    """The command line; everything after ``--`` goes to ``tuner launch``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON of every run")
    parser.add_argument("--log", type=Path, help="every run's output, appended")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", default="cold,warm", help="of cold, warm, off; in order")
    parser.add_argument("--work", type=Path, help="storages, reports, cache (default: temp)")
    parser.add_argument(
        "--deadline", type=float, help="seconds for all runs; a run still going then is stopped"
    )
    parser.add_argument("launch", nargs=argparse.REMAINDER, help="-- tuner launch arguments")
    args = parser.parse_args()
    launch = args.launch[1:] if args.launch[:1] == ["--"] else args.launch
    modes = [mode.strip() for mode in args.modes.split(",")]
    if not set(modes) <= {"cold", "warm", "off"}:
        parser.error(f"--modes: cold, warm or off, got {args.modes}")
    work = args.work or Path(tempfile.mkdtemp(prefix="tuner-cc-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "xla"
    results: dict[str, Any] = {
        "command": ["tuner", "launch", *launch],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "gpus": _gpus()},
        "runs": [],
    }
    end = time.monotonic() + args.deadline if args.deadline else None
    for index in range(1, args.rounds + 1):
        for mode in modes:
            left = end - time.monotonic() if end is not None else None
            if left is not None and left < 10:
                print(f"{mode} (round {index}): skipped, the deadline has passed", flush=True)
                continue
            results["runs"].append(run_once(mode, launch, work, cache, args.log, index, left))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
