"""`rlvr plan`: a cluster.plan.planner.Plan printed as tables (placement per GPU, memory per role, host RAM, notes,
problems)."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from cluster.plan.planner import Plan, plan

_COLUMNS = {  # memory items grouped into the placement table's columns
    "weights": ("engine weights", "policy params", "reference params", "critic params"),
    "grads+optim": ("policy grads", "policy optimizer", "critic grads", "critic optimizer"),
    "KV cache": ("KV cache",),
    "activations": ("activations", "logits", "engine activations"),
    "other": ("weight-sync bucket", "runtime"),
}


def _breakdown(title: str, memory: dict[str, float]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("item")
    t.add_column("GiB", justify="right")
    for k, v in sorted(memory.items(), key=lambda kv: -kv[1]):
        t.add_row(k, f"{v:.2f}")
    t.add_row("[bold]total[/bold]", f"[bold]{sum(memory.values()):.2f}[/bold]")
    return t


def print_plan(p: Plan, console: Console | None = None) -> None:
    con = console or Console(width=None if sys.stdout.isatty() else 140)
    m = p.model
    con.print(f"[bold]model[/bold] {m.name}: {m.params / 1e9:.3f}B params, {m.layers} layers, hidden {m.hidden}, "
              f"{m.kv_heads} KV heads x {m.head_dim} (from {m.source})")
    if p.device == "cuda":
        layout = "colocated (engines sleep while the learner trains)" if p.colocate else "separate"
        con.print(f"[bold]cluster[/bold] {p.nodes} node(s) x {p.gpus_per_node} GPUs x {p.gpu_memory_gib:g} GiB; "
                  f"layout {layout}; {len(p.gpus)} GPUs used")
    if p.gpus:
        t = Table(title="placement and estimated peak memory per GPU (GiB)", title_justify="left")
        for col in ("node", "gpu", "roles", *_COLUMNS, "peak", "fits"):
            t.add_column(col, justify="left" if col == "roles" else "right")
        for g in p.gpus:
            cols = [sum(g.memory.get(k, 0.0) for k in keys) for keys in _COLUMNS.values()]
            fits = g.peak_gib <= p.gpu_memory_gib
            t.add_row(str(g.node), str(g.gpu), ", ".join(g.roles), *(f"{c:.1f}" for c in cols), f"{g.peak_gib:.1f}",
                      "[green]yes[/green]" if fits else "[red]no[/red]")
        con.print(t)
    con.print(_breakdown("one engine GPU" if p.device == "cuda" else "one engine process (host RAM)", p.engine_memory))
    con.print(_breakdown("learner rank 0" if p.device == "cuda" else "learner rank 0 process (host RAM)",
                         p.learner_memory))
    for node, gib in sorted((k, v) for k, v in p.host_gib.items() if v > 0):
        con.print(f"host RAM on node {node} for offloaded state and sleeping engines: {gib:.1f} GiB")
    for note in p.notes:
        con.print(f"[yellow]note:[/yellow] {note}")
    for problem in p.problems:
        con.print(f"[red]rejected:[/red] {problem}")
    if p.device == "cuda":
        con.print("[green]plan fits[/green]" if p.ok else "[red]plan does not fit[/red]")


def plan_main(cfg, nodes: int, gpus_per_node: int, gpu_memory_gib: float) -> int:
    """Print the plan; 0 when it fits, 2 with the reasons when it does not."""
    p = plan(cfg, nodes, gpus_per_node, gpu_memory_gib)
    print_plan(p)
    return 0 if p.ok else 2
