"""Tools the policy may call while it generates (multi-turn rollouts, docs/design.md "Multi-turn record").

`tools.base` holds the interface (`Tool`: name, call tags, parser, executor, timeout); `tools.calculator` and
`tools.python` the built-in tools; `tools.registry.build_tools` turns `rollout.tools` into instances. This file
imports nothing heavy. Direction: cluster -> tools -> rewards (the python tool runs in the code sandbox); the
rollout engine (actors) receives Tool instances as plain objects and never imports this package.
"""
