"""cluster/throughput.py: the perf/* metrics count the phases' model FLOPs from the policy's shape."""
import pytest
import yaml
from tiny_recipe import write_recipe

from cluster.config import validate_config
from cluster.throughput import PhaseFlops
from learner.flops import load_shape
from record.rollout import RolloutBatch
from tiny_models import make_tiny_qwen2


def _cfg(tmp_path, **extra):
    path = write_recipe(tmp_path, "perf", tmp_path / "none.jsonl", **extra)
    return validate_config(yaml.safe_load(path.read_text()))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_qwen2(str(tmp_path_factory.mktemp("m") / "model"), hidden=64, layers=2)


def test_perf_metrics_count_generation_once_and_training_three_forwards(tmp_path, model):
    batch = RolloutBatch.from_lists([[1, 2, 3], [1, 2, 3]], [[5] * 7, [6] * 4], rewards=[1.0, 0.0], group_ids=[0, 0])
    shape = load_shape(model)
    fwd = shape.forward_flops([10, 7])  # a plain count: 2*N*L + causal attention per sequence
    perf = PhaseFlops(model, _cfg(tmp_path), {"fp32": 2e9})
    assert perf.flops(batch) == (pytest.approx(fwd), pytest.approx(3 * fwd))  # on-policy: old log-probs reused
    m = perf.metrics(batch, generate_s=0.5, train_s=2.0)
    assert m["perf/generate_gflops"] == pytest.approx(fwd / 0.5 / 1e9)
    assert m["perf/train_mfu"] == pytest.approx(3 * fwd / 2.0 / 2e9)
    # PPO epochs re-run forward+backward, a separate old-log-prob pass and a reference forward are counted too
    ppo = PhaseFlops(model, _cfg(tmp_path, learner__ppo_epochs=2, algo__kl_coef=0.1), {"fp32": 2e9})
    assert ppo.flops(batch)[1] == pytest.approx(2 * 3 * fwd + 2 * fwd)
    assert perf.metrics(None, 1.0, 1.0) == {}
