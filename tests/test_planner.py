"""The placement planner (cluster/plan/planner.py) and model shapes (cluster/plan/model_specs.py): pure, no GPU."""
import json
from pathlib import Path

import pytest

from cluster.config import load_config
from cluster.config_error import ConfigError
from cluster.placement import gpu_slots, required_resources
from cluster.plan.model_specs import model_spec, params_from_config, safetensors_params
from cluster.plan.planner import GIB, kv_sequences, plan
from cluster.plan.print_plan import plan_main

REPO = Path(__file__).resolve().parents[1]
DAPO = REPO / "configs" / "gpu_qwen15b_math_dapo.yaml"  # 4 engines + 4 learner ranks of Qwen2.5-1.5B
PPO_7B = REPO / "configs" / "gpu_qwen7b_r1zero_ppo.yaml"


def cfg(path=DAPO, *overrides):
    return load_config(path, list(overrides))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A local HF directory (tied embeddings, Qwen2 with q/k/v biases) and its parameter count per torch."""
    from transformers import AutoModelForCausalLM

    from tiny_models import make_tiny_qwen2

    path = Path(make_tiny_qwen2(tmp_path_factory.mktemp("tiny"), hidden=64, layers=3))
    return path, sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())


def test_param_count_from_config_equals_safetensors_tensor_sizes(tiny_dir):
    path, torch_count = tiny_dir
    assert safetensors_params(path) == torch_count
    assert params_from_config(json.loads((path / "config.json").read_text())) == torch_count
    spec = model_spec(str(path))
    assert (spec.params, spec.source, spec.tied) == (torch_count, "safetensors", True)


@pytest.mark.parametrize("hub_id,published_b", [("Qwen/Qwen2.5-0.5B-Instruct", 0.49), ("Qwen/Qwen2.5-1.5B", 1.54),
                                                 ("Qwen/Qwen2.5-Math-7B", 7.61)])
def test_known_hub_ids_match_published_parameter_counts(hub_id, published_b):
    # Published sizes: the Qwen2.5 model cards ("Number of Parameters").
    assert model_spec(hub_id).params / 1e9 == pytest.approx(published_b, abs=0.01)


def test_unknown_model_error_lists_known_ids_and_the_fix():
    with pytest.raises(ConfigError, match="known hub id.*Qwen/Qwen2.5-Math-7B.*local HF directory"):
        model_spec("nobody/no-such-model")


def test_separate_layout_fills_engines_first_then_learners_across_nodes():
    c = cfg(DAPO, "rollout.num_engines=6", "learner.num_ranks=4", "train.prompts_per_step=64")
    p = plan(c, nodes=2, gpus_per_node=8, gpu_memory_gib=80)
    assert p.ok, p.problems
    assert len(p.gpus) == required_resources(c)["GPU"] == 10
    roles = [(g.node, g.gpu, g.roles) for g in p.gpus]
    assert roles[:6] == [(0, i, [f"engine {i}"]) for i in range(6)]
    assert [r[2][0].split()[:2] for r in roles[6:]] == [["learner", str(i)] for i in range(4)]
    assert [(r[0], r[1]) for r in roles[6:]] == [(0, 6), (0, 7), (1, 0), (1, 1)]


def test_colocated_layout_puts_rank_i_on_the_gpu_of_engine_shard_i():
    c = cfg(DAPO, "ray.colocate=true")
    p = plan(c, nodes=1, gpus_per_node=8, gpu_memory_gib=80)
    assert p.ok, p.problems
    assert len(p.gpus) == 4 == required_resources(c)["GPU"]
    assert all(g.roles == [f"engine {i}", f"learner {i}"] for i, g in enumerate(p.gpus))


def test_tensor_parallel_groups_stay_on_one_node():
    p = plan(cfg(DAPO, "rollout.tensor_parallel_size=4"), nodes=3, gpus_per_node=8, gpu_memory_gib=80)
    assert p.ok, p.problems
    for e in range(4):
        nodes = {g.node for g in p.gpus if any(r.startswith(f"engine {e} ") for r in g.roles)}
        assert len(nodes) == 1, f"engine {e} spans nodes {nodes}"


def test_tensor_parallel_group_that_would_straddle_nodes_is_rejected():
    p = plan(cfg(DAPO, "rollout.tensor_parallel_size=3"), nodes=3, gpus_per_node=8, gpu_memory_gib=80)
    assert not p.ok
    assert any("engine 2's tensor-parallel group" in m and "span nodes 0 and 1" in m for m in p.problems)


def test_tensor_parallel_group_larger_than_a_node_is_rejected():
    p = plan(cfg(DAPO, "rollout.tensor_parallel_size=8"), nodes=8, gpus_per_node=4, gpu_memory_gib=80)
    assert p.problems == [p.problems[0]] and "exceeds --gpus-per-node=4" in p.problems[0]


def test_more_gpus_than_the_cluster_has_is_rejected_with_the_count():
    p = plan(cfg(DAPO), nodes=1, gpus_per_node=4, gpu_memory_gib=80)
    assert any("needs 8 GPUs" in m and "= 4" in m and "ray.colocate=true" in m for m in p.problems)


@pytest.mark.parametrize("stage,shard_params,shard_grads,shard_optim", [(0, 1, 1, 1), (1, 1, 1, 4), (2, 1, 4, 4),
                                                                         (3, 4, 4, 4)])
def test_zero_stage_shards_params_grads_and_adam_state(stage, shard_params, shard_grads, shard_optim):
    p = plan(cfg(DAPO, f"learner.zero_stage={stage}"), nodes=1, gpus_per_node=8, gpu_memory_gib=1000)
    n_params, mem = p.model.params, p.learner_memory
    assert mem["policy params"] * GIB == pytest.approx(n_params * 2 / shard_params)  # bf16
    assert mem["policy grads"] * GIB == pytest.approx(n_params * 2 / shard_grads)
    assert mem["policy optimizer"] * GIB == pytest.approx(n_params * 12 / shard_optim)  # fp32 master + 2 moments


def test_fp32_training_keeps_two_adam_moments_and_no_master_copy():
    p = plan(cfg(DAPO, "learner.dtype=fp32", "learner.zero_stage=0"), 1, 8, 1000)
    assert p.learner_memory["policy optimizer"] * GIB == pytest.approx(p.model.params * 8)


def test_offload_moves_state_from_gpu_to_host():
    on_gpu = plan(cfg(PPO_7B), 2, 8, 80)
    off = plan(cfg(PPO_7B, "learner.offload_optimizer=true", "learner.offload_param=true"), 2, 8, 80)
    assert "policy optimizer" in on_gpu.learner_memory and "policy optimizer" not in off.learner_memory
    assert "policy params" not in off.learner_memory
    assert on_gpu.host_gib.get(1, 0.0) == 0.0
    # node 1 holds 8 ranks; each keeps its shard of policy + critic optimizer, grads and params on the host
    moved = sum(v for k, v in on_gpu.learner_memory.items() if "optimizer" in k or "grads" in k or "params" in k)
    assert off.host_gib[1] == pytest.approx(8 * moved)


def test_reference_and_critic_land_on_learner_ranks():
    p = plan(cfg(PPO_7B, "algo.kl_coef=0.001"), 2, 8, 80)
    learner_gpus = [g for g in p.gpus if g.roles[0].startswith("learner")]
    assert len(learner_gpus) == 8 and all("+ref" in g.roles[0] and "+critic" in g.roles[0] for g in learner_gpus)
    # ZeRO-3: the frozen reference is sharded like the policy
    assert p.learner_memory["reference params"] == pytest.approx(p.learner_memory["policy params"])


def test_kv_cache_estimate_uses_kv_heads_layers_head_dim_and_dtype():
    c = cfg(PPO_7B)
    spec = model_spec("Qwen/Qwen2.5-Math-7B")
    assert spec.kv_bytes_per_token(2) == 2 * 28 * 4 * 128 * 2  # GQA: 4 KV heads, not 28
    fits, wanted = kv_sequences(c, spec)
    assert fits == int(40 * GIB // (spec.kv_bytes_per_token(2) * 4096))
    assert wanted == 128 * 16 // 8


def test_kv_budget_below_one_sequence_is_rejected():
    p = plan(cfg(PPO_7B, "rollout.kv_cache_gib=0.1"), 2, 8, 80)
    assert any("holds no full sequence" in m and "rollout.kv_cache_gib" in m for m in p.problems)


def test_context_longer_than_the_model_supports_is_rejected():
    p = plan(cfg(PPO_7B, "rollout.max_model_len=8192"), 2, 8, 80)
    assert any("max_position_embeddings=4096" in m for m in p.problems)


def test_memory_over_the_gpu_is_rejected_with_the_largest_items_and_a_fix():
    p = plan(cfg(PPO_7B, "learner.zero_stage=1", "learner.num_ranks=1", "train.prompts_per_step=64",
                 "learner.mini_batches=1"), 2, 8, 80)
    msgs = [m for m in p.problems if "learner" in m and "exceeds --gpu-memory-gib=80" in m]
    assert msgs and "policy optimizer" in msgs[0] and "learner.zero_stage" in msgs[0]


def test_colocated_gpu_peaks_at_the_larger_phase_not_the_sum():
    p = plan(cfg(DAPO, "ray.colocate=true"), 1, 8, 80)
    g = p.gpus[0]
    assert g.peak_gib < sum(g.memory.values())
    engine_total = sum(p.engine_memory.values())
    learner_total = sum(p.learner_memory.values())
    assert g.peak_gib >= max(engine_total, learner_total)


def test_local_model_directory_plans_without_a_gpu(tiny_dir):
    path, torch_count = tiny_dir
    c = cfg(DAPO, f"model.path={path}", "rollout.max_model_len=512", "sampling.max_tokens=256",
            "algo.overlong_max_len=256", "algo.overlong_buffer_len=64")
    p = plan(c, 1, 8, 80)
    assert p.ok, p.problems
    assert p.model.params == torch_count and p.model.source == "safetensors"


def test_plan_main_prints_the_reason_and_returns_2(capsys):
    assert plan_main(cfg(DAPO), 1, 4, 80) == 2
    out = capsys.readouterr().out
    assert "rejected" in out and "needs 8 GPUs" in out
    assert plan_main(cfg(DAPO), 1, 8, 80) == 0
    assert "plan fits" in capsys.readouterr().out


def test_cpu_config_gets_host_memory_estimates_and_no_gpu_placement():
    p = plan(cfg(DAPO, "rollout.device=cpu", "rollout.kv_cache_gib=2"), 1, 8, 80)
    assert p.ok and p.gpus == [] and "rollout.device='cpu'" in p.notes[-1]
    assert p.engine_memory["KV cache"] == 2 and p.learner_memory["policy optimizer"] > 0


def test_embedded_model_is_refused_with_the_key_to_set():
    c = cfg(DAPO, "model.path=null", "model.embedded={task: arith}")
    with pytest.raises(ConfigError, match="set model.path"):
        plan(c, 1, 8, 80)


def test_nonpositive_cluster_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="expected positive"):
        plan(cfg(DAPO), 0, 8, 80)


def test_gpu_slots_are_the_placement_rule_the_plan_draws():
    over = ("rollout.num_engines=2", "rollout.tensor_parallel_size=2", "learner.num_ranks=4")
    assert gpu_slots(cfg(DAPO, *over, "ray.colocate=false")) == ([[0, 1], [2, 3]], [4, 5, 6, 7], 8)  # ranks after
    col = cfg(DAPO, *over, "ray.colocate=true")
    assert gpu_slots(col) == ([[0, 1], [2, 3]], [0, 1, 2, 3], 4)  # rank i shares GPU i with an engine shard
    roles = [g.roles for g in plan(col, 1, 4, 80).gpus]
    assert roles[0] == ["engine 0 (tp 0/2)", "learner 0"] and roles[3] == ["engine 1 (tp 1/2)", "learner 3"]
