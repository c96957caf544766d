"""Where the docs keep their examples, and the examples themselves: every `rlvr ...` command and every dotted
`key.path=value` override in README.md, bench/README.md and docs/*.md (fenced code blocks and inline code), the
comments of configs/*.yaml and the strings of cluster/*.py (module docstrings, the CLI's help texts).
Used by tests/test_docs_examples.py and tests/test_recipes.py."""
import ast
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ("train", "eval", "submit", "config", "plot", "plan")
COMMAND = re.compile(r"(?:^|(?<=[\s`(]))(?:\.venv/bin/)?rlvr(?: (?:" + "|".join(SUBCOMMANDS) + r")| --help)"
                     r"(?= |$)[^`]*")
COMMAND_END = re.compile(r"\s{2,}|\s#|`|\s\|\s|;|\s\(")  # prose or a comment after the command
OVERRIDE = re.compile(r"(?<![\w.\-/$])([a-z_]+(?:\.[a-z_0-9]+)+=[^\s`'\",)]+)|'([a-z_][\w.]*=[^']+)'")


def markdown_units(text: str) -> list[str]:
    """Lines of fenced code blocks, and inline code spans (newlines inside a span become spaces)."""
    units, prose = [], []
    for i, part in enumerate(re.split(r"^```.*$", text, flags=re.M)):  # odd parts are inside a fence
        if i % 2:
            units += part.splitlines()
        else:
            prose.append(part)
    units += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", "\n".join(prose))]
    return units


def yaml_comment_units(text: str) -> list[str]:
    """Comment lines, a trailing backslash joining a line to the next."""
    lines = [ln.split("#", 1)[1] for ln in text.splitlines() if ln.lstrip().startswith("#")]
    return re.sub(r"\s*\\\n\s*", " ", "\n".join(lines)).splitlines()


def python_string_units(text: str) -> list[str]:
    """Lines of every string constant in a module (its docstring, argparse help texts)."""
    return [ln for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            for ln in node.value.splitlines()]


def doc_units() -> list[tuple[str, str]]:
    """(source file, text unit) for every place an example can sit."""
    out = []
    for path in [REPO / "README.md", REPO / "bench" / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        out += [(path.name, u) for u in markdown_units(path.read_text())]
    for path in sorted((REPO / "configs").glob("*.yaml")):
        out += [(path.name, u) for u in yaml_comment_units(path.read_text())]
    for path in sorted((REPO / "cluster").glob("*.py")):
        out += [(path.name, u) for u in python_string_units(path.read_text())]
    return out


def commands() -> list[tuple[str, list[str]]]:
    """(source, argv after `rlvr`) of every command with at least one argument (a bare `rlvr eval` names one)."""
    found = []
    for source, unit in doc_units():
        for m in COMMAND.finditer(unit):
            text = re.sub(r"\s\[[^\]=]*\]", "", COMMAND_END.split(m.group(0), 1)[0])  # optional parts: [--x X]
            argv = [t for t in shlex.split(text)[1:] if t != "..." and not t.startswith("[")]
            if len(argv) > 1 or argv == ["--help"]:
                found.append((source, argv))
    return found


def overrides() -> list[tuple[str, str]]:
    """(source, key.path=value) of every override; a sentence's final period or colon is not part of it, and
    placeholders (`a.b.c=value`, `model.path=...`) are left out."""
    found = [(source, (m.group(1) or m.group(2)).rstrip(".:")) for source, unit in doc_units()
             for m in OVERRIDE.finditer(unit)]
    return [(s, o) for s, o in found if o.split("=", 1)[1] not in ("", "value")]
