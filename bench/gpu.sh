#!/usr/bin/env bash
# bench/gpu.py on a GPU machine that has JAX + CUDA but no TensorFlow, no Keras and no network.
#
# The few pure-Python (and small binary) wheels tuner's training code needs there are
# prepared beforehand in .whl/ (bench/gpu-wheels.txt says which and how); they are
# installed --no-deps into a private folder put on PYTHONPATH, so nothing already on the
# machine (jax, numpy, CUDA) is touched and no build step or network is needed. tuner
# itself runs from this checkout through PYTHONPATH.
#
#   bash bench/gpu.sh                  # figures to $OUT/gpu.json (OUT defaults to ./gpu-out)
#   bash bench/gpu.sh --budget 200     # extra arguments go to bench/gpu.py
#   bash bench/gpu.sh --seed-study     # the whole seed study, measured (gpu_seed_study.py)
#   bash bench/gpu.sh --packing        # grid packing on and off, 2layer grid (gpu_packing.py)
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
DEPS="${TMPDIR:-/tmp}/tuner-gpu-deps"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"

shopt -s nullglob
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    echo "no wheels in .whl/: prepare them first (see bench/gpu-wheels.txt)" >&2
    exit 1
fi

rm -rf "$DEPS"
if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps \
        --find-links .whl --target "$DEPS" "${wheels[@]}"; then
    # No pip, or pip refusing: a wheel is a zip archive whose top level is importable.
    echo "pip install failed; unpacking the wheels instead" >&2
    rm -rf "$DEPS"
    for wheel in "${wheels[@]}"; do
        "$PYTHON" -m zipfile -e "$wheel" "$DEPS"
    done
fi

export PYTHONPATH="$PWD:$DEPS${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false
"$PYTHON" -c "import jax, keras, optuna, tuner.training._jax_loops; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
if [ "${1:-}" = "--seed-study" ]; then
    shift
    "$PYTHON" bench/gpu_seed_study.py --out "$OUT/seed-study.json" "$@" 2>&1 \
        | tee "$OUT/seed-study.log"
elif [ "${1:-}" = "--packing" ]; then
    shift
    "$PYTHON" bench/gpu_packing.py --out "$OUT/packing.json" "$@" 2>&1 | tee "$OUT/packing.log"
else
    "$PYTHON" bench/gpu.py --out "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
fi
