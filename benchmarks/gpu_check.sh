#!/usr/bin/env bash
# One call on a machine with one CUDA GPU (an H100/H200): are the GPU paths right, and how fast is the step?
# Synthetic data, no downloads. A check, not a survey: every stage has a time limit, the limits add up to well
# under BUDGET_S (480 s, 8 minutes, with at least 60 s to spare for start-up and copying), each stage is timed,
# the times and their sum are printed at the end, and the script exits 1 when any stage failed or ran out of time.
#
#   benchmarks/gpu_check.sh [OUT]        # OUT: where the log and tables go (default results/gpu_check)
#   QUICK=1 benchmarks/gpu_check.sh      # the rehearsal on any machine (CPU): every stage, tiny, limits x 5
#
# Stages (log: OUT/gpu_check.log; run folders in WORK, a temporary folder):
#   device          the GPU, driver, torch, CUDA and cuDNN versions
#   correctness     tests/test_cuda.py: graph == eager (fp32, bf16), resumed graph run == uninterrupted run, ...
#   16-mixed        refused in one line, exit 2, nothing created (its gradient flow would read scaled gradients)
#   precision       one smoke run per precision (one process); run.json must say TF32 off for 32-true, on for tf32
#   decode          data.decode=device on JPEG (RGB, grayscale), CMYK JPEG, a PNG-only batch == CPU decoding; the file
#                   stream's fused normalisation on the device == the CPU formula;
#                   20 rounds each with the main stream busy (the nvJPEG stream race shows as wrong images)
#   resume          a checkpoint carrying two CUDA RNG states resumes where one GPU is visible
#   sweep           a one-GPU sweep with launcher.runs_per_gpu=2: both runs done (lifeline, GPU sharing)
#   memory          fp32 ResNet-1202 at batch 128: peak allocated, peak reserved, device memory in use
#   speed           tool step (CUDA graph) vs a bare loop, ResNet-20 and -110, bf16 and fp32    -> bench.parquet
#
# Not here (longer than this budget; run them by hand): a whole 64k-iteration run, `degradation bench --share`,
# benchmarks/precision_check.py, DDP (one GPU cannot hold two NCCL ranks).
#
# Python: .venv/bin/python when there is one, else python3. Packages missing there (hydra-core, omegaconf,
# antlr4, submitit on a bare CUDA image) are installed from .whl/ when it exists (`make gpu-wheels` fills it).
set -u
OUT=${1:-${OUT:-results/gpu_check}}
BUDGET_S=${BUDGET_S:-480}
MARGIN_S=60
if [ "${QUICK:-0}" = 1 ]; then
  DEVICE=${DEVICE:-cpu}; ITERS=2; ROUNDS=1; DEPTHS=20; DEPTH_1202=20; LIMIT_SCALE=${LIMIT_SCALE:-5}
  SMALL=(schedule.batch_size=16)
else
  DEVICE=${DEVICE:-cuda}; ITERS=100; ROUNDS=1; DEPTHS=20,110; DEPTH_1202=1202; LIMIT_SCALE=${LIMIT_SCALE:-1}
  SMALL=()
fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/gpu_check.log"
: > "$LOG"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! $PY -c "import hydra, omegaconf, submitit" 2>/dev/null && [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
TOOL="$PY -m degradation"
TRAIN=(model=resnet data=synthetic schedule=smoke trainer.progress=none "trainer.accelerator=$DEVICE")

# name:limit (seconds on the GPU). The sum must stay within BUDGET_S - MARGIN_S: checked before anything runs.
LIMITS=(device:15 correctness:90 16-mixed:15 precision:40 decode:35 resume:50 sweep:60 memory:40 speed:50)
total=0
for entry in "${LIMITS[@]}"; do total=$((total + ${entry#*:})); done
if [ "$total" -gt $((BUDGET_S - MARGIN_S)) ]; then
  echo "gpu_check: stage limits add up to ${total}s, over the ${BUDGET_S}s budget less ${MARGIN_S}s" >&2
  exit 2
fi
limit_of() { for entry in "${LIMITS[@]}"; do [ "${entry%%:*}" = "$1" ] && echo $(( ${entry#*:} * LIMIT_SCALE )); done; }

SECONDS=0
FAILED=()
TIMES=()
say() { echo "== [$(printf '%4d' "$SECONDS")s] $*" | tee -a "$LOG"; }
stage() {  # stage NAME DESCRIPTION COMMAND...: run under the stage's limit, time it, remember a failure
  local name=$1 what=$2; shift 2
  local limit; limit=$(limit_of "$name")
  local began=$SECONDS
  say "$name (limit ${limit}s): $what"
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG"
  local code=${PIPESTATUS[0]}
  local took=$((SECONDS - began))
  TIMES+=("$name:$took:$limit")
  if [ "$code" -ne 0 ]; then
    FAILED+=("$name")
    say "$name: FAILED, exit $code$([ "$code" -eq 124 ] && echo " (over its ${limit}s limit)") after ${took}s"
  else
    say "$name: ok in ${took}s"
  fi
}

stage device "versions" bash -c "
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo 'no nvidia-smi'
  $PY -c \"import torch, pytorch_lightning as pl
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(),
      'lightning', pl.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')
import sys; sys.exit(1 if '$DEVICE' == 'cuda' and not torch.cuda.is_available() else 0)\""

stage correctness "tests/test_cuda.py" \
  $PY -m pytest tests/test_cuda.py -q -p no:cacheprovider -o addopts="" --junitxml="$OUT/pytest.xml"

stage 16-mixed "trainer.precision=16-mixed is refused in one line" bash -c "
  out=\$($TOOL train ${TRAIN[*]} trainer.precision=16-mixed results_dir=$WORK/fp16 2>&1); code=\$?
  echo \"\$out\"
  [ \$code -eq 2 ] && [ \$(echo \"\$out\" | wc -l) -eq 1 ] && echo \"\$out\" | grep -q bf16-mixed && [ ! -e $WORK/fp16 ]"

stage precision "the TF32 switches each precision trains with, as run.json records them" \
  $PY benchmarks/gpu_stages.py switches "$DEVICE" "$WORK"

stage decode "data.decode=device == CPU decoding (JPEG, gray, CMYK, PNG-only)" \
  $PY benchmarks/gpu_stages.py decode "$DEVICE"

stage resume "two CUDA RNG states in the checkpoint, one GPU visible" \
  $PY benchmarks/gpu_stages.py resume "$DEVICE" "$WORK"

stage sweep "one GPU, two runs at once (launcher.runs_per_gpu=2)" bash -c "
  $TOOL sweep --depths 8 --archs resnet --seeds 0,1 --data synthetic --preset smoke --results $WORK/sweep \
    -- trainer.accelerator=$DEVICE launcher.runs_per_gpu=2 data.train_size=64 data.test_size=32 \
    \$([ '$DEVICE' = cpu ] && echo launcher.jobs=2) | tail -4 | tee $WORK/sweep.out
  grep -q '2 done' $WORK/sweep.out"

stage memory "fp32 ResNet-$DEPTH_1202 peak memory: allocated, reserved, in use" \
  $PY benchmarks/gpu_stages.py memory "$DEVICE" "$DEPTH_1202"

stage speed "tool step (CUDA graph) vs a bare loop, bf16 and fp32" bash -c "
  $TOOL bench --device $DEVICE --rounds $ROUNDS --iters $ITERS --depths $DEPTHS --archs resnet \
    --results $WORK/bf16 -- trainer.precision=bf16-mixed ${SMALL[*]} &&
  $TOOL bench --device $DEVICE --rounds $ROUNDS --iters $ITERS --depths $DEPTHS --archs resnet \
    --results $WORK/fp32 -- trainer.precision=32-true ${SMALL[*]}"
cp "$WORK/bf16/bench.parquet" "$OUT/bench_bf16.parquet" 2>/dev/null
cp "$WORK/fp32/bench.parquet" "$OUT/bench_fp32.parquet" 2>/dev/null

sum=0
say "stage times (seconds taken / limit):"
for entry in "${TIMES[@]}"; do
  IFS=: read -r name took limit <<< "$entry"
  printf '   %-12s %4ds / %4ds\n' "$name" "$took" "$limit" | tee -a "$LOG"
  sum=$((sum + took))
done
say "sum of stage times ${sum}s; stage limits $((total * LIMIT_SCALE))s; budget $((BUDGET_S * LIMIT_SCALE))s (limits x $LIMIT_SCALE)"
if [ "${#FAILED[@]}" -gt 0 ]; then
  say "FAILED: ${FAILED[*]}"
  exit 1
fi
say "all ${#TIMES[@]} stages passed in ${SECONDS}s"
