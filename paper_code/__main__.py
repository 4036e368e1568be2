"""Command line: ``python -m paper_code <command> ...`` (``--help`` lists the commands)."""

from __future__ import annotations

import argparse
import sys


def _cmd_notebook(args: argparse.Namespace) -> int:
    from .notebooks import run_notebook

    target = run_notebook(args.name, args.scale, args.out_dir, progress=not args.quiet)
    print(f"executed {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m paper_code", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    nb = sub.add_parser("notebook", help="execute a notebook at a scale (what the DVC stages run)")
    nb.add_argument("name", help="notebook name, e.g. 00_environment")
    nb.add_argument("--scale", choices=["quick", "paper"], default="quick")
    nb.add_argument("--out-dir", default=None, help="output folder (default: the scale's out_dir in params.yaml)")
    nb.add_argument("--quiet", action="store_true", help="no progress bar")
    nb.set_defaults(func=_cmd_notebook)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
