#!/usr/bin/env python3
"""The import graph of the `bot` package, from the AST: every `import`/`from ... import` of a bot module,
module-level or inside a function (lazy imports count: they are still a dependency at run time).

Prints `module -> dep, dep, ...` for every module, then the strongly connected components with more than one
module. Exits 1 when there is a cycle, 0 otherwise.

    python scripts/import_graph.py [ROOT]      # ROOT: the repository root (default: this script's parent's)

Stdlib only; it never imports the modules it reads.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "bot"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of a (possibly relative) import written in module `current`."""
    if level == 0:
        return target or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _known(name: str, known: set[str]) -> str | None:
    """The longest known module that `name` is, or lies in (`bot.x.y` -> `bot.x` when y is an attribute)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module `name` imports anywhere in its file (itself left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    deps: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            deps.update(hit for alias in node.names if (hit := _known(alias.name, known)))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:  # `from . import x` imports the submodule x when there is one
                sub = f"{base}.{alias.name}"
                hit = sub if sub in known else _known(base, known)
                if hit:
                    deps.add(hit)
    deps.discard(name)
    return deps


def graph(root: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports. Importing bot.a.b runs bot/a/__init__.py first; that
    implied edge is not drawn (a package's __init__ importing its own submodules is no cycle)."""
    mods = modules(root, package)
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def strongly_connected(g: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative); components in a deterministic order, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for start in sorted(g):
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            for dep in it:
                if dep not in g:
                    continue
                if dep not in index:
                    index[dep] = low[dep] = counter
                    counter += 1
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(sorted(g[dep]))))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    comps.append(sorted(comp))
    return sorted(comps)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of two or more modules: the import cycles."""
    return [c for c in strongly_connected(g) if len(c) > 1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="the import graph of the bot package and its cycles")
    parser.add_argument(
        "root",
        nargs="?",
        default=str(Path(__file__).resolve().parent.parent),
        help=f"the folder holding the {PACKAGE}/ package (default: this checkout)",
    )
    root = Path(parser.parse_args(argv[1:]).root).resolve()
    g = graph(root)
    if not g:
        print(f"no {PACKAGE}/ package under {root}", file=sys.stderr)
        return 2
    width = max(len(m) for m in g)
    for name in sorted(g):
        print(f"{name:<{width}} -> {', '.join(sorted(g[name])) or '(nothing in bot)'}")
    found = cycles(g)
    print()
    if not found:
        print(f"no import cycle among {len(g)} modules of {PACKAGE}/")
        return 0
    print(f"{len(found)} import cycle(s) (strongly connected components):")
    for comp in found:
        print("  " + " <-> ".join(comp))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
