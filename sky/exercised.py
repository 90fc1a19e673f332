"""Whether the functions a candidate changes run at all in the native build the wall tier measures (stdlib).

The simulated tier runs another build (x86-64-v3 / armv8.2-a: valgrind runs no AVX-512, AMX or SVE), so a
change to a kernel that the native build never calls (another ISA's path, a buffer type that takes the tensor
first) can win in simulation and do nothing on the machine. No hardware counters needed: gdb sets a
breakpoint on each changed function (every overload and instantiation of that name), ignores its hits, and
reports how many there were, over one short run of the benchmark.

    functions(diff)                      names of the functions a unified diff (-U0) changes or adds
    count_calls(argv, cwd, env, names)   {"tool", "functions": {name: hits | None (no such symbol)}}
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

SOURCE_RE = re.compile(r"\.(c|cc|cpp|cxx|h|hh|hpp|inc|cu|m|mm)$")
_HUNK = re.compile(r"^@@ [^@]* @@\s?(.*)$")
# `type name(` in a hunk header or a definition line: the last identifier before the first parenthesis
_DEF_NAME = re.compile(r"(?:^|[\s\*&:])([A-Za-z_]\w*)\s*(?:<[^()]*>)?\s*\(")
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "defined", "catch", "decltype", "alignof"}
_DEFINITION = re.compile(r"^[A-Za-z_][\w\s\*&:<>,]*?\b([A-Za-z_]\w*)\s*\([^;]*\)?\s*(?:const\s*)?\{?\s*$")
MAX_FUNCTIONS = 12


_ATTRS = re.compile(r"__attribute__\s*\(\(.*?\)\)|__declspec\s*\([^)]*\)|\[\[[^\]]*\]\]|alignas\s*\([^)]*\)")


def _name(text: str) -> str | None:
    m = _DEF_NAME.search(_ATTRS.sub(" ", text.split("//", 1)[0]))
    name = m.group(1) if m else None
    return name if name and name not in _KEYWORDS else None


def functions(diff: str) -> list[str]:
    """The functions a unified diff changes: the enclosing function git names in each hunk header (git run
    with the cpp diff driver), and functions whose definitions are added."""
    out: list[str] = []
    path = ""
    for line in diff.splitlines():
        if line.startswith("+++ "):
            name = line[4:].strip()
            path = name[2:] if name[:2] == "b/" else name
            continue
        if not SOURCE_RE.search(path or ""):
            continue
        m = _HUNK.match(line)
        if m and m.group(1):
            name = _name(m.group(1))
        elif line.startswith("+") and not line.startswith("+++") and _DEFINITION.match(line[1:]):
            name = _name(line[1:])
        else:
            continue
        if name and name not in out:
            out.append(name)
    return out[:MAX_FUNCTIONS]


# a function definition line, indented or not (methods in a class body): a type and a name before `(`, no `;`
XFUNCNAME = r"^[ \t]*(([A-Za-z_][A-Za-z_0-9:<>,\*&]*[ \t\*&]+)+[A-Za-z_][A-Za-z_0-9:]*[ \t]*\([^;]*)$"
ATTRIBUTES = "".join(
    f"*.{ext} diff=fnscan\n" for ext in ("c", "cc", "cpp", "cxx", "h", "hh", "hpp", "inc", "cu")
)


def diff_args(attributes_file: str | Path) -> list[str]:
    """git options (before the subcommand) whose hunk headers name the enclosing C/C++ function; writes the
    attributes file they point at."""
    Path(attributes_file).write_text(ATTRIBUTES)
    return ["-c", f"core.attributesFile={attributes_file}", "-c", f"diff.fnscan.xfuncname={XFUNCNAME}"]


def count_calls(
    argv: list[str], cwd: str | Path, env: dict, names: list[str], timeout: float = 600, runner=None
) -> dict:
    """Run argv once under gdb with an ignored breakpoint on each name; hits per name (None: no symbol).
    `runner(args, cwd, env, timeout)` -> (returncode, output) runs it instead (the driver: in the variant's
    sandbox, since argv is the variant's own binary); a timeout is then a non-zero code with its reason."""
    t0 = time.monotonic()
    gdb = shutil.which("gdb")
    if not gdb:
        return {"ok": False, "tool": "gdb", "error": "gdb is not installed (apt-get install gdb)"}
    if not names:
        return {"ok": True, "tool": "gdb", "functions": {}, "seconds": 0.0}
    cmds = [
        "set pagination off",
        "set confirm off",
        "set breakpoint pending on",
        "set print thread-events off",
    ]
    for name in names:
        cmds += [f"break {name}", "ignore $bpnum 2000000000"]
    cmds += ["run", "info breakpoints", "kill", "quit"]
    args = [gdb, "-nx", "-batch"]
    for c in cmds:
        args += ["-ex", c]
    args += ["--args", *argv]
    if runner is not None:
        returncode, text = runner(args, cwd, env, timeout)
    else:
        try:
            p = subprocess.run(args, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "tool": "gdb", "error": f"the run under gdb took over {timeout:.0f} s"}
        returncode, text = p.returncode, p.stdout + p.stderr
    # `info breakpoints`: one row per breakpoint in the order set (`N  breakpoint keep y  <addr | <PENDING> |
    # <MULTIPLE>> ...`), then `\tbreakpoint already hit K times` when it was hit; a name no loaded object
    # defines stays <PENDING> (no symbol: inlined everywhere, or not built for this ISA)
    table = text[text.rfind("Num     Type") :] if "Num     Type" in text else ""
    rows = [r for r in re.split(r"\n(?=\d+\s+breakpoint\s)", table) if re.match(r"\d+\s+breakpoint\s", r)]
    hits: dict[str, int | None] = {}
    for name, row in zip(names, rows, strict=False):
        k = re.search(r"breakpoint already hit (\d+) times?", row)
        hits[name] = None if "<PENDING>" in row else (int(k.group(1)) if k else 0)
    if len(rows) != len(names):
        return {
            "ok": False,
            "tool": "gdb",
            "error": f"gdb listed {len(rows)} of {len(names)} breakpoints",
            "log_tail": text[-800:],
        }
    return {
        "ok": True,
        "tool": "gdb",
        "functions": hits,
        "seconds": round(time.monotonic() - t0, 3),
        "exit": returncode,
    }


def never_run(rec: dict | None) -> list[str]:
    """The changed functions of an exercised record that the native run provably never entered: every changed
    function that has a symbol got 0 hits. A name without a symbol (None: inlined into its callers, as an -O3
    build does with most small or single-caller functions) cannot be counted, so it neither flags nor clears;
    [] when nothing was checked, nothing could be counted, or any changed function ran."""
    fns = (rec or {}).get("functions") or {}
    counted = {k: v for k, v in fns.items() if v is not None}
    if not (rec or {}).get("ok") or not counted or any(v > 0 for v in counted.values()):
        return []
    return sorted(counted)
