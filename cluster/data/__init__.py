"""Datasets of a run: specs (`spec`), where files come from (`root`), the problem type (`problem`), the name and
split registry (`registry`), record reading (`records`), built-in formats (`builtin`), loading (`loaders`), EvalPlus
test programs (`evalplus`), the embedded task as a dataset (`embedded_source`), and the seeded prompt order
(`prompt_stream`). Import the modules directly; this file imports nothing."""
