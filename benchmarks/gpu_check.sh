#!/usr/bin/env bash
# Every GPU check and benchmark of mao_nb, in one run, for a GPU machine (e.g. the device machine).
#
# That machine has torch, transformers, peft, scipy, scikit-image, tqdm and pillow, but not the project's
# other packages, and it cannot download: prepare them here first with `make gpu-wheels` (pure-Python
# wheels and faiss-cpu into .whl/, about 40 MB), carry `.whl`, and run from the repository root:
#
#     bash benchmarks/gpu_check.sh            # results under $OUT (or benchmarks/results/gpu)
#
# Steps (each bounded by `timeout`, a failed step does not stop the others; the exit status counts failures):
# All steps share one budget ($BUDGET, default 570 s, under the device machine's 600 s per command):
#   1. environment: nvidia-smi, torch and CUDA versions;
#   2. benchmarks/gpu_check.py (budget 300 s): precisions (fp32/tf32/bf16/fp16), Stage B ms per object and peak memory for
#      ViT-B/14 and SigLIP-B/16, CPU-vs-GPU agreement, mao_vectors end to end, OWLv2 and SAM speed, Stage A
#      memory per crop, in $OUT/gpu_check.json (on its own: `python benchmarks/gpu_check.py`; its time budget is 480 s);
#   3. the notebook cells flagged `gpu` (fp16/bf16 embeddings, LeGrad on CUDA vs the CPU, the FAISS index),
#      through nbdev_test --flags gpu;
#   4. Stage B speed: benchmarks/bench_stage_b.py --skip-cpu (batched vs one image at a time), with what is left.
# faiss-gpu (135 MB) is too large to carry to the device machine: there the index runs on faiss-cpu, and
# the FAISS-on-GPU path is checked only where faiss-gpu is installed (pip install -e ".[gpu,dev]").
set -u
OUT=${OUT:-benchmarks/results/gpu}; mkdir -p "$OUT"
PY=${PY:-python3}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" PATH="/tmp/site/bin:$PATH" || { echo "gpu_check: installing .whl failed"; exit 2; }
fi
fail=0
TOTAL=${BUDGET:-570}  # one command on the device machine may run 600 s: every step shares this budget
step() { # step NAME SECONDS COMMAND...: run with at most SECONDS and what is left of the budget; log to $OUT/NAME.log
  local name=$1 secs=$2; shift 2; local left=$((TOTAL - SECONDS)); [ $left -lt $secs ] && secs=$left
  if [ $secs -le 5 ]; then echo "== $name: skipped (budget of $TOTAL s spent)"; fail=$((fail + 1)); return; fi
  echo "== $name (at most $secs s)"; local t0=$SECONDS
  timeout "$secs" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  tail -n 25 "$OUT/$name.log"; echo "== $name: exit $rc in $((SECONDS - t0)) s"; [ $rc -eq 0 ] || fail=$((fail + 1))
}
step env 30 bash -c "nvidia-smi -L; $PY -c 'import torch, transformers; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"available\", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"\"); print(\"transformers\", transformers.__version__); assert torch.cuda.is_available(), \"no CUDA device: the GPU figures below are not GPU figures\"'"
step gpu_check_py 330 $PY benchmarks/gpu_check.py --budget 300 --out "$OUT/gpu_check.json"
for nb in api/04_backbones api/10_legrad api/11_index; do
  step "nb_${nb//\//_}" 60 $PY -m nbdev.test --path "nbs/$nb.ipynb" --flags gpu --do_print
done
step stage_b 120 $PY benchmarks/bench_stage_b.py --skip-cpu --out "$OUT/stage_b.json"
echo "gpu_check: $fail failed step(s); logs and JSON in $OUT"
exit $fail
