#!/usr/bin/env bash
# The cardiac study (README "Cardiac: does conditioning help?"): the five ACDC models x three seeds on the
# SYNTHETIC phantom, plus baseline and INSIDE trained on 10 and 20 labelled patients, then
# `python -m inside_core.acdc_study` on 20 fresh phantom patients. Sized for one GPU and ~16 CPU cores
# (it ran on one H200 in about 6 minutes); on a CPU it runs too, ~20 min per model per seed.
#   checkpoints/acdc-study.sh OUTDIR [MAX_MINUTES]
set -euo pipefail
out=${1:?usage: acdc-study.sh OUTDIR [MAX_MINUTES]}
minutes=${2:-4}
workers=$(nproc)
mkdir -p "$out/runs" "$out/logs"
export INSIDE_CACHE_DIR="$out/cache" PYTHONUNBUFFERED=1
[ -d data/acdc-train ] || python -m inside_core data acdc --out data/acdc-train --patients 80 --test-patients 1 \
  --seed 1 --workers "$workers" --quiet
[ -d data/acdc-eval ] || python -m inside_core data acdc --out data/acdc-eval --patients 20 --seed 7 \
  --workers "$workers" --quiet
# preprocess every patient once, in parallel (the runs below then read the cache)
python - "$workers" <<'PY'
import sys
from multiprocessing import Pool
from inside_core.data.acdc import AcdcDataset, find_patient_folders

def warm(folder):
    AcdcDataset(folder, split="all")

folders = [f for root in ("data/acdc-train", "data/acdc-eval") for fs in find_patient_folders(root).values() for f in fs]
with Pool(int(sys.argv[1])) as pool:
    pool.map(warm, folders)
print(f"preprocessed {len(folders)} patients", flush=True)
PY
run() {  # config name seed out extra...
  local config=$1 name=$2 seed=$3 dir=$4; shift 4
  python -m inside_core train --config "configs/$config.yaml" --name "$name-seed$seed" --seed "$seed" \
    --out "$out/runs/$dir/$name-seed$seed" --threads 1 --max-minutes "$minutes" "$@" > "$out/logs/$name-seed$seed.log" 2>&1 &
}
for seed in 0 1 2; do
  for model in baseline film guideme inside inside-multi; do
    run "acdc-phantom-$model" "acdc-phantom-$model" "$seed" main --epochs 60
  done
  for n in 10 20; do
    for model in baseline inside; do
      run "acdc-phantom-$model" "acdc$n-$model" "$seed" "patients$n" --train-patients "$n" --epochs 400
    done
  done
done
wait
tail -n 2 "$out"/logs/*.log
for dir in main patients10 patients20; do  # one folder per run (one run per --out); the study reads them flat
  mkdir -p "$out/checkpoints/$dir"
  cp "$out"/runs/$dir/*/*.safetensors "$out"/runs/$dir/*/*.json "$out/checkpoints/$dir/"
  python -m inside_core.acdc_study --checkpoints "$out/checkpoints/$dir" --data data/acdc-eval --split all \
    --json "$out/study-$dir.json" --markdown "$out/study-$dir.md"
done
