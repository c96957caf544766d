"""Ray placement for a run: which bundles the rollout engines and learner ranks get.

CPU machines: one PACK placement group of fractional-CPU bundles (one per engine, one per learner rank).
GPU machines: one bundle per GPU. Separate layout: engines take `num_engines * tp` bundles, learner ranks the
next `num_ranks`. Colocated layout: learner rank i shares GPU bundle i with an engine (each asks for half a GPU;
engines sleep while the learner trains). An engine with tensor parallelism gets its tp bundles in one group, so
its workers land on one node.

The resource check runs before any actor starts and says exactly what is missing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cluster.config_error import ConfigError


@dataclass
class Layout:
    """Ray actor options per role, ready to pass to `.options(**opts)`."""

    engine_options: list[dict] = field(default_factory=list)
    learner_options: list[dict] = field(default_factory=list)
    placement_group: object = None

    def release(self) -> None:
        if self.placement_group is not None:
            from ray.util import remove_placement_group

            remove_placement_group(self.placement_group)
            self.placement_group = None


def required_resources(cfg) -> dict[str, float]:
    """Total resources the layout reserves."""
    engines, ranks = cfg.rollout.num_engines, cfg.learner.num_ranks
    if cfg.rollout.device == "cpu":
        return {"CPU": engines * cfg.ray.cpus_per_engine + ranks * cfg.ray.cpus_per_learner}
    tp = cfg.rollout.tensor_parallel_size
    gpus = max(engines * tp, ranks) if cfg.ray.colocate else engines * tp + ranks
    return {"GPU": float(gpus), "CPU": float(gpus)}


def gpu_slots(cfg) -> tuple[list[list[int]], list[int], int]:
    """GPU bundle indices per engine (its tp bundles), per learner rank, and the bundle count; the one rule that
    build_layout reserves and `rlvr plan` (cluster/plan/planner.py) draws."""
    engines, tp, ranks = cfg.rollout.num_engines, cfg.rollout.tensor_parallel_size, cfg.learner.num_ranks
    engine_idx = [list(range(e * tp, (e + 1) * tp)) for e in range(engines)]
    learner_idx = list(range(ranks)) if cfg.ray.colocate else [engines * tp + i for i in range(ranks)]
    return engine_idx, learner_idx, int(required_resources(cfg)["GPU"])


def check_resources(cfg, available: dict[str, float]) -> None:
    need = required_resources(cfg)
    missing = {k: v for k, v in need.items() if available.get(k, 0.0) + 1e-9 < v}
    if missing:
        parts = [f"{k}: need {need[k]:g}, cluster has {available.get(k, 0.0):g}" for k in missing]
        raise ConfigError(
            "the cluster lacks resources for this layout (" + "; ".join(parts) + "). Lower rollout.num_engines, "
            "learner.num_ranks or rollout.tensor_parallel_size, shrink ray.cpus_per_engine / "
            "ray.cpus_per_learner, or add nodes")


def build_layout(cfg) -> Layout:
    """Reserve a placement group for the run and return per-actor options pointing into it."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    check_resources(cfg, ray.available_resources())
    engines, ranks = cfg.rollout.num_engines, cfg.learner.num_ranks
    if cfg.rollout.device == "cpu":
        bundles = [{"CPU": cfg.ray.cpus_per_engine}] * engines + [{"CPU": cfg.ray.cpus_per_learner}] * ranks
        engine_idx = [[i] for i in range(engines)]
        learner_idx = [engines + i for i in range(ranks)]
        per_engine = {"num_cpus": cfg.ray.cpus_per_engine}
        per_rank = {"num_cpus": cfg.ray.cpus_per_learner}
    else:
        tp = cfg.rollout.tensor_parallel_size
        engine_idx, learner_idx, n_gpu = gpu_slots(cfg)
        bundles = [{"GPU": 1, "CPU": 1}] * n_gpu
        share = 0.5 if cfg.ray.colocate else 1.0
        # vLLM places its own TP workers on the engine's bundles; the engine actor itself needs a GPU only at tp=1.
        per_engine = {"num_gpus": share if tp == 1 else 0, "num_cpus": 0.5}
        per_rank = {"num_gpus": share, "num_cpus": 0.5}
    pg = placement_group(bundles, strategy="PACK")
    ray.get(pg.ready(), timeout=120)

    def opts(idx: int, base: dict) -> dict:
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=idx,
                                                    placement_group_capture_child_tasks=True)
        return {**base, "scheduling_strategy": strategy}

    return Layout(engine_options=[opts(ix[0], per_engine) for ix in engine_idx],
                  learner_options=[opts(i, per_rank) for i in learner_idx], placement_group=pg)
