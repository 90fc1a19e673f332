"""Simulated-cost tier: one benchmark invocation under valgrind's cachegrind, per variant (stdlib only).

Why cachegrind (not callgrind): it simulates the same I1/D1/LL caches, runs 2-3x faster than callgrind with
cache simulation, and its per-function costs are *exclusive* (self) costs, which is what a differential
profile needs (callgrind's inclusive costs count a change once per caller up the stack).

Deterministic: the cache model is fixed here (not auto-detected from the host, which differs between
machines: this dev VM reports a 256 MiB direct-mapped LL), so a variant costs the same on every machine of
one ISA. The demo's ./bench (1.1e9 instructions) measured twice: 332 instructions / 549 estimated cycles
apart (3e-7); the A/A check in tests/test_simulate.py asserts < 0.01%.

Cost model ("estimated cycles", Itamar Turner-Trauring's weights, as used by iai and iai-callgrind,
https://pythonspeed.com/articles/consistent-benchmarking-in-ci/):

    L1 hits  = Ir + Dr + Dw - (I1mr + D1mr + D1mw)
    LL hits  = (I1mr + D1mr + D1mw) - (ILmr + DLmr + DLmw)
    RAM      = ILmr + DLmr + DLmw
    cycles   = L1 hits + 5 * LL hits + 35 * RAM

Instruction counts alone would call the demo's i-k-j matmul slower (1.3% more instructions) although it
has 10x fewer L1 data misses and is much faster on hardware; the cost model ranks it faster.

Valgrind cannot execute AVX-512 or SVE: a preset builds its simulation binaries for a portable ISA
(x86-64-v3 / armv8.2-a+dotprod) where it can (llama.cpp); a generic project's own build is simulated as it
is, and a binary valgrind cannot run is reported with that reason (build it without -march=native).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

TOOL = "cachegrind"
CACHE = {"I1": (32768, 8, 64), "D1": (32768, 8, 64), "LL": (16 * 1024 * 1024, 16, 64)}
WEIGHTS = {"l1_hit": 1, "ll_hit": 5, "ram": 35}
EVENTS = ("Ir", "I1mr", "ILmr", "Dr", "D1mr", "DLmr", "Dw", "D1mw", "DLmw")
MAX_FUNCTIONS = 200  # kept per variant: the costliest functions ...
MIN_FUNCTION_SHARE = 1e-4  # ... down to 0.01% of the total
UNSUPPORTED_MARKERS = (
    "unhandled instruction bytes",
    "Illegal opcode",
    "vex amd64->IR: unhandled",
    "disInstr(arm64): unhandled",
)


def available() -> tuple[bool, str]:
    """(valgrind usable, reason when not)."""
    exe = shutil.which("valgrind")
    if not exe:
        return False, "valgrind is not installed (apt-get install valgrind)"
    try:
        out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"valgrind does not start: {e}"
    if out.returncode != 0:
        return False, f"valgrind --version exited {out.returncode}"
    return True, out.stdout.decode(errors="replace").strip()


def portable_isa(arch: str | None = None) -> str:
    """The ISA level simulation builds target on this machine's architecture."""
    m = (arch or platform.machine()).lower()
    if m in ("x86_64", "amd64", "x86"):
        return "x86-64-v3"
    if m in ("aarch64", "arm64", "arm"):
        return "armv8.2-a+dotprod"
    return m


def cache_description() -> str:
    def one(name: str) -> str:
        size, assoc, line = CACHE[name]
        return (
            f"{name} {size // 1024}K {assoc}-way {line}B"
            if size < 1 << 20
            else f"{name} {size // (1 << 20)}M {assoc}-way {line}B"
        )

    return ", ".join(one(n) for n in ("I1", "D1", "LL"))


def valgrind_argv(out_dir: Path) -> list[str]:
    args = [
        "valgrind",
        f"--tool={TOOL}",
        "--cache-sim=yes",
        "--branch-sim=no",
        "--trace-children=yes",
        f"--cachegrind-out-file={out_dir}/cg.%p",
        f"--log-file={out_dir}/vg.%p.log",
    ]
    for name in ("I1", "D1", "LL"):
        args.append(f"--{name}=" + ",".join(str(x) for x in CACHE[name]))
    return args


def estimated_cycles(ev: dict) -> int:
    l1_miss = ev.get("I1mr", 0) + ev.get("D1mr", 0) + ev.get("D1mw", 0)
    ll_miss = ev.get("ILmr", 0) + ev.get("DLmr", 0) + ev.get("DLmw", 0)
    accesses = ev.get("Ir", 0) + ev.get("Dr", 0) + ev.get("Dw", 0)
    return (
        WEIGHTS["l1_hit"] * (accesses - l1_miss)
        + WEIGHTS["ll_hit"] * (l1_miss - ll_miss)
        + WEIGHTS["ram"] * ll_miss
    )


def parse_cachegrind(text: str) -> tuple[dict, dict]:
    """A cachegrind.out file -> (totals {event: n}, {function: {event: n}}), functions merged by name."""
    events: list[str] = []
    totals: dict = {}
    funcs: dict = {}
    current = None
    for line in text.splitlines():
        if not line:
            continue
        if line[0].isdigit():
            if current is None:
                continue
            acc = funcs[current]
            for name, value in zip(events, line.split()[1:], strict=False):
                acc[name] = acc.get(name, 0) + int(value)
        elif line.startswith("fn="):
            current = line[3:].strip()
            funcs.setdefault(current, {})
        elif line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            totals = dict(zip(events, (int(x) for x in line.split()[1:]), strict=False))
    if not totals and funcs:
        for acc in funcs.values():
            for k, v in acc.items():
                totals[k] = totals.get(k, 0) + v
    return totals, funcs


def merge(parts: list[tuple[dict, dict]]) -> tuple[dict, dict]:
    totals: dict = {}
    funcs: dict = {}
    for t, f in parts:
        for k, v in t.items():
            totals[k] = totals.get(k, 0) + v
        for name, ev in f.items():
            acc = funcs.setdefault(name, {})
            for k, v in ev.items():
                acc[k] = acc.get(k, 0) + v
    return totals, funcs


def summarize(totals: dict, funcs: dict) -> dict:
    """The record stored per variant: totals, estimated cycles, the costliest functions."""
    cycles = estimated_cycles(totals)
    rows = [
        {"name": name, "cycles": estimated_cycles(ev), "instructions": ev.get("Ir", 0)}
        for name, ev in funcs.items()
    ]
    rows.sort(key=lambda r: (-r["cycles"], r["name"]))
    floor = cycles * MIN_FUNCTION_SHARE
    kept = [r for r in rows[:MAX_FUNCTIONS] if r["cycles"] >= floor]
    return {
        "events": {k: totals.get(k, 0) for k in EVENTS},
        "estimated_cycles": cycles,
        "instructions": totals.get("Ir", 0),
        "functions": kept,
        "functions_total": len(rows),
    }


def run(
    cmd: str | list,
    cwd: Path,
    env: dict,
    out_dir: Path,
    timeout: float = 3600,
    kill=None,
    runner=None,
    host_dir: Path | None = None,
    read=None,
) -> dict:
    """Run `cmd` once under cachegrind; return the variant's `simulated` record (ok / error).
    `kill(pid)` ends the process tree on timeout (the driver's kill_tree). With a sandbox: `runner(argv, cwd,
    env, timeout)` -> (rc, output bytes, error or None) runs it there, `out_dir` is the output directory as
    the sandbox sees it and `host_dir` the same directory here; `read(path)` reads a file the sandbox wrote
    (regular files only, size-capped)."""
    kill = kill or (lambda pid: os.kill(pid, 9))
    read = read or (lambda path: Path(path).read_bytes())
    out_dir = Path(out_dir)
    host = Path(host_dir) if host_dir is not None else out_dir
    if runner is None:
        if host.exists():
            shutil.rmtree(host)
        host.mkdir(parents=True)
    inner = ["bash", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    argv = valgrind_argv(out_dir) + inner
    t = time.monotonic()
    breach = None
    if runner is not None:
        rc, raw, breach = runner(argv, cwd, env, timeout)
    else:
        # same process group as the driver: cancelling the batch (killpg) stops the simulation too
        p = subprocess.Popen(
            argv,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            raw, _ = p.communicate(timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            kill(p.pid)
            raw, _ = p.communicate()
            rc = 124
    seconds = round(time.monotonic() - t, 3)

    def text_of(f: Path) -> str:
        try:
            return read(f).decode(errors="replace")
        except OSError as e:
            return f"[unreadable: {e}]"

    vg_logs = sorted(host.glob("vg.*.log"))
    cg_files = sorted(host.glob("cg.*"))
    logs = "".join(text_of(f) for f in vg_logs)
    output = raw.decode(errors="replace")
    record = {
        "ok": False,
        "tool": TOOL,
        "seconds": seconds,
        "cache": cache_description(),
        "weights": dict(WEIGHTS),
    }
    if breach:
        record["error"] = f"{breach} under valgrind\n{output[-800:]}"
        return record
    if any(m in logs for m in UNSUPPORTED_MARKERS):
        record["error"] = (
            "valgrind cannot execute this binary's instructions (AVX-512/SVE?): build the simulated "
            "variant for a portable ISA (e.g. -march=x86-64-v3, armv8.2-a)\n" + logs[-800:]
        )
        return record
    if rc == 124:
        record["error"] = f"timeout after {timeout:.0f}s under valgrind"
        return record
    if rc != 0:
        record["error"] = f"exit {rc} under valgrind\n{output[-1200:]}\n{logs[-600:]}"
        return record
    if not cg_files:
        record["error"] = "cachegrind wrote no output file\n" + logs[-800:]
        return record
    if runner is not None and len(cg_files) != len(vg_logs):
        # every traced process writes its log at start and its costs at exit: a process killed before its
        # exit (or a file the program wrote itself) leaves costs uncounted, so the total is not trustworthy
        record["error"] = (
            f"{len(vg_logs)} traced processes but {len(cg_files)} cost files: a process ended without its "
            "cost record (killed, or exec'd away); the simulated cost would be incomplete"
        )
        return record
    parts = [parse_cachegrind(text_of(f)) for f in cg_files]
    record.update(summarize(*merge(parts)))
    record["ok"] = True
    record["processes"] = len(parts)
    if runner is None:
        shutil.rmtree(host, ignore_errors=True)
    return record
