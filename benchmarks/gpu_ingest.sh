#!/usr/bin/env bash
# The GPU check of issue 17, as one short script: the CUDA capture and direct-write tests, then bench_ingest on the
# Qwen2.5-7B shape (bfloat16) and on SmolLM2-135M's shape, stores written to the machine's disk.
#
#     bash benchmarks/gpu_ingest.sh [QWEN_TOKENS] [SMOL_TOKENS]
#
# Environment: SKIP_TESTS=1 skips the tests; BENCH_ARGS adds options to both benchmark runs (for
# example "--no-direct"); SMOL_DTYPES (default float32,bfloat16); QWEN_TIMEOUT / SMOL_TIMEOUT (s).
#
# Wheels in .whl/ (packages the GPU image lacks: duckdb, zarr and theirs) are installed first when
# present. Logs go to $OUT when it is set (the device tool's output folder), else to ./gpu-logs.
set -u
QWEN_TOKENS=${1:-4000}
SMOL_TOKENS=${2:-12000}
LOG=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOG"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
# A source checkout that is not installed: schema/ is the package actstore.schema (pyproject
# package-dir), so link it where Python looks for it.
python3 -c "import actstore.schema" 2>/dev/null || ln -sfn ../schema actstore/schema
nvidia-smi -L; python3 -V; nproc; free -g | head -2; df -hT "$PWD" /tmp
python3 -c "import torch, transformers, zarr, duckdb; print('torch', torch.__version__, 'transformers', transformers.__version__, 'zarr', zarr.__version__, 'duckdb', duckdb.__version__)"

if [ "${SKIP_TESTS:-0}" != 1 ]; then
    echo "== CUDA capture tests"
    timeout 100 python3 -m pytest -q -p no:cacheprovider tests/ingest/test_capture.py tests/ingest/test_stage_capture.py \
        tests/actstore/test_write_path.py -k "cuda or bit_for_bit or pools or direct or chunk" 2>&1 \
        | tee "$LOG/tests.log" | tail -15
fi

mkdir -p .benchtmp
# --long 0: these stores are already long (5-10 GB); 4 copies of one would not fit the time or the disk.
# --no-page-cache: on a GPU the schedule is not split, so that side would be the default again.
echo "== Qwen2.5-7B shape, bfloat16, $QWEN_TOKENS tokens"
timeout "${QWEN_TIMEOUT:-300}" python3 benchmarks/bench_ingest.py --preset qwen2.5-7b --device cuda --dtype bfloat16 \
    --tokens "$QWEN_TOKENS" --buffer-mb 3000 --repeat 2 --threads 4 --long 0 --no-page-cache --dir .benchtmp ${BENCH_ARGS:-} 2>&1 | tee "$LOG/qwen.log"
echo "== SmolLM2-135M shape, $SMOL_TOKENS tokens"
timeout "${SMOL_TIMEOUT:-110}" python3 benchmarks/bench_ingest.py --preset smollm2-135m --device cuda \
    --dtype "${SMOL_DTYPES:-float32,bfloat16}" --tokens "$SMOL_TOKENS" --buffer-mb 1500 --repeat 2 --threads 4 \
    --long 0 --no-page-cache --dir .benchtmp ${BENCH_ARGS:-} 2>&1 | tee "$LOG/smol.log"
rm -rf .benchtmp
