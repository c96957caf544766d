"""Test batches written as per-sample columns (readable next to the plain reference loops) -> the rollout record."""

from record.rollout import RolloutBatch


def record_of(b: dict) -> RolloutBatch:
    """{prompt_ids, response_ids, rewards, group_ids[, rollout_logprobs, loss_mask, finish_reason]} -> RolloutBatch."""
    return RolloutBatch.from_lists(b["prompt_ids"], b["response_ids"], b["rewards"], b["group_ids"],
                                   logprobs=b.get("rollout_logprobs"), loss_mask=b.get("loss_mask"),
                                   finish_reason=b.get("finish_reason"))
