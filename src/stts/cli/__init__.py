"""The ``stts`` command: argument parsing only; each subcommand lives in its own module here."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import SttsError
from . import convert, evaluate, export, infer, models, prepare, serve, show_clips, train

# each module defines add_parser(subparsers), which sets the subcommand's func
COMMANDS = [models, prepare, train, evaluate, infer, export, serve, convert, show_clips]


RESUME_HINTS = {"prepare": "; run the same command again to finish: the videos already stored are kept"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stts", description="Spatio-temporal networks for action recognition in video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except SttsError as error:
        print(f"stts {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = RESUME_HINTS.get(args.command, "")
        print(f"stts {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
