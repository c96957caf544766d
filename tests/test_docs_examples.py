"""Every example the docs give works, so the docs cannot drift from the code.

tests/doc_examples.py extracts every `rlvr ...` command and every dotted `key.path=value` override from
README.md, docs/*.md, bench/README.md, the comments of configs/*.yaml and the strings of cluster/*.py. Each
command must parse with the real argparse parser; one naming a recipe in configs/ must validate with its
overrides (train, submit, config show, plan: the training schema; eval: the eval schema); `config show`, `plan`
and `--help` ones are run. A free-standing override must validate against at least one recipe in configs/.
Placeholders (CONFIG, JOB_ID, runs/<run>) only parse: there is nothing to validate them against.
"""
import re
import shlex
from pathlib import Path

import pytest

from cluster.cli import build_parser, main
from cluster.config import load_config
from cluster.config_error import ConfigError
from cluster.eval.config import load_eval_config
from doc_examples import commands, overrides

REPO = Path(__file__).resolve().parent.parent
EVAL_RECIPE = REPO / "configs" / "eval_local.yaml"
TRAIN_RECIPES = sorted(p for p in (REPO / "configs").glob("*.yaml") if p != EVAL_RECIPE)


def _validate(argv: list[str]) -> None:
    """Load the recipe a command names with its overrides, as the command would (ConfigError if invalid)."""
    args = build_parser().parse_args(argv)
    config = getattr(args, "config", None)
    if config is None or not (REPO / config).is_file():
        return  # a placeholder such as CONFIG: parsing is all there is to check
    loader = load_eval_config if args.command == "eval" else load_config
    loader(REPO / config, args.overrides)


def test_the_extractor_finds_the_documented_examples():
    cmds, ovs = commands(), overrides()
    assert len(cmds) >= 30 and len(ovs) >= 10, (len(cmds), len(ovs))
    assert ("README.md", ["train", "configs/local.yaml", "sampling.n=16", "algo.advantage=rloo"]) in cmds
    assert ("gpu_qwen7b_r1zero_ppo.yaml", ["plan", "configs/gpu_qwen7b_r1zero_ppo.yaml", "rollout.num_engines=32",
            "learner.num_ranks=32", "--nodes", "8", "--gpus-per-node", "8", "--gpu-memory-gib", "80"]) in cmds
    assert ("eval_local.yaml", "datasets=[{name: gsm8k, limit: 200}]") in ovs


def test_every_documented_command_parses_and_validates():
    failures = []
    for source, argv in commands():
        try:
            _validate(argv)
        except SystemExit as e:  # argparse: a usage error (or --help, which exits 0)
            if e.code != 0:
                failures.append(f"{source}: rlvr {shlex.join(argv)}: does not parse")
        except ConfigError as e:
            failures.append(f"{source}: rlvr {shlex.join(argv)}: {e}")
    assert failures == []


def test_every_documented_override_validates_against_a_recipe():
    failures = []
    for source, item in overrides():
        errors = []
        for recipe in TRAIN_RECIPES + [EVAL_RECIPE]:
            extra = ["model.path=x"] if recipe == EVAL_RECIPE and not item.startswith("model") else []
            try:
                (load_eval_config if recipe == EVAL_RECIPE else load_config)(recipe, [item, *extra])
                break
            except ConfigError as e:
                errors.append(str(e))
        else:
            failures.append(f"{source}: {item}: {errors[0]}")
    assert failures == []


def runnable(argv: list[str]) -> bool:
    """`--help`, or `config show` / `plan` naming a recipe that exists (not a placeholder such as CONFIG)."""
    config = argv[2] if argv[:2] == ["config", "show"] else argv[1] if argv[0] == "plan" else None
    return argv == ["--help"] or (config is not None and (REPO / config).is_file())


@pytest.mark.parametrize("argv", sorted({tuple(a) for _, a in commands() if runnable(a)}))
def test_documented_help_config_show_and_plan_commands_run(argv, capsys):
    try:
        rc = main([str(REPO / a) if a.endswith(".yaml") else a for a in argv])
    except SystemExit as e:  # --help
        rc = e.code
    out = capsys.readouterr()
    assert rc == 0, out.out[-2000:] + out.err[-2000:]  # a plan returns 2 when it does not fit
    assert "plan fits" in out.out if argv[0] == "plan" else out.out.strip()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    command = re.search(r"^# 2\. .*\n(.+)$", readme, re.M).group(1).strip()
    assert command == "bash .ci/setup && .venv/bin/python -m pytest"
    assert command in (REPO / ".ci" / "run").read_text().splitlines()
