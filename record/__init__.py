"""The rollout record: the one shape of a step's rollout data, from the engine to the loss (record/rollout.py)."""
