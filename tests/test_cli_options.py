"""The command line: options shared by subcommands defined once, `stts train --help` in groups."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import stts.cli
from stts.choices import PRECISIONS
from stts.cli import build_parser
from stts.cli.options import OPTIONS, SEED_FLAGS
from stts.runtime import PRECISIONS as RUNTIME_PRECISIONS

CLI = Path(stts.cli.__file__).parent


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_no_shared_option_is_defined_outside_options_py():
    spellings = {spelling for option in OPTIONS.values() for spelling in (option.flag, *option.aliases)}
    for path in CLI.glob("*.py"):
        if path.name == "options.py":
            continue
        for flag in re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", path.read_text()):
            assert flag not in spellings, f"{path.name} defines {flag} again; use options.add"


def test_every_command_spells_a_shared_option_the_same_way_with_the_same_type():
    seen: dict[str, tuple] = {}
    for command, parser in subcommands().items():
        for action in parser._actions:
            if action.dest not in OPTIONS or not action.option_strings:
                continue
            option = OPTIONS[action.dest]
            allowed = {option.flag, *option.aliases, "--" + action.dest, SEED_FLAGS.get(action.dest)}
            allowed |= {"--no-" + s[2:] for s in set(allowed) if s}
            assert set(action.option_strings) <= allowed, (command, action.option_strings)
            kind = (action.type, type(action).__name__)
            assert seen.setdefault(action.dest, kind) == kind, (command, action.dest)
    assert {"device", "precision", "batch_size", "workers", "data_type", "model_type"} <= set(seen)
    assert PRECISIONS == RUNTIME_PRECISIONS


def test_train_help_is_in_groups_and_the_seed_flags_still_parse(capsys):
    parser = subcommands()["train"]
    titles = [group.title for group in parser._action_groups]
    for title in ("data", "clip and input", "network", "recipe", "run and logging",
                  "compatibility with the original train.py"):
        assert title in titles
    text = parser.format_help()
    assert "--clip_len" not in text and "--batch_size" in text  # other underscore spellings hidden, the seed's listed
    args = build_parser().parse_args(["train", "--data_type", "hmdb51", "--num_epochs", "3", "--batch_size", "4",
                                      "--gpu_ids", "0", "--model_type", "c3d", "--clip_len", "8", "--normalization",
                                      "clip", "--no-tensorboard"])
    assert (args.data_type, args.epochs, args.batch_size, args.gpu_ids, args.model_type) == ("hmdb51", 3, 4, "0", "c3d")
    assert (args.clip_len, args.normalisation, args.tensorboard) == (8, "clip", False)


def test_as_the_process_command_the_collector_is_frozen_and_on_and_a_list_leaves_it_alone():
    """`stts` as a process freezes the long-lived objects of its imports (a quarter of a short `stts infer`'s
    wall time went to collecting over them); collection itself stays on for the command, and a caller passing
    a list (the tests, the API) keeps its collector as it was."""
    script = ("import gc, sys; from stts.cli import main; frozen = gc.get_freeze_count(); "
              "code = main(['models']); after_list = gc.get_freeze_count(); sys.argv = ['stts', 'models']; "
              "code += main(); print(code, frozen == after_list, gc.isenabled(), gc.get_freeze_count() > after_list)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 True True True"
