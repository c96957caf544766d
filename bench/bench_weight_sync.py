"""Weight-sync push time per transport and bucket size, against the bare cost of moving the same bytes.

    .venv/bin/python bench/bench_weight_sync.py                        # tiny and ~100M Qwen2, bf16, 16/64/256 MB
    .venv/bin/python bench/bench_weight_sync.py --models tiny --buckets 1,4 --repeats 5

One learner rank (DeepSpeed ZeRO-2) and one vLLM engine, each a Ray actor, on this machine. `push` is the
wall time of `cluster.weight_sync.WeightSync.push` as the training loop calls it. `bare` moves the same buckets of the
same bytes between the same two processes with nothing of ours around it:
  object_store  ray.put of each bucket dict in the learner process, ray.get in the engine process, and a plain
                copy of every tensor into a preallocated one (standing in for the copy into the model);
  collective    a gloo broadcast per bucket (flat buffers of the same sizes) over a separate group of the
                same two processes.
`reload` is vLLM's `reload_weights` + prefix-cache reset alone, from tensors already in the engine process:
the part of a push that is vLLM's own work (on CPU it repacks every Linear weight). All times are medians.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

TRANSPORTS = ("object_store", "collective")


def make_model(kind: str, out_dir: str) -> tuple[str, int]:
    """A random Qwen2 HF dir (tokenizer of stories260K); returns (dir, parameter count)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rl_common import TOKENIZER_DIR
    from tiny_models import make_tiny_qwen2

    if kind == "tiny":
        make_tiny_qwen2(out_dir)
    elif kind == "100m":  # ~110M: 32k vocab (tied), 12 layers of hidden 768, head size 64
        cfg = Qwen2Config(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                          num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=512,
                          tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
        torch.manual_seed(0)
        Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out_dir)
        import shutil

        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(TOKENIZER_DIR, name), os.path.join(out_dir, name))
    else:
        raise ValueError(f"--models entry {kind!r}: expected 'tiny' or '100m'")
    from safetensors import safe_open

    with safe_open(os.path.join(out_dir, "model.safetensors"), "pt") as f:
        n = sum(torch.Size(f.get_slice(k).get_shape()).numel() for k in f.keys())
    return out_dir, n


# ----- functions run inside the actors' processes (via __ray_call__) -------------------------------------
def _learner_buckets(worker, bucket_mb: float) -> None:
    """Keep contiguous copies of this push's buckets in the learner process (outside any timing)."""
    from learner.weight_sync import iter_buckets

    worker._bench_buckets = [[(n, t.detach().clone()) for n, t in b]
                             for b in iter_buckets(worker.policy.module, bucket_mb, False, aliases=True)]
    return [sum(t.numel() * t.element_size() for _, t in b) for b in worker._bench_buckets]


def _learner_put(worker) -> list:
    import ray

    return [ray.put(dict(b)) for b in worker._bench_buckets]


def _engine_get_copy(engine, refs: list) -> float:
    import ray

    t0 = time.perf_counter()
    for ref in refs:
        for _, t in ray.get(ref).items():
            torch.empty_like(t).copy_(t)
    return time.perf_counter() - t0


def _engine_reload_only(engine, refs: list) -> float:
    """vLLM's reload from tensors already fetched into this process."""
    import ray

    from actors.weight_sync import reload_weights

    pairs = [(n, t) for ref in refs for n, t in ray.get(ref).items()]
    t0 = time.perf_counter()
    reload_weights(engine.llm, pairs)
    return time.perf_counter() - t0


def _join(obj, port: int, rank: int) -> None:
    from datetime import timedelta

    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", port, 2, is_master=rank == 0, timeout=timedelta(seconds=120),
                          wait_for_workers=False)
    obj._bench_pg = dist.ProcessGroupGloo(store, rank, 2, timedelta(seconds=120))
    obj._bench_store = store


def _broadcast(obj, sizes: list[int], rank: int) -> float:
    bufs = [torch.ones(n, dtype=torch.uint8) if rank == 0 else None for n in sizes]
    t0 = time.perf_counter()
    for n, buf in zip(sizes, bufs):
        buf = buf if buf is not None else torch.empty(n, dtype=torch.uint8)
        obj._bench_pg.broadcast(buf, 0).wait()
    return time.perf_counter() - t0


# ----- driver ---------------------------------------------------------------------------------------------
def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_model(kind: str, buckets_mb: list[float], repeats: int, tmp: str) -> list[dict]:
    import ray

    from actors.config import RolloutConfig
    from actors.pool import RolloutPool
    from cluster.config import WeightSyncConfig
    from cluster.weight_sync import WeightSync
    from learner.config import AlgoConfig, LearnerConfig
    from learner.group import LearnerGroup, free_port

    model_dir, n_params = make_model(kind, os.path.join(tmp, kind))
    pool = RolloutPool(model_dir, RolloutConfig(dtype="bfloat16", max_model_len=256, kv_cache_gib=0.1,
                                                enable_prefix_caching=True))
    group = LearnerGroup(LearnerConfig(dtype="bf16", zero_stage=2), AlgoConfig(), model_dir)
    learner, engine = group.workers[0], pool.engines[0]
    port = free_port()
    ray.get([learner.__ray_call__.remote(_join, port, 0), engine.__ray_call__.remote(_join, port, 1)])
    rows, version = [], 0
    try:
        for mb in buckets_mb:
            sizes = ray.get(learner.__ray_call__.remote(_learner_buckets, mb))
            nbytes = sum(sizes)

            def bare_object_store():
                refs = ray.get(learner.__ray_call__.remote(_learner_put))
                ray.get(engine.__ray_call__.remote(_engine_get_copy, refs))

            def bare_collective():
                ray.get([learner.__ray_call__.remote(_broadcast, sizes, 0),
                         engine.__ray_call__.remote(_broadcast, sizes, 1)])

            bare = {"object_store": bare_object_store, "collective": bare_collective}
            refs = ray.get(learner.__ray_call__.remote(_learner_put))
            reload_s = statistics.median(ray.get(engine.__ray_call__.remote(_engine_reload_only, refs))
                                         for _ in range(repeats))
            del refs
            for transport in TRANSPORTS:
                sync = WeightSync(group, pool, WeightSyncConfig(transport=transport, bucket_mb=mb, timeout_s=600))
                version += 1
                sync.push(version)  # warm-up: forms the collective group, first-touch allocations

                def push():
                    nonlocal version
                    version += 1
                    sync.push(version)

                push_s = median_time(push, repeats)
                bare_s = median_time(bare[transport], repeats)
                row = {"model": kind, "params": n_params, "bytes": nbytes, "transport": transport, "bucket_mb": mb,
                       "buckets": len(sizes), "push_s": round(push_s, 4), "bare_s": round(bare_s, 4),
                       "ratio": round(push_s / bare_s, 2), "reload_s": round(reload_s, 4),
                       "push_minus_reload_over_bare": round((push_s - reload_s) / bare_s, 2)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        group.close()
        pool.shutdown()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny,100m", help="comma list of 'tiny' and '100m'")
    p.add_argument("--buckets", default="16,64,256", help="comma list of bucket sizes in MiB")
    p.add_argument("--repeats", type=int, default=3, help="pushes per setting; the median is reported")
    p.add_argument("--ray-temp-dir", help="keep Ray's logs here (default: a temporary directory)")
    p.add_argument("--smoke", action="store_true", help="tiny model, one bucket size, one repeat (CI check)")
    args = p.parse_args()
    if args.smoke:
        args.models, args.buckets, args.repeats = "tiny", "16", 1
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray

    with tempfile.TemporaryDirectory(prefix="bench_ws_") as tmp:
        ray.init(num_cpus=4, include_dashboard=False, _temp_dir=args.ray_temp_dir or os.path.join(tmp, "ray"),
                 log_to_driver=False,
                 runtime_env={"env_vars": {"DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}})
        try:
            rows = [r for kind in args.models.split(",")
                    for r in bench_model(kind, [float(b) for b in args.buckets.split(",")], args.repeats, tmp)]
        finally:
            ray.shutdown()
    print(f"{'model':6} {'MB':>7} {'transport':12} {'bucket':>6} {'n':>3} {'push s':>8} {'bare s':>8} {'ratio':>6} "
          f"{'reload s':>8} {'(push-reload)/bare':>18}")
    for r in rows:
        print(f"{r['model']:6} {r['bytes'] / 2**20:7.1f} {r['transport']:12} {r['bucket_mb']:6g} {r['buckets']:3d} "
              f"{r['push_s']:8.3f} {r['bare_s']:8.3f} {r['ratio']:6.2f} {r['reload_s']:8.3f} "
              f"{r['push_minus_reload_over_bare']:18.2f}")


if __name__ == "__main__":
    main()
