"""The `inside` command line: one sub-command per job (data, train, evaluate, compare, figures).

Each job lives in its own module, which exposes `register(subparsers)` to add its sub-commands;
a sub-command's parser sets `func(args) -> int`, the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# Modules that contribute sub-commands, in the order `inside --help` lists them.
COMMAND_MODULES = [
    "inside_core.data.cli",
    "inside_core.train",
    "inside_core.evaluate",
    "inside_core.postprocess",
    "inside_core.figures",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inside",
        description="INSIDE Explorer: generate and check data, train, evaluate and compare "
        "conditioned segmentation models, and make figures.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
