"""Per-step achieved FLOP/s and MFU of the generation and learner phases (metrics `perf/*`).

Model FLOPs come from the policy's shape (learner/flops.py: forward 2*N*L + 4*layers*d_attn*L(L+1)/2 per
sequence of L = prompt + response tokens; forward + backward 3x that). Generation = one forward of every
trained sample's sequence; the learner = per epoch one forward + backward of every sample, plus one forward for
the old log-probs when they are not taken from the update itself and one for the reference (kl_coef > 0); the
PPO critic is not counted. MFU divides by the matmul peak the learner's rank 0 measured at start on its own
threads, in the phase's dtype (engine `rollout.dtype`, learner `learner.dtype`).
"""
from __future__ import annotations

from learner.flops import load_shape
from record.rollout import RolloutBatch

ENGINE_DTYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "bf16"}  # fp16 peak taken as bf16's


class PhaseFlops:
    """FLOPs of a step's phases for one model and run config; `metrics` turns phase times into perf/* rows."""

    def __init__(self, model_path: str, cfg, peaks: dict[str, float]):
        self.shape, self.cfg, self.peaks = load_shape(model_path), cfg, peaks
        algo, lc = cfg.algo, cfg.learner
        on_policy = lc.ppo_epochs * lc.mini_batches == 1 and algo.kl_in != "reward"  # as learner/group.py
        self.extra_forwards = (0 if on_policy else 1) + (1 if algo.kl_coef > 0 else 0)
        self.epochs = lc.ppo_epochs

    def flops(self, batch: RolloutBatch) -> tuple[float, float]:
        """(generation, learner) model FLOPs of one step's rollout record."""
        lens = [len(g.prompt_ids) + len(s.response_ids) for g in batch.groups for s in g.samples]
        fwd = self.shape.forward_flops(lens)
        return fwd, self.epochs * 3 * fwd + self.extra_forwards * fwd

    def metrics(self, batch: RolloutBatch | None, generate_s: float, train_s: float) -> dict[str, float]:
        if batch is None or len(batch) == 0:
            return {}
        gen, train = self.flops(batch)
        out = {}
        for phase, flops, secs, dtype in (("generate", gen, generate_s, ENGINE_DTYPE[self.cfg.rollout.dtype]),
                                          ("train", train, train_s, self.cfg.learner.dtype)):
            if secs > 0:
                out[f"perf/{phase}_gflops"] = flops / secs / 1e9
                if self.peaks.get(dtype):
                    out[f"perf/{phase}_mfu"] = flops / secs / self.peaks[dtype]
        return out

    def peak_metrics(self) -> dict[str, float]:
        return {f"perf/peak_gflops_{d}": v / 1e9 for d, v in self.peaks.items()}
