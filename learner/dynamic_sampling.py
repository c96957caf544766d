"""DAPO dynamic sampling (Yu et al. 2025, https://arxiv.org/abs/2503.14476, Eq. 11 constraint
0 < |{o_i correct}| < G): drop groups whose rewards all agree, since their group-relative advantage is zero.

The controller calls `filter_groups` on each generation round and keeps sampling until enough groups remain.
"""

from collections.abc import Sequence


def filter_groups(rewards: Sequence[float], group_ids: Sequence[int], tol: float = 0.0) -> tuple[list[int], int]:
    """Indices (in input order) of samples whose group has reward spread > tol, and how many groups were kept."""
    if len(rewards) != len(group_ids):
        raise ValueError(f"filter_groups: {len(rewards)} rewards but {len(group_ids)} group_ids; pass one per sample")
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    for r, g in zip(rewards, group_ids):
        lo[g] = min(lo.get(g, r), r)
        hi[g] = max(hi.get(g, r), r)
    kept_groups = {g for g in lo if hi[g] - lo[g] > tol}
    return [i for i, g in enumerate(group_ids) if g in kept_groups], len(kept_groups)
