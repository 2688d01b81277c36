"""The whole seed study on one device with grid packing, measured, not extrapolated.

Seven processes share the device, one per variant, started together. Each trains its
variant's whole grid at the protocol's size (60,000 synthetic MNIST-shaped images, 3
folds, 20 epochs) in batches of ``--pack`` grid points with all their folds (grid
packing), then the variant's final fit (one model, 60,000 images, 20 epochs). The
wall time from the common start to the last process's end is the seed study's time.
Compilation (every batch has new shapes) runs on the host's cores, so the processes
overlap it with each other's training.

    bash bench/gpu.sh --seed-study      # on the GPU machine, wheels as for bench/gpu.py
    python bench/gpu_seed_study.py --quick    # a tiny version on a CPU
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]


def variant_main(name: str, pack: int, quick: bool, folder: Path) -> None:
    """One process: one variant's grid in packed batches, then its final fit."""
    import jax
    from gpu import synthetic_mnist

    from tuner.data import stratified_folds
    from tuner.study import load_definitions
    from tuner.training._jax_loops import JaxFoldLoop, JaxPackedLoop, clear_compilations
    from tuner.training._models import (
        build_grid_model,
        build_model,
        grid_weights,
        initial_weights_of,
    )

    jax.devices()
    train, epochs = (3_000, 2) if quick else (60_000, 20)
    definition = load_definitions(ROOT / "studies")[name]
    x, y = synthetic_mnist(train, seed=1)
    test = synthetic_mnist(1_000 if quick else 10_000, seed=2)
    folds = stratified_folds(y, definition.protocol.folds, seed=42)
    points = list(itertools.product(*definition.grid.values()))
    Path(folder, f"ready-{name}").touch()
    while not Path(folder, "go").exists():
        time.sleep(0.01)
    batches = []
    accuracies = []
    for start in range(0, len(points), pack):
        began = time.perf_counter()
        chunk = points[start : start + pack]
        model = build_grid_model(definition, chunk, len(folds))
        k = len(folds)
        weights = initial_weights_of(
            definition, [u for u in chunk for _ in range(k)], [*range(k)] * len(chunk)
        )
        grid_weights(model, [weights[p * k : (p + 1) * k] for p in range(len(chunk))], k)
        trainer = JaxPackedLoop(model, definition, len(folds), points=len(chunk))
        histories = trainer.fit_folds(x, y, folds, epochs=epochs, seed=0)
        clear_compilations()
        accuracies += [h["val_accuracy"][-1] for h in histories]
        batches.append({"points": len(chunk), "seconds": time.perf_counter() - began})
    began = time.perf_counter()
    final = build_model(definition, points[0], seed=0)
    history = JaxFoldLoop(final, definition.protocol).fit(
        x, y, epochs=epochs, validation=test, seed=0
    )
    final_s = time.perf_counter() - began
    print(
        json.dumps(
            {
                "variant": name,
                "points": len(points),
                "batches": batches,
                "final_fit_s": final_s,
                "final_val_accuracy": history["val_accuracy"][-1],
                "mean_cv_accuracy": float(np.mean(accuracies)),
                "end": time.time(),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--pack", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        variant_main(args.variant, args.pack, args.quick, args.folder)
        return
    from tuner.study import load_definitions

    names = sorted(load_definitions(ROOT / "studies"))
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "KERAS_BACKEND": "jax"}
    with tempfile.TemporaryDirectory() as folder:
        launched = time.perf_counter()
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    name,
                    "--folder",
                    folder,
                    "--pack",
                    str(args.pack),
                    *(["--quick"] if args.quick else []),
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name in names
        ]
        while not all(Path(folder, f"ready-{n}").exists() for n in names):
            if any(p.poll() not in (None, 0) for p in processes):
                raise RuntimeError("a variant process failed before it was ready")
            time.sleep(0.05)
        startup = time.perf_counter() - launched
        Path(folder, "go").touch()
        go = time.time()
        print(f"{len(names)} processes ready in {startup:.1f} s; go", flush=True)
        reports = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in processes]
    wall = max(r["end"] for r in reports) - go
    for report in reports:
        train = sum(b["seconds"] for b in report["batches"])
        print(
            f"  {report['variant']:<18} {report['points']:>3} points in "
            f"{len(report['batches'])} batch(es): {train:6.1f} s, final fit "
            f"{report['final_fit_s']:5.1f} s, ends at {report['end'] - go:6.1f} s",
            flush=True,
        )
    points = sum(r["points"] for r in reports)
    print(
        f"seed study ({points} points x 3 folds x {'2' if args.quick else '20'} epochs + "
        f"{len(reports)} final fits): {wall:.1f} s = {wall / 60:.2f} min wall, measured "
        f"(after {startup:.1f} s of process start-up and data preparation)",
        flush=True,
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"wall_s": wall, "startup_s": startup, "reports": reports}, indent=2)
        )


if __name__ == "__main__":
    main()
