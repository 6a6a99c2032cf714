"""`inside data ...`: generate synthetic datasets in the real layouts, and validate a dataset folder."""

from __future__ import annotations

import argparse
import sys
import time


def _clevr_seg(args: argparse.Namespace) -> int:
    from inside_core.data.generate_clevr_seg import generate_clevr_seg

    start = time.perf_counter()
    try:
        out = generate_clevr_seg(args.out, args.count, seed=args.seed, size=args.size, progress=not args.quiet)
    except (ValueError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.count} synthetic CLEVR-Seg scenes ({args.size}x{args.size}, seed {args.seed}) to {out} "
          f"in {time.perf_counter() - start:.1f} s")
    return 0


def _acdc(args: argparse.Namespace) -> int:
    from inside_core.data.generate_acdc import generate_acdc

    start = time.perf_counter()
    try:
        out = generate_acdc(args.out, args.patients, seed=args.seed, test_patients=args.test_patients,
                            progress=not args.quiet)
    except (ValueError, FileExistsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.patients} + {args.test_patients} synthetic cardiac phantom patients (seed {args.seed}) "
          f"in the ACDC layout to {out} in {time.perf_counter() - start:.1f} s")
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
    acdc.add_argument("--quiet", action="store_true", help="no progress bar")
    acdc.set_defaults(func=_acdc)
