#!/usr/bin/env bash
# Reproduces the shipped checkpoints and their comparison tables, on SYNTHETIC data, on a CPU.
#
#   bash checkpoints/reproduce.sh            generate data, train all fourteen models, evaluate, write the tables
#   bash checkpoints/reproduce.sh tables     only evaluate the checkpoints in checkpoints/ and write the tables
#   bash checkpoints/reproduce.sh NAME...    only (re)train these, e.g. clevr-seg-quadrant-inside
#   bash checkpoints/reproduce.sh evaluate NAME...   re-evaluate these shipped checkpoints (test metrics into
#                                            their cards), then write the tables (after checkpoints/choose-by-validation.py --install)
#
# Training data and the held-out test data come from different generator seeds (1 and 1000), so no test
# scene or patient was seen in training. Runs go to runs/<name>/ (logs, resume state); the best checkpoint
# is copied to checkpoints/ and its card gets the test metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
inside() { python -m inside_core "$@"; }

CLEVR_TRAIN="inside data clevr-seg --out data/clevr-seg-train --count 2800 --seed 1 --size 96"
CLEVR_TEST="inside data clevr-seg --out data/clevr-seg-test --count 500 --seed 1000 --size 96"
# ACDC: 30 phantom patients for training; the one testing/ patient only switches the loader to a 90/10 train/val
# split of training/ (27 / 3 patients). The test set is a fresh seed. The three-seed cardiac study that the
# README's cardiac table comes from: checkpoints/acdc-study.sh (same data).
ACDC_TRAIN="inside data acdc --out data/acdc-train --patients 30 --test-patients 1 --seed 1"
ACDC_TEST="inside data acdc --out data/acdc-test --patients 10 --seed 1000"
# the 3-D example's volumes (inside_core.data.cubes3d); training data: the config's data.generate (seed 1)
CUBES_TEST="inside data cubes3d --out data/cubes3d-test --count 200 --seed 1000"
QUADRANT="clevr-seg-quadrant-baseline clevr-seg-quadrant-film clevr-seg-quadrant-guideme clevr-seg-quadrant-inside"
ACDC="acdc-phantom-baseline acdc-phantom-film acdc-phantom-guideme acdc-phantom-inside acdc-phantom-inside-multi"
POINT="clevr-seg-point-guideme clevr-seg-point-inside"
WRAPPED="clevr-seg-quadrant-basicunet-inside"  # MONAI's BasicUNet with INSIDE put in by inside_core.condition
VOLUMES="cubes3d-unet-inside cubes3d-unet-film"  # MONAI's 3-D UNet with 3-D INSIDE or FiLM, generated volumes
ALL="$QUADRANT $POINT $ACDC $WRAPPED $VOLUMES"

generate() {  # generate "<inside data ... --out DIR ...>" unless DIR exists
    local dir
    dir=$(echo "$1" | sed -E 's/.*--out ([^ ]+).*/\1/')
    [ -d "$dir" ] || inside ${1#inside }
}

config_of() { case "$1" in clevr-seg-*) echo "configs/$1-cpu.yaml" ;; *) echo "configs/$1.yaml" ;; esac; }

evaluate() {  # evaluate NAME: test metrics into the checkpoint's card
    case "$1" in
        clevr-seg-*) inside evaluate --checkpoint "checkpoints/$1" --data data/clevr-seg-test --split all \
                       --update-card --data-command "$CLEVR_TEST" --json "runs/$1.test.json" > /dev/null ;;
        acdc-*) inside postprocess --checkpoint "checkpoints/$1" > /dev/null  # the recipe, chosen on validation
                inside evaluate --checkpoint "checkpoints/$1" --data data/acdc-test --split all \
                  --update-card --data-command "$ACDC_TEST" --json "runs/$1.test.json" > /dev/null ;;
        cubes3d-*) inside evaluate --checkpoint "checkpoints/$1" --data data/cubes3d-test --split all \
                     --update-card --data-command "$CUBES_TEST" --json "runs/$1.test.json" > /dev/null ;;
    esac
}

tables() {
    inside compare $(for n in $QUADRANT; do echo "checkpoints/$n"; done) \
        --data data/clevr-seg-test --split all --format all --out checkpoints/table-clevr-seg-quadrant.txt
    inside compare $(for n in $POINT; do echo "checkpoints/$n"; done) \
        --data data/clevr-seg-test --split all --format all --out checkpoints/table-clevr-seg-point.txt
    inside compare checkpoints/clevr-seg-quadrant-inside $(for n in $WRAPPED; do echo "checkpoints/$n"; done) \
        --data data/clevr-seg-test --split all --format all --out checkpoints/table-clevr-seg-quadrant-wrapped.txt
    inside compare $(for n in $VOLUMES; do echo "checkpoints/$n"; done) \
        --data data/cubes3d-test --split all --format all --out checkpoints/table-cubes3d.txt
    inside compare $(for n in $ACDC; do echo "checkpoints/$n"; done) \
        --data data/acdc-test --split all --format all --out checkpoints/table-acdc-phantom.txt
    inside compare $(for n in $ACDC; do echo "checkpoints/$n"; done) --tta \
        --data data/acdc-test --split all --format all --out checkpoints/table-acdc-phantom-tta.txt
    # what the label-free crop costs against the old crop around the labels (ACDC models)
    python checkpoints/acdc-crop-check.py $(for n in $ACDC; do echo "checkpoints/$n"; done) \
        --data data/acdc-test --json checkpoints/acdc-crop-check.json
}

mkdir -p runs
for command in "$CLEVR_TRAIN" "$CLEVR_TEST" "$ACDC_TRAIN" "$ACDC_TEST" "$CUBES_TEST"; do generate "$command"; done

if [ "${1:-}" = "evaluate" ]; then
    shift
    for name in "${@:-$ALL}"; do evaluate "$name"; done
    tables
    exit 0
fi
if [ "${1:-}" = "tables" ]; then
    tables
    exit 0
fi
names="${*:-$ALL}"
for name in $names; do
    inside train --config "$(config_of "$name")" --out "runs/$name"
    cp "runs/$name/$name.safetensors" "runs/$name/$name.json" checkpoints/
    evaluate "$name"
done
tables
