#!/usr/bin/env bash
# One call on a machine with one CUDA GPU: is the GPU path right, and how fast is it? Synthetic CIFAR-shaped
# data, no downloads; about 8 minutes on an H100/H200. Every stage has its own time limit and the script goes
# on after a failed stage, so one call always returns the whole picture.
#
#   benchmarks/gpu_check.sh [OUT]        # OUT: where logs and tables go (default results/gpu_check)
#
# Stages (the log of all of them: OUT/gpu_check.log; working files in OUT/work, the tables copied to OUT):
#   1. the device, torch and the tool's versions
#   2. correctness on the GPU: captured graph == eager step (fp32, bf16), resumed graph run == uninterrupted
#      run, graph run == eager run, activation checkpointing == none (tests/test_cuda.py)     -> pytest.xml
#   3. speed per network: tool step (CUDA graph) vs a bare PyTorch loop, fp32 and bf16, eager for comparison,
#      peak memory; ResNet-1202 in bf16, and in fp32 with activation checkpointing        -> bench_all.parquet
#   4. runs sharing the GPU: aggregate throughput of 1, 2, 4 runs at once                 -> bench_share.parquet
#   5. bf16 vs fp32 on a short run, against seed-to-seed noise                       -> precision_check.parquet
#   6. a whole 64k-iteration ResNet-20 run (the paper's schedule), end to end, timed      -> full_run.json
#   7. the projected time of each run and of the Figure 6 sweep from stages 3 and 4
#
# Python: .venv/bin/python when there is one (after `make install`), else python3. Packages missing there
# (hydra-core, omegaconf, antlr4, submitit on a bare CUDA image) are installed from .whl/ when it exists:
# `make gpu-wheels` fills it here; carry .whl to the GPU machine.
set -u
OUT=${1:-${OUT:-results/gpu_check}}
WORK=${WORK:-$OUT/work}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/gpu_check.log"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! $PY -c "import hydra, omegaconf, submitit" 2>/dev/null && [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
TOOL="$PY -m degradation"
SECONDS=0
say() { echo "== [$(printf '%4d' "$SECONDS")s] $*" | tee -a "$LOG"; }
stage() {  # stage LIMIT_S NAME COMMAND...: run with a time limit, keep going on failure
  local limit=$1 name=$2; shift 2
  say "$name"
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || say "$name: exit $code$([ "$code" -eq 124 ] && echo " (time limit ${limit}s)")"
}

say "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"
$PY -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'cudnn', torch.backends.cudnn.version(), 'lightning', pl.__version__, torch.cuda.get_device_name())" 2>&1 | tee -a "$LOG"

stage 150 "correctness (tests/test_cuda.py)" \
  $PY -m pytest tests/test_cuda.py -q -p no:cacheprovider -o addopts="" --junitxml="$OUT/pytest.xml"

BENCH=(bench --device cuda --rounds 2 --iters 200)
stage 120 "speed, fp32, CUDA graph" $TOOL "${BENCH[@]}" --depths 20,56,110 --archs plain,resnet \
  --results "$WORK/fp32" -- trainer.precision=32-true
stage 100 "speed, bf16, CUDA graph" $TOOL "${BENCH[@]}" --depths 20,56,110 --archs resnet \
  --results "$WORK/bf16" -- trainer.precision=bf16-mixed
stage 60 "speed, bf16, eager (no graph)" $TOOL "${BENCH[@]}" --depths 20,110 --archs resnet \
  --results "$WORK/eager" -- trainer.precision=bf16-mixed trainer.cuda_graphs=false
stage 120 "ResNet-1202: bf16; fp32 with activation checkpointing" bash -c "
  $TOOL bench --device cuda --rounds 1 --iters 30 --depths 1202 --results '$WORK/r1202_bf16' -- trainer.precision=bf16-mixed &&
  $TOOL bench --device cuda --rounds 1 --iters 30 --depths 1202 --results '$WORK/r1202_ckpt' \
    -- trainer.precision=32-true trainer.activation_checkpointing=true"
stage 90 "runs sharing the GPU" $TOOL bench --device cuda --share 1,2,4 --depths 20,110 --iters 300 \
  --results "$WORK" -- trainer.precision=bf16-mixed

stage 90 "bf16 vs fp32 (ResNet-20, 2000 iterations, same seed; seed 1 for the noise)" \
  $PY benchmarks/precision_check.py --device cuda --arch resnet --depth 20 --iters 2000 --results "$WORK/precision" \
  -- data.test_size=10000 trainer.progress=none

stage 120 "ResNet-20, 64k iterations, paper schedule, bf16, CUDA graph: end to end" \
  $TOOL train model=resnet model.depth=20 data=synthetic schedule=paper \
  trainer.accelerator=cuda trainer.precision=bf16-mixed trainer.progress=lines results_dir="$WORK/full"

say "projection"
$PY benchmarks/gpu_projection.py "$WORK" "$OUT" 2>&1 | tee -a "$LOG"
cp "$WORK/bench_share.parquet" "$WORK/precision/precision_check.parquet" "$OUT/" 2>/dev/null
cp "$WORK"/full/runs/*/run.json "$OUT/full_run.json" 2>/dev/null
say "done in ${SECONDS}s"
