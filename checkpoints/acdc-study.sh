#!/usr/bin/env bash
# The cardiac study (README "Cardiac: does conditioning help?"): the five ACDC models x three seeds on the
# SYNTHETIC phantom, then `python -m inside_core.acdc_study` on fresh phantom patients (data/acdc-test, generator seed 1000, the
# test set of checkpoints/reproduce.sh).
#   checkpoints/acdc-study.sh OUTDIR [MAX_MINUTES_PER_RUN]
# Environment: PARALLEL (runs at a time, default nproc), WARM_START=1 (start each main run from the shipped
# checkpoints/acdc-phantom-<model> weights), FEW_PATIENTS=1 (also baseline and INSIDE on 10 and 20
# labelled patients, always from random weights: the shipped ones saw 27), FEW_SEEDS (default: SEEDS),
# FEW_MINUTES (their time limit, default MAX_MINUTES_PER_RUN), EVAL_PATIENTS (default 10), SEEDS (default
# "0 1 2"), EPOCHS (default 60; the few-patient runs get 400).
set -euo pipefail
out=${1:?usage: acdc-study.sh OUTDIR [MAX_MINUTES_PER_RUN]}
minutes=${2:-4}
workers=$(nproc)
parallel=${PARALLEL:-$workers}
mkdir -p "$out/runs" "$out/logs"
export INSIDE_CACHE_DIR=${INSIDE_CACHE_DIR:-$out/cache} PYTHONUNBUFFERED=1
[ -d data/acdc-train ] || python -m inside_core data acdc --out data/acdc-train --patients 30 --test-patients 1 \
  --seed 1 --workers "$workers" --quiet
[ -d data/acdc-test ] || python -m inside_core data acdc --out data/acdc-test --patients "${EVAL_PATIENTS:-10}" \
  --seed 1000 --workers "$workers" --quiet
# preprocess every patient once, in parallel (the runs below then read the cache)
python - "$workers" <<'PY'
import sys
from multiprocessing import Pool
from inside_core.data.acdc import AcdcDataset, find_patient_folders

def warm(folder):
    AcdcDataset(folder, split="all")

folders = [f for root in ("data/acdc-train", "data/acdc-test") for fs in find_patient_folders(root).values() for f in fs]
with Pool(int(sys.argv[1])) as pool:
    pool.map(warm, folders)
print(f"preprocessed {len(folders)} patients", flush=True)
PY
run() {  # config name seed folder minutes extra...: at most $parallel runs at a time, one --out folder each
  local config=$1 name=$2 seed=$3 dir=$4 limit=$5; shift 5
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  local init=()
  [ "${WARM_START:-0}" = 1 ] && [ "$dir" = main ] && init=(--init "checkpoints/$config.safetensors")
  python -m inside_core train --config "configs/$config.yaml" --name "$name-seed$seed" --seed "$seed" \
    --out "$out/runs/$dir/$name-seed$seed" --threads 1 --max-minutes "$limit" "${init[@]}" "$@" \
    > "$out/logs/$name-seed$seed.log" 2>&1 &
}
dirs=(main)
for seed in ${SEEDS:-0 1 2}; do
  for model in baseline film guideme inside inside-multi; do
    run "acdc-phantom-$model" "acdc-phantom-$model" "$seed" main "$minutes" --epochs "${EPOCHS:-60}"
  done
done
if [ "${FEW_PATIENTS:-1}" = 1 ]; then
  dirs=(main patients10 patients20)
  for seed in ${FEW_SEEDS:-${SEEDS:-0 1 2}}; do
    for n in 10 20; do
      for model in baseline inside; do
        run "acdc-phantom-$model" "acdc$n-$model" "$seed" "patients$n" "${FEW_MINUTES:-$minutes}" \
          --train-patients "$n" --epochs 400
      done
    done
  done
fi
wait
tail -n 2 "$out"/logs/*.log
for dir in "${dirs[@]}"; do  # the study reads each setting's checkpoints from one flat folder
  mkdir -p "$out/checkpoints/$dir"
  cp "$out"/runs/"$dir"/*/*.safetensors "$out"/runs/"$dir"/*/*.json "$out/checkpoints/$dir/"
  for checkpoint in "$out/checkpoints/$dir"/*.safetensors; do  # each run's recipe, chosen on its validation split
    python -m inside_core postprocess --checkpoint "$checkpoint" > /dev/null
  done
  python -m inside_core.acdc_study --checkpoints "$out/checkpoints/$dir" --data data/acdc-test --split all --tta \
    --json "$out/study-$dir.json" --markdown "$out/study-$dir.md"
done
