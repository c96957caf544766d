"""The example's reward: 1.0 for the right number, 0.1 for a wrong number, 0.0 for no number at all.

rlvr calls `score(completion, problem)` in its verifier worker pool, once per sampled completion. `problem` is the
jsonl record: `id`, `prompt` and `answer` (the fields mapped in config.yaml) plus the record's other fields, here
`digits`. Return a float; an exception or a hang (past train.reward_timeout_s) scores 0.0 and is counted.
"""
import re


def score(completion: str, problem: dict) -> float:
    match = re.search(r"-?\d+", completion)
    if match is None:
        return 0.0
    return 1.0 if int(match.group()) == int(problem["answer"]) else 0.1
