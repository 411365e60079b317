#!/usr/bin/env bash
# One call on a machine with one CUDA GPU: is the GPU path right, and how fast is it? Synthetic CIFAR-shaped
# data, no downloads; at most BUDGET_S seconds (default 540). Stages run in order of importance, each under its
# own time limit; a failed stage does not stop the others, and a stage that would overrun the budget is skipped
# (and said so), so one call always returns a whole log.
#
#   benchmarks/gpu_check.sh [OUT]        # OUT: where logs and tables go (default results/gpu_check)
#   QUICK=1 benchmarks/gpu_check.sh      # a rehearsal of this script on any machine (CPU): every stage, tiny
#
# Stages (the log of all of them: OUT/gpu_check.log; run folders in WORK, a temporary folder; tables to OUT):
#   1. the device, torch and the tool's versions
#   2. correctness on the GPU: captured graph == eager step (fp32, bf16), resumed graph run == uninterrupted
#      run, graph run == eager run, activation checkpointing == none (tests/test_cuda.py)     -> pytest.xml
#   3. speed per network: tool step (CUDA graph) vs a bare PyTorch loop, bf16, fp32 and tf32, peak memory;
#      the TF32 switches each precision trains with, as run.json records them (32-true must say tf32_conv False)
#   4. a whole 64k-iteration ResNet-20 run (the paper's schedule, bf16), end to end, timed    -> full_run.json
#   5. ResNet-1202: bf16, and fp32 with activation checkpointing (memory, speed)
#   6. runs sharing the GPU: aggregate throughput of 1, 2, 4 runs at once                 -> bench_share.parquet
#   7. bf16 vs fp32 on a short run, against seed-to-seed noise                       -> precision_check.parquet
#   8. for comparison: the eager step (no graph), and torch.compile inside the graph
#   9. the projected time of each run and of the Figure 6 sweep from the bench tables     -> bench_all.parquet
#
# Python: .venv/bin/python when there is one (after `make install`), else python3. Packages missing there
# (hydra-core, omegaconf, antlr4, submitit on a bare CUDA image) are installed from .whl/ when it exists:
# `make gpu-wheels` fills it here; carry .whl to the GPU machine.
set -u
OUT=${1:-${OUT:-results/gpu_check}}
BUDGET_S=${BUDGET_S:-540}
if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=${DEVICE:-cpu}; ITERS=2; ITERS_1202=1; ROUNDS=1; DEPTHS=20; SHARE_DEPTHS=20; SHARE_S=1; PRECISION_ITERS=40
  SMALL=(schedule.batch_size=16); FULL=(schedule=smoke); PRECISION_ARGS=(--batch-size 16); PRECISION_DATA=()
else
  DEVICE=${DEVICE:-cuda}; ITERS=200; ITERS_1202=30; ROUNDS=2; DEPTHS=20,56,110; SHARE_DEPTHS=20,110; SHARE_S=3
  PRECISION_ITERS=2000; SMALL=(); FULL=(schedule=paper); PRECISION_ARGS=(); PRECISION_DATA=(data.test_size=10000)
fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}  # run folders; the tables are copied to OUT
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
stage() {  # stage LIMIT_S NAME COMMAND...: run with a time limit, keep going on failure, skip past the budget
  local limit=$1 name=$2; shift 2
  if [ $((SECONDS + limit)) -gt "$BUDGET_S" ]; then
    limit=$((BUDGET_S - SECONDS))
    [ "$limit" -ge 30 ] || { say "$name: skipped (the ${BUDGET_S}s budget is spent)"; return; }
  fi
  say "$name"
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 0 ] || say "$name: exit $code$([ "$code" -eq 124 ] && echo " (time limit ${limit}s)")"
}

say "device (work files: $WORK)"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee -a "$LOG"
$PY -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'cudnn', torch.backends.cudnn.version(), 'lightning', pl.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')" 2>&1 | tee -a "$LOG"

stage 120 "correctness (tests/test_cuda.py)" \
  $PY -m pytest tests/test_cuda.py -q -p no:cacheprovider -o addopts="" --junitxml="$OUT/pytest.xml"

BENCH=(bench --device "$DEVICE" --rounds "$ROUNDS" --iters "$ITERS")
stage 90 "speed, bf16, CUDA graph" $TOOL "${BENCH[@]}" --depths "$DEPTHS" --archs plain,resnet \
  --results "$WORK/bf16" -- trainer.precision=bf16-mixed "${SMALL[@]}"
stage 90 "speed, fp32 (32-true: TF32 off), CUDA graph" $TOOL "${BENCH[@]}" --depths "$DEPTHS" --archs resnet \
  --results "$WORK/fp32" -- trainer.precision=32-true "${SMALL[@]}"
stage 90 "speed, tf32, CUDA graph" $TOOL "${BENCH[@]}" --depths "$DEPTHS" --archs resnet \
  --results "$WORK/tf32" -- trainer.precision=tf32 "${SMALL[@]}"
stage 60 "precision switches: one smoke run per precision, what run.json says it computed in" bash -c '
  for p in 32-true tf32 bf16-mixed; do
    '"$TOOL"' train model=resnet model.depth=20 data=synthetic schedule=smoke trainer.accelerator='"$DEVICE"' \
      trainer.precision=$p trainer.progress=none results_dir='"$WORK"'/switches >/dev/null || exit 1
  done
  '"$PY"' -c "import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob(\"runs/*/run.json\")):
    info = json.loads(f.read_text()); print(info[\"run_id\"], info[\"device\"], info[\"precision\"])" '"$WORK"'/switches'

stage 120 "ResNet-20, 64k iterations, paper schedule, bf16, CUDA graph: end to end" \
  $TOOL train model=resnet model.depth=20 data=synthetic "${FULL[@]}" \
  trainer.accelerator="$DEVICE" trainer.precision=bf16-mixed trainer.progress=lines results_dir="$WORK/full"

stage 90 "ResNet-1202: bf16; fp32 with activation checkpointing" bash -c "
  $TOOL bench --device $DEVICE --rounds 1 --iters $ITERS_1202 --depths 1202 --results '$WORK/r1202_bf16' \
    -- trainer.precision=bf16-mixed ${SMALL[*]} &&
  $TOOL bench --device $DEVICE --rounds 1 --iters $ITERS_1202 --depths 1202 --results '$WORK/r1202_ckpt' \
    -- trainer.precision=32-true trainer.activation_checkpointing=true ${SMALL[*]}"
stage 120 "runs sharing the GPU" $TOOL bench --device "$DEVICE" --share 1,2,4 --depths "$SHARE_DEPTHS" \
  --seconds "$SHARE_S" --results "$WORK" -- trainer.precision=bf16-mixed "${SMALL[@]}"

stage 75 "bf16 vs fp32 (ResNet-20, 2000 iterations, same seed; seed 1 for the noise)" \
  $PY benchmarks/precision_check.py --device "$DEVICE" --arch resnet --depth 20 --iters "$PRECISION_ITERS" \
  "${PRECISION_ARGS[@]}" --results "$WORK/precision" -- "${PRECISION_DATA[@]}" trainer.progress=none

stage 45 "for comparison: bf16, eager step (no graph)" $TOOL "${BENCH[@]}" --depths "$SHARE_DEPTHS" \
  --archs resnet --results "$WORK/eager" -- trainer.precision=bf16-mixed trainer.cuda_graphs=false "${SMALL[@]}"
stage 90 "for comparison: bf16, torch.compile inside the graph" $TOOL "${BENCH[@]}" --depths 20 --archs resnet \
  --results "$WORK/compiled" -- trainer.precision=bf16-mixed trainer.compile=true "${SMALL[@]}"

say "projection"
$PY benchmarks/gpu_projection.py "$WORK" "$OUT" 2>&1 | tee -a "$LOG"
cp "$WORK/bench_share.parquet" "$WORK/precision/precision_check.parquet" "$OUT/" 2>/dev/null
cp "$WORK"/full/runs/*/run.json "$OUT/full_run.json" 2>/dev/null
say "done in ${SECONDS}s"
