"""The package's structure: no import cycle in bot/ (scripts/import_graph.py), nothing bot loads by path
imports bot back, and sky/ (copied to benchmark VMs) never imports bot."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import import_graph  # scripts/, on pytest's pythonpath

ROOT = Path(__file__).resolve().parent.parent


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _imported_tops(path: Path) -> set[str]:
    """The top-level names of every absolute import in a file, function-level ones included."""
    tops: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def test_bot_has_no_import_cycle():
    g = import_graph.graph(ROOT)
    assert import_graph.cycles(g) == []
    # the run model depends on nothing; the pipeline no longer reaches its stages (they are injected)
    assert g["bot.model"] == set()
    assert "bot.stages" not in g["bot.pipeline"]
    assert "bot.events" not in g["bot.experiments.stats"]


def test_graph_sees_lazy_and_relative_imports(tmp_path):
    _write(
        tmp_path,
        {
            "bot/__init__.py": "",
            "bot/a.py": "from .b import thing\n",
            "bot/b.py": "def thing():\n    from . import a  # lazy\n    return a\n",
            "bot/c.py": "import bot.sub.d\nfrom bot.a import thing\n",
            "bot/sub/__init__.py": "from . import d\n",
            "bot/sub/d.py": "from ..c import x\nimport json\n",
        },
    )
    g = import_graph.graph(tmp_path)
    assert g == {
        "bot": set(),
        "bot.a": {"bot.b"},
        "bot.b": {"bot.a"},
        "bot.c": {"bot.sub.d", "bot.a"},
        "bot.sub": {"bot.sub.d"},
        "bot.sub.d": {"bot.c"},
    }
    assert import_graph.cycles(g) == [["bot.a", "bot.b"], ["bot.c", "bot.sub.d"]]


def test_script_prints_graph_and_exits_by_cycles(tmp_path):
    ok = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py"), str(ROOT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "bot.pipeline" in ok.stdout and "no import cycle among" in ok.stdout
    _write(tmp_path, {"bot/__init__.py": "", "bot/a.py": "from . import b\n", "bot/b.py": "import bot.a\n"})
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py"), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[-1] == "  bot.a <-> bot.b"


def test_what_bot_loads_by_path_does_not_import_bot():
    """bot.demo loads examples/make_fork.py by path: a dependency in one direction only."""
    demo = (ROOT / "bot" / "demo.py").read_text()
    assert '_load(EXAMPLES / "make_fork.py")' in demo and 'scripts" / "llamacpp_e2e.py' not in demo
    assert "bot" not in _imported_tops(ROOT / "examples" / "make_fork.py")


def test_sky_never_imports_bot():
    """sky/*.py is copied alone to benchmark VMs: never the bot; the driver itself is standard library
    only."""
    siblings = {p.stem for p in (ROOT / "sky").glob("*.py")}
    for path in sorted((ROOT / "sky").glob("*.py")):
        assert "bot" not in _imported_tops(path), path.name
    foreign = _imported_tops(ROOT / "sky" / "driver.py") - set(sys.stdlib_module_names) - siblings
    assert foreign == set()
