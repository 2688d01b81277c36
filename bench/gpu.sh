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
#   bash bench/gpu.sh --product        # issue 20: the product's own commands on real data
#   bash bench/gpu.sh --product --smoke   # the same, tiny, on a CPU (no wheels; a fake device)
#
# --product runs `tuner launch` itself (storage, claims, heartbeats, curves, report) on
# Fashion-MNIST carried as .data/fashion-mnist.npz (python bench/fashion_mnist_npz.py), in
# this order, all output under $OUT (6 files, issue20.log holding every command's output):
#   1. accuracy: the 2layer grid on 12,000 images for 10 epochs, JAX on the GPU at the
#      default matmul precision (TF32 on this hardware) and at JAX_DEFAULT_MATMUL_PRECISION=
#      highest; each study's per-point CV exported (gpu-2layer-12k-*.json) and compared
#      with the CPU references made beforehand (bench/results/cpu-{tf,jax}-2layer-12k.json)
#      by bench/compare_cv.py (compare-vs-cpu-*.json);
#   2. the whole seed study, `tuner launch --variant all --backend jax --gpus all
#      --workers-per-gpu $WORKERS_PER_GPU`, timed from the command to the report written,
#      with a cold and then a warm compilation cache (bench/compile_cache.py: full-study.json).
# DEADLINE (seconds, default 480) bounds the whole of --product: a run still going then is
# stopped (SIGTERM, trials given back) and recorded as cut.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
DEPS="${TMPDIR:-/tmp}/tuner-gpu-deps"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"

SMOKE=0
if [ "${1:-}" = "--product" ] && [ "${2:-}" = "--smoke" ]; then
    SMOKE=1
fi

shopt -s nullglob
wheels=(.whl/*.whl)
if [ "$SMOKE" = 1 ]; then
    # On the CPU where the checkout is installed: its own packages, no wheels.
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
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
fi
export KERAS_BACKEND=jax
export XLA_PYTHON_CLIENT_PREALLOCATE=false
"$PYTHON" -c "import jax, keras, optuna, tuner.training._jax_loops; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"

product() {
    local npz="${NPZ:-$PWD/.data/fashion-mnist.npz}" per_gpu="${WORKERS_PER_GPU:-4}"
    local deadline="${DEADLINE:-480}" log="$OUT/issue20.log"
    local work="${TMPDIR:-/tmp}/tuner-issue20" started=$SECONDS size=12k
    local accuracy=(--subset 12000 --epochs 10) full=(--variant all)
    if [ ! -f "$npz" ]; then
        echo "no $npz: run python bench/fashion_mnist_npz.py first and carry .data" >&2
        exit 1
    fi
    if [ "$SMOKE" = 1 ]; then
        # JAX on the CPU; one made-up visible device so that --gpus runs its whole path.
        accuracy=(--subset 1200 --epochs 1)
        full=(--variant 2layer --variant 5layer --subset 1200 --epochs 1)
        size=smoke
        export CUDA_VISIBLE_DEVICES=0
    fi
    rm -rf "$work" && mkdir -p "$work"
    {
        echo "== issue 20, $(date -u +%FT%TZ), smoke=$SMOKE, workers per GPU $per_gpu"
        nvidia-smi -L || echo "no nvidia-smi"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
        "$PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())"
    } 2>&1 | tee -a "$log"

    # 1. Accuracy: the same grid, data and folds at both matmul precisions.
    local precision
    for precision in default highest; do
        (
            if [ "$precision" = highest ]; then export JAX_DEFAULT_MATMUL_PRECISION=highest; fi
            echo "== accuracy, matmul precision $precision"
            timeout --signal=TERM --kill-after=30 200 "$PYTHON" -m tuner launch --variant 2layer \
                --dataset "$npz" "${accuracy[@]}" --backend jax --gpus all \
                --storage "sqlite:///$work/accuracy-$precision.db" \
                --compile-cache "$work/xla-accuracy" --no-report
            "$PYTHON" bench/compare_cv.py export --storage "sqlite:///$work/accuracy-$precision.db" \
                --study 2layer --label "gpu-jax-$precision" \
                --out "$OUT/gpu-2layer-$size-$precision.json"
        ) 2>&1 | tee -a "$log" || echo "accuracy run at $precision failed" | tee -a "$log"
    done
    local reference
    for reference in cpu-tf cpu-jax; do
        local file="bench/results/$reference-2layer-12k.json"
        if [ "$SMOKE" = 1 ]; then file="$OUT/gpu-2layer-smoke-highest.json"; fi
        "$PYTHON" bench/compare_cv.py compare "$file" "$OUT/gpu-2layer-$size-default.json" \
            "$OUT/gpu-2layer-$size-highest.json" --out "$OUT/compare-vs-$reference.json" 2>&1 \
            | tee -a "$log" || echo "comparison with $reference failed" | tee -a "$log"
        if [ "$SMOKE" = 1 ]; then break; fi
    done

    # 2. The whole study, cold and then warm compilation cache, to the report written.
    local left=$((deadline - (SECONDS - started)))
    echo "== the study, cold then warm cache; $left s left" | tee -a "$log"
    "$PYTHON" bench/compile_cache.py --modes cold,warm --deadline "$left" --work "$work/full" \
        --log "$log" --out "$OUT/full-study.json" -- "${full[@]}" --backend jax \
        --dataset "$npz" --gpus all --workers-per-gpu "$per_gpu" \
        || echo "the timed study failed" | tee -a "$log"
    echo "== done in $((SECONDS - started)) s" | tee -a "$log"
}

if [ "${1:-}" = "--product" ]; then
    product
elif [ "${1:-}" = "--seed-study" ]; then
    shift
    "$PYTHON" bench/gpu_seed_study.py --out "$OUT/seed-study.json" "$@" 2>&1 \
        | tee "$OUT/seed-study.log"
elif [ "${1:-}" = "--packing" ]; then
    shift
    "$PYTHON" bench/gpu_packing.py --out "$OUT/packing.json" "$@" 2>&1 | tee "$OUT/packing.log"
else
    "$PYTHON" bench/gpu.py --out "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
fi
