"""Shared test set-up.

Datasets come from the in-repo fixtures (tests/fixtures/data, a few dozen real records per dataset), never from
anything beside the checkout: RLVR_DATA_DIR is set here, before any test module is imported, so loaders, Ray
workers and subprocesses (bench smoke runs, `rlvr` commands) all read the fixtures.
"""
import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA_DIR = FIXTURES / "data"
os.environ["RLVR_DATA_DIR"] = str(DATA_DIR)


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory):
    """One local Ray runtime per module, in a private temp dir; workers get DeepSpeed's CPU accelerator and one
    OpenMP thread each."""
    import ray

    ray.init(num_cpus=8, include_dashboard=False, _temp_dir=str(tmp_path_factory.mktemp("ray")),
             log_to_driver=False, runtime_env={"env_vars": {"DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The learner tests' tiny random Qwen2 (~110K params, head size 32), built once per module."""
    from tiny_models import make_tiny_qwen2

    return make_tiny_qwen2(str(tmp_path_factory.mktemp("tiny")))
