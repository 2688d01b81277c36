"""Grid packing on and off on one GPU: the 2layer grid one point at a time, then as one model.

Both at the protocol's size and measured whole (no extrapolation): 9 grid points x 3 folds
x 20 epochs on 40,000-image folds of 60,000 synthetic MNIST-shaped images. "One point at
a time" is what ``--trainer packed`` does (each point's 3 folds as one model, a new
compilation per point); "grid packing" is ``--trainer grid`` (all 9 points x 3 folds as
one model). Each XLA configuration runs in a fresh process (XLA reads its flags once):
the default, and GEMM autotuning off (``--xla_gpu_autotune_level=0``), which is part of
every compilation. A warm-up point first, so neither side pays the device's start-up.
Also printed: the grid batch's device memory at peak beside tuner's estimate of it
(``tuner.training._memory``, which caps ``--pack`` on a GPU).

    bash bench/gpu.sh --packing            # on the GPU machine; $OUT/packing.json
    python bench/gpu_packing.py --quick    # a small, slow run on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = {"default": "", "no-autotune": "--xla_gpu_autotune_level=0"}


def measure(quick: bool) -> dict[str, object]:
    """One process: the warm-up, the grid as one model, then the points one at a time."""
    import itertools

    import jax
    from gpu import peak_memory, synthetic_mnist, train_grid_batch, train_point

    from tuner.data import stratified_folds
    from tuner.study import load_definitions
    from tuner.training._jax_loops import clear_compilations
    from tuner.training._memory import grid_batch_bytes

    definitions = load_definitions(Path(__file__).resolve().parents[1] / "studies")
    definition = definitions["2layer"]
    rows, epochs = (3_000, 2) if quick else (60_000, 20)
    data = synthetic_mnist(rows, seed=1)
    folds = stratified_folds(data[1], 3, seed=42)
    points = list(itertools.product(*definition.grid.values()))

    train_point(definition, (32, 8), data, folds, 1)  # warm-up: device, cuBLAS, allocator
    clear_compilations()
    grid = train_grid_batch(definition, points, data, folds, epochs)
    memory = peak_memory()
    one_by_one = []
    for units in points:
        one_by_one.append(train_point(definition, units, data, folds, epochs))
        clear_compilations()
    alone_s = sum(p["seconds"] for p in one_by_one)
    return {
        "device": jax.devices()[0].device_kind,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "rows": rows,
        "epochs": epochs,
        "grid": grid,
        "one_by_one": one_by_one,
        "one_by_one_s": alone_s,
        "speedup": alone_s / grid["seconds"],
        "memory": memory,
        "estimated_grid_bytes": grid_batch_bytes(definition, points, 3, rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.quick)), flush=True)
        return
    results = {}
    for name in args.configs.split(","):
        env = dict(os.environ)
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {CONFIGS[name]}".strip()
        started = time.perf_counter()
        child = [sys.executable, __file__, "--child", *(["--quick"] if args.quick else [])]
        done = subprocess.run(child, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name}: failed\n{done.stderr[-3000:]}", flush=True)
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process_s"] = time.perf_counter() - started
        results[name] = result
        grid = result["grid"]
        print(
            f"{name} ({result['device']}): one point at a time {result['one_by_one_s']:.1f} s "
            f"(compile {sum(p['compile_s'] for p in result['one_by_one']):.1f} s, set-up "
            f"{sum(p['setup_s'] for p in result['one_by_one']):.1f} s); grid packing "
            f"{grid['seconds']:.1f} s (compile {grid['compile_s']:.1f} s, set-up "
            f"{grid['setup_s']:.1f} s, epoch {grid['epoch_s']:.3f} s): "
            f"{result['speedup']:.2f}x; memory peak {result['memory']}, estimated "
            f"{result['estimated_grid_bytes'] / 1e9:.2f} GB",
            flush=True,
        )
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
