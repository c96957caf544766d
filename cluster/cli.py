"""The `rlvr` command line.

    rlvr train configs/local.yaml                       # local Ray runtime, the embedded CPU default
    rlvr train configs/local.yaml sampling.n=8 --resume  # dotted overrides; continue the latest checkpoint
    rlvr train CONFIG --address auto                    # join an existing Ray cluster
    rlvr submit --address http://HEAD:8265 CONFIG       # Ray job submission; follows the logs
    rlvr submit --address http://HEAD:8265 --status JOB_ID | --stop JOB_ID | --logs JOB_ID
    rlvr eval configs/eval_local.yaml model.path=runs/local-20261129-103000/checkpoints/step-000040
    rlvr config show CONFIG [overrides]                 # the resolved, validated config (train or eval)
    rlvr plot RUN_DIR                                   # training-curve PNGs from metrics.jsonl
    rlvr plan CONFIG --nodes 2 --gpus-per-node 8        # placement and memory plan, no GPU needed
    rlvr verify-audit [CASES.jsonl]                     # math graders vs labelled cases (needs math-verify)

Heavy imports (Ray, vLLM, DeepSpeed) happen inside the subcommand that needs them, so `--help` is instant.
"""
from __future__ import annotations

import argparse
import sys
import traceback

OVERRIDES_HELP = "dotted overrides KEY.PATH=VALUE, e.g. sampling.n=8 algo.advantage=rloo (values parsed as YAML)"


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML recipe, e.g. configs/local.yaml")
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlvr", description="RL from verifiable rewards: vLLM actors, DeepSpeed learner, rule-based verifiers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="run an RL training job (local Ray runtime unless --address is given)",
                       description="Validate CONFIG, start or join Ray, and run the RL loop. Outputs go to "
                                   "output.dir/<run name>/ (config, metrics.jsonl, plots, checkpoints, report).")
    _add_config_args(p)
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto' or HOST:PORT; default: $RAY_ADDRESS, else a local runtime)")
    p.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint of the run")

    p = sub.add_parser("eval", help="evaluate a model or checkpoint (pass@k, maj@k, accuracy vs token budget)",
                       description="Generate with the vLLM pool, score with rewards/, write results.json, "
                                   "samples.jsonl and plots to the run directory.")
    _add_config_args(p)
    p.add_argument("--address", default=None, help="Ray cluster to join (default: local runtime)")

    p = sub.add_parser("submit", help="submit a training job to a Ray cluster via its job API, or query/stop one",
                       description="Submit CONFIG as a Ray job (working dir and config carried in the runtime "
                                   "environment), print the job id and follow its logs.")
    p.add_argument("--address", required=True, help="Ray dashboard address, e.g. http://HEAD:8265")
    p.add_argument("config", nargs="?", help="YAML recipe to submit")
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    p.add_argument("--status", metavar="JOB_ID", help="print the status of a submitted job")
    p.add_argument("--stop", metavar="JOB_ID", help="stop a submitted job")
    p.add_argument("--logs", metavar="JOB_ID", help="print a submitted job's logs so far")
    p.add_argument("--python", default=None,
                   help="Python that runs the job and its workers on the cluster (default: the one running rlvr)")
    p.add_argument("--no-follow", action="store_true", help="return after printing the job id")

    p = sub.add_parser("config", help="config tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = csub.add_parser("show", help="print the resolved, validated config (training or eval)",
                           description="Load CONFIG, apply overrides, validate, and print the result as YAML. "
                                       "An eval config (top-level datasets: or models:) is read as one.")
    _add_config_args(show)

    p = sub.add_parser("plot", help="write training-curve PNGs for a run directory")
    p.add_argument("run_dir", help="a run directory containing metrics.jsonl")

    p = sub.add_parser("plan", help="print the placement and per-GPU memory plan of a config",
                       description="Place engines (with tensor-parallel groups), learner ranks, reference and "
                                   "critic on nodes and GPUs; estimate memory; reject impossible layouts.")
    _add_config_args(p)
    p.add_argument("--nodes", type=int, default=1, help="nodes in the cluster")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node")
    p.add_argument("--gpu-memory-gib", type=float, default=80.0, help="memory per GPU")

    p = sub.add_parser("verify-audit", help="rlvr's math verifier, math-verify and a Qwen-style grader vs labels",
                       description="Confusion matrix, agreement, timeouts and disagreements of each grader on "
                                   "labelled (prediction, gold, verdict) cases (cluster/eval/verify_audit.py).")
    p.add_argument("cases", nargs="?", help="JSONL case file (default: tests/fixtures/verifier_cases.jsonl)")
    p.add_argument("--show", type=int, default=10, help="disagreements listed per grader")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per grader call")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from cluster.config_error import ConfigError
    from cluster.data.problem import DatasetError

    try:
        return _dispatch(args) or 0
    except (ConfigError, DatasetError) as e:  # bad input, found before any actor starts
        print(f"rlvr: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int | None:
    if args.command == "config":
        from cluster.config import load_config, to_yaml
        from cluster.eval.config import is_eval_config, load_eval_config
        from cluster.overrides import load_yaml

        load = load_eval_config if is_eval_config(load_yaml(args.config)) else load_config
        print(to_yaml(load(args.config, args.overrides)), end="")
        return 0
    if args.command == "train":
        from cluster.config import load_config
        from cluster.train import TrainingAborted, run_training

        cfg = load_config(args.config, args.overrides)
        try:
            return run_training(cfg, config_path=args.config, address=args.address, resume=args.resume)
        except TrainingAborted as e:
            if e.__cause__ is not None:
                traceback.print_exception(e.__cause__)  # the fault itself, for debugging
            print(f"rlvr: {e}", file=sys.stderr)
            return 1
    if args.command == "eval":
        from cluster.eval.config import load_eval_config
        from cluster.eval.harness import run_eval

        cfg = load_eval_config(args.config, args.overrides)
        return run_eval(cfg, address=args.address)
    if args.command == "submit":
        from cluster.submit import submit_main

        return submit_main(args)
    if args.command == "plot":
        from cluster.run_report import plot_run

        for path in plot_run(args.run_dir):
            print(path)
        return 0
    if args.command == "plan":
        from cluster.config import load_config
        from cluster.plan.print_plan import plan_main

        return plan_main(load_config(args.config, args.overrides), args.nodes, args.gpus_per_node,
                         args.gpu_memory_gib)
    if args.command == "verify-audit":
        from cluster.eval.verify_audit import AuditError, main as audit_main

        try:
            return audit_main(args.cases, args.show, args.timeout)
        except AuditError as e:
            print(f"rlvr: {e}", file=sys.stderr)
            return 2
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
