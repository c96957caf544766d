"""Evaluation: `rlvr eval` (`harness`, its `config` and `summary`), held-out evaluation during training (`heldout`),
pass@k / maj@k estimators (`pass_at_k`), budget forcing (`budget_forcing`), support vs sharpening (`support`), and
the grader audit (`verify_audit`, `reference_grader`). Import the modules directly; this file imports nothing."""
