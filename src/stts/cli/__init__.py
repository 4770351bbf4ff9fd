"""The ``stts`` command: argument parsing only; each subcommand lives in its own module here.

A command's module is imported only when that command runs (or when ``stts --help`` lists them all),
so that ``stts infer`` does not pay for the training, serving or export code at start-up.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys

from .. import __version__
from ..errors import SttsError

# command -> the module here that defines add_parser(subparsers), which sets the subcommand's func
COMMANDS = {"models": "models", "prepare": "prepare", "train": "train", "evaluate": "evaluate", "infer": "infer",
            "export": "export", "serve": "serve", "convert": "convert", "show-clips": "show_clips"}


RESUME_HINTS = {"prepare": "; run the same command again to finish: the videos already stored are kept"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command (``only`` None), or of command ``only`` alone (what one run needs; "" for none)."""
    parser = argparse.ArgumentParser(prog="stts", description="Spatio-temporal networks for action recognition in video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, module in COMMANDS.items():
        if only is None or command == only:
            importlib.import_module(f".{module}", __name__).add_parser(subparsers)
    return parser


def command_named(argv: list[str]) -> str | None:
    """The command ``argv`` runs: its first word when that is a command (no top-level option takes a value)."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    """Runs the command ``argv`` (the process's arguments when None) and returns its exit status.

    Run as the process's command (``argv`` None), the garbage collector is off while the command's modules are
    imported, and what exists after the imports and after the command is frozen (``gc.freeze``): importing torch
    makes hundreds of thousands of objects that live until the process ends, and collecting over them again and
    again cost ~0.1 s of the imports and ~0.3 s of the interpreter's exit (torch 2.13, a 2-core CPU): a
    quarter of a short ``stts infer``. The tests call ``main`` with a list and keep the collector as it is.
    """
    as_process = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_named(argv)
    # `stts --version` needs no command's parser: building them all imports torch (seconds)
    only = "" if command is None and "--version" in argv else command
    if as_process:
        gc.disable()
    try:
        args = build_parser(only).parse_args(argv)
    finally:
        if as_process:
            gc.freeze()
            gc.enable()
    try:
        return run_command(args)
    finally:
        if as_process:
            gc.freeze()


def run_command(args: argparse.Namespace) -> int:
    try:
        return args.func(args) or 0
    except SttsError as error:
        print(f"stts {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a folder that cannot be written (read-only, full, a path through a file) and the like
        where = " -> ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
        reason = error.strerror or str(error)
        if isinstance(error, (FileExistsError, NotADirectoryError)):
            reason += " (a file where a folder is needed)"
        print(f"stts {args.command}: error: {where + ': ' if where else ''}{reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = RESUME_HINTS.get(args.command, "")
        print(f"stts {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
