"""Every recipe in configs/ validates, and the GPU recipes document their hardware and fit it (each documented
`rlvr plan` command is run by tests/test_docs_examples.py, which fails unless the plan fits)."""
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.cli import main as rlvr
from cluster.config import load_config
from doc_examples import commands

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("eval_"))  # eval recipes: test_evaluate
GPU_RECIPES = [p for p in RECIPES if p.name.startswith("gpu_")]


def header(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return "\n".join(lines)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(path):
    load_config(path)


def documented_plan_commands(path: Path) -> list[list[str]]:
    """The `rlvr plan ...` commands written in a recipe's header, as argv after `plan`."""
    return [argv[1:] for source, argv in commands() if source == path.name and argv[0] == "plan"]


def test_all_four_gpu_recipes_exist():
    assert {p.name for p in GPU_RECIPES} >= {"gpu_qwen05b_gsm8k_grpo.yaml", "gpu_qwen15b_math_dapo.yaml",
                                             "gpu_qwen7b_r1zero_ppo.yaml", "gpu_code_mbpp.yaml"}


@pytest.mark.parametrize("path", GPU_RECIPES, ids=lambda p: p.name)
def test_gpu_recipe_header_documents_hardware_behaviour_and_commands(path):
    h = header(path)
    for needed in ("Hardware:", "Expected behaviour", "rlvr plan configs/" + path.name, "local path"):
        assert needed in h, f"{path.name}: header lacks {needed!r}"
    assert "rlvr train" in h or "rlvr submit" in h
    assert load_config(path).rollout.device == "cuda"


def test_7b_recipe_documents_16_and_64_gpu_plans():
    sizes = set()
    for argv in documented_plan_commands(REPO / "configs" / "gpu_qwen7b_r1zero_ppo.yaml"):
        nodes, per_node = int(argv[argv.index("--nodes") + 1]), int(argv[argv.index("--gpus-per-node") + 1])
        sizes.add(nodes * per_node)
    assert sizes == {16, 64}


@pytest.mark.parametrize("argv,reason", [
    (["configs/gpu_qwen7b_r1zero_ppo.yaml", "--nodes", "1", "--gpus-per-node", "8"], "needs 16 GPUs"),
    (["configs/gpu_qwen7b_r1zero_ppo.yaml", "rollout.tensor_parallel_size=16", "--nodes", "4"],
     "must stay within one node"),
    (["configs/gpu_qwen05b_gsm8k_grpo.yaml", "learner.micro_batch_tokens=65536", "--nodes", "1",
      "--gpus-per-node", "1", "--gpu-memory-gib", "24"], "exceeds --gpu-memory-gib=24"),
])
def test_rlvr_plan_rejects_impossible_variants_with_a_reason(argv, reason, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert rlvr(["plan", *argv]) == 2
    out = capsys.readouterr().out
    assert "rejected:" in out and reason in out and "plan does not fit" in out


def test_rlvr_plan_command_line_exit_code():
    cmd = [sys.executable, "-m", "cluster.cli", "plan", "configs/gpu_qwen15b_math_dapo.yaml", "--nodes", "1",
           "--gpus-per-node", "4"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "needs 8 GPUs" in r.stdout, r.stdout + r.stderr
