"""The embedded default: a tokenizer, a tiny Llama model, procedurally generated arithmetic and the pre-trained
prior that `rlvr train configs/local.yaml` post-trains with RL, all built locally without a download.

Modules: `tokenizer` (character-level vocabulary), `model` (model sizes, `build_model`), `tasks` (problems,
prompts, pre-training corpus), `pretrain` (masked next-token SFT with an on-disk cache). Import them directly;
this file imports nothing heavy.
"""
