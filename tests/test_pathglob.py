"""The one path-glob matcher (sky/pathglob.py) as a table, checked on every side that uses it: the bot's
import (bot.pathglob), the coding agent's write check (Workspace), and the VM driver's protected-path
restore (driver.overlay_protected on a real git repository)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot import pathglob
from bot.agent.tools import ALWAYS_PROTECTED, ToolError, Workspace
from tests.engine_helpers import DRIVER

sys.path.insert(0, str(DRIVER.parent))
import driver  # noqa: E402  (sky/driver.py, stdlib only)

# (pattern, path, matches: as allowed/hot paths (case counts), protects: as a protected path (any case))
TABLE = [
    ("src/*.c", "src/a.c", True, True),
    ("src/*.c", "src/a/b.c", False, False),  # `*` never crosses '/' (fnmatch in research did)
    ("src/*", "src/a/b.c", True, True),  # ... but a matched directory covers what is below it
    ("src/**", "src/a/b.c", True, True),
    ("src/**", "srcs/a.c", False, False),
    ("src/**/k.c", "src/k.c", True, True),  # `**/` may match no directory at all
    ("src/**/k.c", "src/a/b/k.c", True, True),
    ("**/*.md", "c.md", True, True),
    ("**/*.md", "a/b/c.md", True, True),
    ("*.md", "a/b.md", False, False),
    ("**", "any/depth/at/all.c", True, True),
    ("a**b", "a/x/b", True, True),  # `**` inside a segment crosses '/'
    ("src/?.c", "src/a.c", True, True),
    ("src/?.c", "src/ab.c", False, False),
    ("src/[ab].c", "src/a.c", False, False),  # no character classes: '[' is a plain character
    ("src/[ab].c", "src/[ab].c", True, True),
    ("bench", "bench/run.sh", True, True),  # a directory pattern protects its files (the agent allowed)
    ("bench/", "bench/run.sh", True, True),
    ("bench", "benchmark.c", False, False),
    ("bench/**", "bench/x/y.c", True, True),
    ("bench/**", "benchmark.c", False, False),
    ("tools", "tools/run.sh", True, True),
    ("Bench/**", "bench/run.sh", False, True),  # case: protected paths ignore it, allowed/hot do not
    ("bench/**", "BENCH/run.sh", False, True),
    (".github/**", ".GITHUB/x.yml", False, True),
    ("./src/*.c", "src/a.c", True, True),  # leading ./ and / on a pattern are ignored
    ("/src/*.c", "src/a.c", True, True),
    (" bench/** ", "bench/a.sh", True, True),  # so is whitespace around it
    ("src/*.c", "./src/a.c", True, True),  # and a leading ./ on a path
    ("", "src/a.c", False, False),  # an empty pattern matches nothing
]
IDS = [f"{pattern!r}~{path!r}" for pattern, path, _, _ in TABLE]


@pytest.mark.parametrize(("pattern", "path", "matches", "protects"), TABLE, ids=IDS)
def test_bot_matcher(pattern: str, path: str, matches: bool, protects: bool) -> None:
    assert pathglob.match(path, [pattern]) is matches
    assert pathglob.protected(path, [pattern]) is protects
    assert pathglob.match(path, ["nothing/here", pattern]) is matches  # any of several patterns


def test_driver_and_bot_load_the_same_file() -> None:
    assert Path(driver.pathglob.__file__).resolve() == DRIVER.parent / "pathglob.py"
    assert Path(sys.modules["autoresearch_sky_pathglob"].__file__).resolve() == DRIVER.parent / "pathglob.py"


@pytest.mark.parametrize(("pattern", "path", "matches", "protects"), TABLE, ids=IDS)
def test_agent_write_check(tmp_path: Path, pattern: str, path: str, matches: bool, protects: bool) -> None:
    """Protected: refused exactly when the driver would restore the file. Allowed: written exactly when the
    pattern matches (unless the path is always protected)."""
    guarded = Workspace(tmp_path, allowed=["**"], protected=[pattern])
    always = pathglob.protected(path, ALWAYS_PROTECTED)
    if protects or always:
        with pytest.raises(ToolError, match="is protected"):
            guarded.write_file(path, "x\n")
    else:
        guarded.write_file(path, "x\n")
    limited = Workspace(tmp_path, allowed=[pattern], protected=[])
    if matches and not always:
        limited.write_file(path, "y\n")
        assert (tmp_path / pathglob.normalize(path)).read_text() == "y\n"
    else:
        with pytest.raises(ToolError, match="protected|outside the allowed paths"):
            limited.write_file(path, "y\n")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.mark.parametrize(
    ("pattern", "path", "matches", "protects"),
    [row for row in TABLE if pathglob.normalize(row[1]) == row[1]],
    ids=[i for i, row in zip(IDS, TABLE, strict=True) if pathglob.normalize(row[1]) == row[1]],
)
def test_driver_restores_what_is_protected(
    tmp_path: Path, pattern: str, path: str, matches: bool, protects: bool
) -> None:
    """A candidate commit adds `path`; the driver removes it again exactly when `pattern` protects it."""
    _git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "README").write_text("base\n")
    _git(tmp_path, "add", "README")
    _git(tmp_path, "commit", "-qm", "base")
    base = _git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text("candidate\n")
    _git(tmp_path, "add", "--", path)
    _git(tmp_path, "commit", "-qm", "candidate")
    cand = _git(tmp_path, "rev-parse", "HEAD")
    restored = driver.overlay_protected(tmp_path, base, cand, [pattern])
    assert restored == ([path] if protects else [])
    assert (tmp_path / path).exists() is not protects
