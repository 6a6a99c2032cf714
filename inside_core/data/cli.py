"""`inside data ...`: generate synthetic datasets in the real layouts, and validate a dataset folder."""

from __future__ import annotations

import argparse
import json
import sys
import time

from inside_core.data.registry import DATASETS, exportable


def _generate(write, describe) -> int:
    """Run a generator; print one line with what was written and how long it took, or one error line."""
    start = time.perf_counter()
    try:
        out = write()
    except (ValueError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {describe} to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _clevr_seg(args: argparse.Namespace) -> int:
    from inside_core.data.generate_clevr_seg import generate_clevr_seg

    return _generate(
        lambda: generate_clevr_seg(args.out, args.count, seed=args.seed, size=args.size, progress=not args.quiet),
        f"{args.count} synthetic CLEVR-Seg scenes ({args.size}x{args.size}, seed {args.seed})",
    )


def _acdc(args: argparse.Namespace) -> int:
    from inside_core.data.generate_acdc import generate_acdc

    return _generate(
        lambda: generate_acdc(args.out, args.patients, seed=args.seed, test_patients=args.test_patients,
                              workers=args.workers,
                              progress=not args.quiet),
        f"{args.patients} + {args.test_patients} synthetic cardiac phantom patients (seed {args.seed}) "
        "in the ACDC layout",
    )


def _lesions(args: argparse.Namespace) -> int:
    from inside_core.data.generate_lesions import generate_lesions

    return _generate(
        lambda: generate_lesions(args.out, args.cases, seed=args.seed, size=args.size),
        f"{args.cases} synthetic lesion cases ({args.size}x{args.size}, seed {args.seed}) in the nnU-Net layout",
    )


def _cubes3d(args: argparse.Namespace) -> int:
    from inside_core.data.cubes3d import write_cubes3d

    return _generate(lambda: write_cubes3d(args.out, args.count, seed=args.seed, side=args.size),
                     f"{args.count} generated two-cube volumes ({args.size}^3, seed {args.seed})")


def _import(args: argparse.Namespace) -> int:
    from inside_core.data.nnunet_convert import import_folder

    return _generate(lambda: import_folder(args.images, args.masks, args.table, args.out, args.conditions,
                                           labels=args.labels), "an nnU-Net-layout dataset")


def _export(args: argparse.Namespace) -> int:
    from inside_core.data.nnunet_convert import export_dataset

    return _generate(lambda: export_dataset(args.kind, args.data, args.out, condition=args.condition,
                                            seed=args.seed, limit=args.limit, image_size=args.image_size,
                                            spacing=args.spacing),
                     f"the {args.kind} data in the nnU-Net layout")


def _validate(args: argparse.Namespace) -> int:
    from inside_core.data.validate import validate

    try:
        report = validate(args.path, args.format)
    except Exception as error:  # a validator must never print a traceback
        report = None
        message = f"{args.path}: validation failed ({type(error).__name__}: {error})"
    if report is None:
        if args.json:
            print(json.dumps({"format": args.format, "root": args.path, "ok": False, "checked": 0, "errors": 1,
                              "warnings": 0, "problems": [{"path": args.path, "problem": message,
                                                           "severity": "error"}]}, indent=1))
        else:
            print(f"error: {message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=1))
    else:
        for problem in report.problems:
            print(problem.line())
        unit = DATASETS[report.format].unit if report.format in DATASETS else "items"
        verdict = "OK" if report.ok else "FAILED"
        print(f"{verdict}: {report.format} at {report.root}: {report.checked} {unit} checked, "
              f"{len(report.errors)} errors, {len(report.warnings)} warnings")
    return 0 if report.ok else 1


def _defaults(args: argparse.Namespace) -> int:
    from inside_core.data.defaults import prepare_default_data

    for kind, folder in prepare_default_data(progress=not args.quiet).items():
        print(f"{kind}: {folder}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command group: clevr-seg, acdc, validate."""
    data = subparsers.add_parser("data", help="generate synthetic data in the real layouts; validate a dataset",
                                 description="Generate synthetic CLEVR-Seg / ACDC data in the real datasets' "
                                 "layouts, or check a dataset folder.")
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])

    clevr = commands.add_parser("clevr-seg", help="write synthetic CLEVR-Seg scenes (CLEVR-Seg layout)")
    clevr.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    clevr.add_argument("--count", type=int, required=True, help="number of images")
    clevr.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical output)")
    clevr.add_argument("--size", type=int, default=200, help="image side in pixels (default 200)")
    clevr.add_argument("--quiet", action="store_true", help="no progress bar")
    clevr.set_defaults(func=_clevr_seg)

    acdc = commands.add_parser("acdc", help="write a synthetic cardiac phantom (ACDC layout)")
    acdc.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    acdc.add_argument("--patients", type=int, required=True, help="number of patients under training/")
    acdc.add_argument("--test-patients", type=int, default=0, help="number of patients under testing/ (default 0)")
    acdc.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical output)")
    acdc.add_argument("--workers", type=int, default=1, help="processes writing patients in parallel "
                      "(default 1: two threads in one process; "
                      "the files are the same whatever the number)")
    acdc.add_argument("--quiet", action="store_true", help="no progress bar")
    acdc.set_defaults(func=_acdc)

    lesions = commands.add_parser("lesions", help="write synthetic lesion slices (nnU-Net layout + conditions table)")
    lesions.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    lesions.add_argument("--cases", type=int, required=True, help="number of cases")
    lesions.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical output)")
    lesions.add_argument("--size", type=int, default=96, help="image side in pixels (default 96)")
    lesions.set_defaults(func=_lesions)

    cubes = commands.add_parser("cubes3d", help="write generated 3-D volumes with two cubes, z naming one "
                                "(inside_core.data.cubes3d)")
    cubes.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    cubes.add_argument("--count", type=int, required=True, help="number of volumes")
    cubes.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical output)")
    cubes.add_argument("--size", type=int, default=16, help="volume side in voxels (default 16)")
    cubes.set_defaults(func=_cubes3d)

    imp = commands.add_parser("import", help="build the nnU-Net layout from a folder of images, masks and a CSV",
                              description="Images and masks are paired by file stem; the CSV's first column "
                              "(or 'case') names the stem. Variables are declared with --conditions.")
    imp.add_argument("--images", required=True, help="folder of images (.png or .nii.gz)")
    imp.add_argument("--masks", required=True, help="folder of integer masks, same stems as the images")
    imp.add_argument("--table", help="CSV or TSV of non-imaging variables, one row per image")
    imp.add_argument("--conditions", help="JSON file (or text) declaring the variables (default: guessed "
                     "from the table: numbers continuous over their range, text categorical)")
    imp.add_argument("--labels", help="JSON label names to values (default: background 0, label_k k)")
    imp.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    imp.set_defaults(func=_import)

    exp = commands.add_parser("export", help="write CLEVR-Seg (one condition) or ACDC data in the nnU-Net layout")
    exp.add_argument("kind", choices=exportable())
    exp.add_argument("--data", required=True, help="the CLEVR-Seg or ACDC folder")
    exp.add_argument("--out", required=True, help="output folder (must not exist, or be empty)")
    exp.add_argument("--condition", default="point", help="CLEVR-Seg: the condition to export (default point)")
    exp.add_argument("--seed", type=int, default=0,
                     help="seed of the source loader: CLEVR-Seg's per-image condition draw, ACDC's patient split")
    exp.add_argument("--limit", type=int, help="at most this many images / patients")
    exp.add_argument("--image-size", type=int, help="the source loader's image size (default: CLEVR-Seg's own "
                     "size, ACDC 128); train the export at this size to get the same pixels")
    exp.add_argument("--spacing", type=float, help="ACDC: in-plane spacing in mm (default 1.37)")
    exp.set_defaults(func=_export)

    check = commands.add_parser("validate", help="check a CLEVR-Seg, ACDC, nnU-Net-layout or cubes3d folder, "
                                "report every problem")
    check.add_argument("path", help="dataset folder")
    check.add_argument("--format", choices=list(DATASETS), default=None, help="default: detected")
    check.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    check.set_defaults(func=_validate)

    defaults = commands.add_parser("defaults", help="generate the offline default synthetic datasets (cache folder)")
    defaults.add_argument("--quiet", action="store_true", help="no progress bar")
    defaults.set_defaults(func=_defaults)
