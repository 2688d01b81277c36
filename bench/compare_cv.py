"""Per-point CV accuracy of one study exported, and two such exports compared (issue 20).

Two steps, each its own subcommand:

    python bench/compare_cv.py export --storage sqlite:////tmp/cpu.db --study 2layer \\
        --label cpu-tf --out bench/results/cpu-tf-2layer-12k.json
    python bench/compare_cv.py compare bench/results/cpu-tf-2layer-12k.json gpu.json \\
        --out compare.json

``export`` reads a study through tuner's Python API (:func:`tuner.api.load_results`):
every grid point's mean CV accuracy, its folds, and what the study records (dataset,
subset, data fingerprint, epochs, fold seed, backend), plus the machine it runs on.

``compare`` pairs the two exports' grid points by their units and reports the mean
per-point difference (B - A, signed: a systematic bias), the mean absolute and largest
per-point difference, and the difference of the two best CV accuracies, against the
issue's targets: mean per-point difference within 0.003, best point within 0.005. It
also prints the yardstick those differences are read against: the points' fold-to-fold
spread (a fold's accuracy moves by about that much from the random initial weights
alone). It refuses to compare exports of different data (fingerprints) or epochs.
It exits 0 whether or not the targets are met; the verdict is in the output.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

MEAN_TARGET = 0.003
BEST_TARGET = 0.005


def export(storage: str, study: str, label: str, out: Path) -> dict[str, Any]:
    """Write one study's per-point CV accuracies to ``out`` as JSON, and return them."""
    from tuner.api import load_results

    results = load_results(study, storage=storage)[study]
    config = results.config
    points = []
    for record in results.to_records():
        points.append(
            {
                "units": record["units"],
                "rank": record["rank"],
                "cv_accuracy_mean": record["cv_accuracy_mean"],
                "cv_accuracy_std": record["cv_accuracy_std"],
                "fold_accuracies": _fold_accuracies(record),
                "train_seconds": record.get("train_seconds"),
            }
        )
    exported = {
        "label": label,
        "study": study,
        "complete": results.complete,
        "grid_size": config.definition.grid_size,
        "dataset": config.dataset.to_dict(),
        "data_fingerprint": config.data_fingerprint,
        "epochs": config.epochs,
        "fold_seed": config.fold_seed,
        "backend": config.backend,
        "machine": _machine(config.backend),
        "points": points,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(exported, indent=2) + "\n")
    return exported


def _fold_accuracies(record: dict[str, Any]) -> list[float]:
    keys = sorted(
        (key for key in record if key.startswith("fold_") and key.endswith("_accuracy")),
        key=lambda key: int(key.split("_")[1]),
    )
    return [float(record[key]) for key in keys]


def _machine(backend: str) -> dict[str, Any]:
    machine: dict[str, Any] = {"platform": platform.platform(), "python": sys.version.split()[0]}
    if backend == "jax":
        import os

        import jax

        machine["jax"] = jax.__version__
        machine["devices"] = [str(device) for device in jax.devices()]
        machine["device_kind"] = jax.devices()[0].device_kind
        machine["matmul_precision"] = os.environ.get("JAX_DEFAULT_MATMUL_PRECISION", "default")
    return machine


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """B against A, grid point by grid point; see the module text for the figures."""
    if a["data_fingerprint"] != b["data_fingerprint"]:
        raise SystemExit(
            f"different data: {a['label']} has fingerprint {a['data_fingerprint']}, "
            f"{b['label']} {b['data_fingerprint']}"
        )
    if a["epochs"] != b["epochs"]:
        raise SystemExit(f"different epochs: {a['epochs']} vs {b['epochs']}")
    mean_a = {point["units"]: point["cv_accuracy_mean"] for point in a["points"]}
    mean_b = {point["units"]: point["cv_accuracy_mean"] for point in b["points"]}
    shared = sorted(set(mean_a) & set(mean_b))
    if not shared:
        raise SystemExit("no grid point in common")
    differences = {units: mean_b[units] - mean_a[units] for units in shared}
    best_a = max(shared, key=lambda units: mean_a[units])
    best_b = max(shared, key=lambda units: mean_b[units])
    spread = [
        point["cv_accuracy_std"]
        for export in (a, b)
        for point in export["points"]
        if point["units"] in shared
    ]
    mean_difference = statistics.fmean(differences.values())
    best_difference = mean_b[best_b] - mean_a[best_a]
    return {
        "a": a["label"],
        "b": b["label"],
        "points": len(shared),
        "per_point": [
            {
                "units": units,
                "a": mean_a[units],
                "b": mean_b[units],
                "b_minus_a": differences[units],
            }
            for units in shared
        ],
        "mean_difference": mean_difference,
        "mean_abs_difference": statistics.fmean(abs(d) for d in differences.values()),
        "max_abs_difference": max(abs(d) for d in differences.values()),
        "best_a": {"units": best_a, "cv_accuracy": mean_a[best_a]},
        "best_b": {"units": best_b, "cv_accuracy": mean_b[best_b]},
        "best_difference": best_difference,
        "same_best_point": best_a == best_b,
        "mean_fold_spread": statistics.fmean(spread),
        "targets": {"mean_difference": MEAN_TARGET, "best_difference": BEST_TARGET},
        "mean_within_target": abs(mean_difference) <= MEAN_TARGET,
        "best_within_target": abs(best_difference) <= BEST_TARGET,
    }


def _summary(result: dict[str, Any]) -> str:
    verdict = {True: "within", False: "NOT within"}
    return (
        f"{result['b']} vs {result['a']}, {result['points']} points: mean per-point difference "
        f"{result['mean_difference']:+.4f} ({verdict[result['mean_within_target']]} "
        f"{MEAN_TARGET}), mean |difference| {result['mean_abs_difference']:.4f}, largest "
        f"{result['max_abs_difference']:.4f}; best {result['best_b']['units']} "
        f"{result['best_b']['cv_accuracy']:.4f} vs {result['best_a']['units']} "
        f"{result['best_a']['cv_accuracy']:.4f}: {result['best_difference']:+.4f} "
        f"({verdict[result['best_within_target']]} {BEST_TARGET}); folds' spread "
        f"{result['mean_fold_spread']:.4f}"
    )


def main(argv: list[str] | None = None) -> None:
    """The command line: ``export`` or ``compare``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="one study's per-point CV to JSON")
    exporting.add_argument("--storage", required=True)
    exporting.add_argument("--study", required=True)
    exporting.add_argument("--label", required=True)
    exporting.add_argument("--out", type=Path, required=True)
    comparing = commands.add_parser("compare", help="B against A, point by point")
    comparing.add_argument("a", type=Path)
    comparing.add_argument("b", type=Path, nargs="+")
    comparing.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.command == "export":
        exported = export(args.storage, args.study, args.label, args.out)
        best = exported["points"][0] if exported["points"] else None
        print(
            f"{args.label}: {len(exported['points'])}/{exported['grid_size']} points, best "
            + (f"{best['units']} {best['cv_accuracy_mean']:.4f}" if best else "none")
        )
        return
    reference = json.loads(args.a.read_text())
    results = []
    for path in args.b:
        result = compare(reference, json.loads(path.read_text()))
        print(_summary(result))
        results.append(result)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
