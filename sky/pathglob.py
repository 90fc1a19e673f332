"""The one path-glob matcher: the VM driver's protected-path restore, the coding agent's write checks, the
push check and research's hot/allowed paths all match repository paths with it. Stdlib only (shipped to
the VM next to driver.py; the bot loads this same file through bot.pathglob).

Semantics (a path is repository-relative, '/'-separated):
- `**/` matches any number of leading directories, none included; `**` elsewhere matches anything, '/' too;
  `*` matches within one path segment (never '/'); `?` one character other than '/'; every other character,
  `[` and `]` included, matches itself.
- A pattern that matches a directory matches everything below it, as in .gitignore: `bench` and `bench/`
  match `bench/run.sh`, `src/*` matches `src/a/b.c`; `src/*.c` does not match `src/a/b.c`.
- Leading `./` and `/` are ignored on both sides, and so is whitespace around a pattern; an empty pattern
  matches nothing.
- Case counts, except for protected paths (`protected`): a protected pattern also covers other spellings of
  the same name (`.GITHUB/x.yml` under `.github/**`), because on a case-insensitive checkout they are the
  same file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable


def normalize(path: str) -> str:
    """`path` without surrounding whitespace, leading `./` or `/`, or a trailing `/`."""
    p = path.strip()
    while p.startswith(("./", "/")):
        p = p[2:] if p.startswith("./") else p[1:]
    return p.rstrip("/")


@functools.lru_cache(maxsize=1024)
def regex(pattern: str) -> re.Pattern[str] | None:
    """The compiled pattern (None for an empty one); it matches the path and everything below it."""
    p = normalize(pattern)
    if not p:
        return None
    out, i = [], 0
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    return re.compile("".join(out) + r"(?:/.*)?\Z", re.DOTALL)


def match(path: str, patterns: Iterable[str], ignore_case: bool = False) -> bool:
    """Whether `path` (or a directory above it) matches one of `patterns`."""
    path = normalize(path)
    if ignore_case:
        path = path.lower()
    for pattern in patterns:
        rx = regex(pattern.lower() if ignore_case else pattern)
        if rx is not None and rx.match(path):
            return True
    return False


def protected(path: str, patterns: Iterable[str]) -> bool:
    """Whether `path` is protected by `patterns` (case-insensitively: see the module's doc)."""
    return match(path, patterns, ignore_case=True)
