"""The import graph of the five packages, read from the source (every import, lazy ones inside functions too):
no cycles, dependencies one way (docs/design.md), and cluster/'s rooms above its entry points.

    cluster -> actors, learner, rewards     rewards imports no other rlvr package; actors and learner never
    actors, learner -> record               import each other; nothing outside cluster/ imports cluster;
    tools -> rewards                        record (the rollout record) imports none of the others; tools
                                            (what the policy may call) run in the rewards sandbox; the engine
                                            receives Tool objects from cluster and never imports tools
Inside cluster/: the rooms (data/, eval/, plan/, embedded/) never import the entry points (cli, train, job,
submit), and import each other only as ROOM_DEPS allows.
"""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("cluster", "actors", "learner", "rewards", "record", "tools")
# record/ (the rollout record) is the one module actors/ and learner/ share: it imports none of the others.
MAY_IMPORT = {"cluster": set(PACKAGES), "actors": {"actors", "rewards", "record"},
              "learner": {"learner", "rewards", "record"}, "rewards": {"rewards"}, "record": {"record"},
              "tools": {"tools", "rewards"}}
ENTRY_POINTS = {"cluster.cli", "cluster.train", "cluster.job", "cluster.submit"}
ROOM_DEPS = {"cluster.embedded": set(), "cluster.data": {"cluster.embedded"}, "cluster.plan": set(),
             "cluster.eval": {"cluster.data"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = REPO) -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """First-party modules `path` imports; `from pkg import mod` counts as importing pkg.mod when that is a module."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import a.b.c` of a name inside a module: its module
                t = t.rpartition(".")[0]
            if t and t.split(".")[0] in PACKAGES:
                out.add(t)
    out.discard(name)
    return out


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    mods = modules(root)
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def room_of(name: str) -> str | None:
    return next((room for room in ROOM_DEPS if name == room or name.startswith(room + ".")), None)


def wrong_direction(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(graph.items()):
        for dst in sorted(targets):
            if dst.split(".")[0] not in MAY_IMPORT[src.split(".")[0]]:
                bad.append(f"{src} -> {dst}: {src.split('.')[0]} may import only {sorted(MAY_IMPORT[src.split('.')[0]])}")
            room, other = room_of(src), room_of(dst)
            if room and dst in ENTRY_POINTS:
                bad.append(f"{src} -> {dst}: a room of cluster/ imports an entry point")
            if room and other and other != room and other not in ROOM_DEPS[room]:
                bad.append(f"{src} -> {dst}: {room} may import only the rooms {sorted(ROOM_DEPS[room])}")
    return bad


def test_the_walk_sees_every_module_and_lazy_imports():
    graph = import_graph()
    assert {"cluster.train", "cluster.data.loaders", "actors.pool", "learner.group", "rewards.math"} <= set(graph)
    assert "cluster.data.embedded_source" in graph["cluster.data.loaders"]  # imported inside load_embedded
    assert "cluster.weight_sync" in graph["cluster.train"]  # imported inside Trainer.__init__


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_imports_point_one_way():
    assert wrong_direction(import_graph()) == []


def test_the_checks_catch_a_cycle_and_a_wrong_direction():
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert cycles(graph) == [["a.x", "a.y", "a.z"]]
    bad = wrong_direction({"rewards.math": {"cluster.config"}, "actors.pool": {"learner.group"},
                           "cluster.data.spec": {"cluster.train", "cluster.eval.heldout"}})
    assert [b.split(":")[0] for b in bad] == ["actors.pool -> learner.group", "cluster.data.spec -> cluster.eval.heldout",
                                              "cluster.data.spec -> cluster.train", "rewards.math -> cluster.config"]
