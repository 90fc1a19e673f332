#!/usr/bin/env python3
"""Slow end-to-end proof of the llama.cpp preset on the real llama.cpp source, through the real bench driver.

    .venv/bin/python scripts/llamacpp_e2e.py [--source DIR] [--workdir DIR] [--rounds 8] [--reps 2]

Builds a local repo from the fetched source (scripts/fetch_llamacpp.sh) with three candidate commits:
  a_a       an empty commit (identical tree)              -> must not be a winner, no verdict "faster"
  slow_norm rms_norm sums each row 12 times (ggml-cpu)   -> must be detected slower
  bad_norm  rms_norm without the sqrt (broken numerics)   -> must fail validation
then runs sky/driver.py on one spec through the bot's LocalExecutor (git bundle + rendered sky/bench.yaml;
--direct: the driver alone), decides with bot.experiments.stats, measures a
no-op and a one-file incremental rebuild, and prints a table. Exit status 0 only when all three expectations
hold. CPU heavy: the first (cold) baseline build takes minutes; candidates build from ccache.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKY = ROOT / "sky"
sys.path.insert(0, str(ROOT))
# the fork edits live in the package (bot.demo uses them too); re-exported here for llamacpp_simulate.py
from bot.llamacpp_forks import BAD_PATCH, FAST_GEMV_EDITS, OPS, SLOW_PATCH, apply_edits  # noqa: E402,F401


def sh(args: list[str], cwd: Path | None = None, **kw) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="e2e",
        GIT_AUTHOR_EMAIL="e2e@localhost",
        GIT_COMMITTER_NAME="e2e",
        GIT_COMMITTER_EMAIL="e2e@localhost",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
    )
    return subprocess.run(
        args, cwd=str(cwd) if cwd else None, check=True, text=True, stdout=subprocess.PIPE, env=env, **kw
    ).stdout.strip()


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def make_repo(source: Path, repo: Path) -> dict[str, str]:
    """Clone the source and add the three candidate commits on branches; return name -> sha."""
    if repo.exists():
        shutil.rmtree(repo)
    sh(["git", "clone", "-q", str(source), str(repo)])
    base = sh(["git", "rev-parse", "HEAD"], repo)
    shas = {"baseline": base}

    def branch(name: str, edit) -> None:
        sh(["git", "checkout", "-q", "-B", name, base], repo)
        msg = edit()
        sh(["git", "commit", "-q", "--allow-empty", "-am", msg], repo)
        shas[name] = sh(["git", "rev-parse", "HEAD"], repo)

    def patch(old: str, new: str, msg: str):
        def edit() -> str:
            f = repo / OPS
            text = f.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"patch anchor for {msg!r} not found exactly once in {OPS}")
            f.write_text(text.replace(old, new))
            return msg

        return edit

    branch("a_a", lambda: "empty commit: identical tree")
    branch(
        "slow_norm", patch(*SLOW_PATCH, "rms_norm: redundant recomputation of the sum (deliberate slowdown)")
    )
    branch("bad_norm", patch(*BAD_PATCH, "rms_norm: forget the sqrt (deliberately broken numerics)"))
    sh(["git", "checkout", "-q", base], repo)
    return shas


def project(args: argparse.Namespace) -> dict:
    try:
        from bot.config import ProjectConfig  # noqa: PLC0415

        proj = ProjectConfig.from_dict({"preset": "llama.cpp"}).to_dict()
    except Exception as e:  # noqa: BLE001  (config module not ready: same fields by hand)
        print(f"note: bot.config unavailable ({e}); using a hand-written llama.cpp project")
        proj = {
            "preset": "llama.cpp",
            "preset_hooks": "llamacpp",
            "benchmark": {
                "metrics": [
                    {"name": "tg", "unit": "t/s", "higher_is_better": True},
                    {"name": "pp", "unit": "t/s", "higher_is_better": True},
                ],
                "target": "tg",
            },
            "decision": {},
            "paths": {"protected": []},
        }
    proj["benchmark"].update(
        {"rounds": args.rounds, "repetitions": args.reps, "warmup": 1, "threads": args.threads}
    )
    proj["preset_options"] = dict(
        proj.get("preset_options") or {}, n_prompt=64, n_gen=32, bench_reps=args.bench_reps
    )
    return proj


def run_driver(files: Path, spec: dict, workdir: Path, log_path: Path) -> dict:
    files.mkdir(parents=True, exist_ok=True)
    for path in SKY.glob("*.py"):  # every sky/*.py is shipped (driver.py imports paired.py, simulate.py)
        shutil.copy2(path, files / path.name)
    (files / "spec.json").write_text(json.dumps(spec, indent=1))
    env = dict(os.environ)
    cmd = [
        sys.executable,
        str(files / "driver.py"),
        "--spec",
        str(files / "spec.json"),
        "--out",
        str(files / "result.json"),
        "--workdir",
        str(workdir),
    ]
    print("$", " ".join(cmd), f"(log: {log_path})", flush=True)
    with open(log_path, "w") as log:
        p = subprocess.Popen(
            cmd, cwd=str(files), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in p.stdout:
            log.write(line)
            if line.startswith("[driver]"):
                print("   ", line.rstrip()[:160], flush=True)
        p.wait()
    if p.returncode != 0:
        raise SystemExit(f"driver exited {p.returncode}; see {log_path}")
    return json.loads((files / "result.json").read_text())


def run_executor(spec: dict, repo: Path, base_dir: Path, log_path: Path) -> tuple[dict, Path]:
    """The bot's own path: git bundle + LocalExecutor (rendered sky/bench.yaml `run`, detached runner)."""
    from bot.experiments import executors, tasks  # noqa: PLC0415

    if base_dir.exists():
        shutil.rmtree(base_dir)
    bundle = tasks.make_bundle(
        repo,
        [spec["baseline"]["sha"]] + [c["sha"] for c in spec["candidates"]],
        base_dir.parent / "e2e.bundle",
    )
    # the runner's python3 must have gguf + numpy (a VM gets them in setup): put this interpreter first
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    ex = executors.LocalExecutor(base_dir)
    handle = ex.submit(executors.Batch(run_id=0, specs={spec["arch"]: spec}, bundle=bundle))
    print(f"LocalExecutor handle {handle} (log: {log_path})", flush=True)
    seen = 0
    while (state := ex.poll(handle)) == "running":
        time.sleep(2)
        text = ex.logs(handle)
        for line in text[seen:].splitlines():
            if line.startswith("[driver]"):
                print("   ", line[:160], flush=True)
        seen = len(text)
    log_path.write_text(ex.logs(handle))
    results = ex.collect(handle)
    if spec["arch"] not in results:
        raise SystemExit(f"executor {state}: no result; see {log_path}")
    return results[spec["arch"]], base_dir / handle / spec["arch"] / "work"


def rebuild_times(workdir: Path, proj: dict, threads: int) -> dict[str, float]:
    """Rebuilds of the built baseline tree through the preset: no-op, touched ops.cpp (ccache hit + relink),
    edited ops.cpp (a real recompile of that ggml-cpu translation unit + relink)."""
    driver = load("e2e_driver", SKY / "driver.py")
    sys.path.insert(0, str(SKY))
    llamacpp = load("llamacpp", SKY / "llamacpp.py")
    cc = driver.ccache_setup(workdir)
    env = dict(os.environ)
    env.update({k: v for k, v in cc.items() if k != "CCACHE_BIN"})
    ctx = driver.Ctx(workdir=workdir, project=proj, threads=threads, env=env, ccache_env=cc, cpus=[])
    tree = workdir / "wt" / "baseline"
    edited = tree / OPS
    original = edited.read_text()

    def touch() -> None:
        (tree / OPS).touch()

    def edit() -> None:
        edited.write_text(original + f"\nstatic int autoresearch_e2e_edit_{int(time.time())} = 0;\n")

    out = {}
    try:
        for label, change in (("noop", None), ("touch_ops", touch), ("edit_ops", edit)):
            if change:
                change()
            t = time.monotonic()
            ok, text = llamacpp.build(tree, ctx)
            out[label] = round(time.monotonic() - t, 1)
            if not ok:
                raise SystemExit(f"rebuild ({label}) failed:\n{text[-2000:]}")
    finally:
        edited.write_text(original)
    return out


def decide(result: dict, proj: dict):
    try:
        from bot.experiments import stats  # noqa: PLC0415
    except Exception as e:  # noqa: BLE001
        print(f"note: bot.experiments.stats unavailable ({e}); raw medians only")
        return None
    return stats.decide({result["arch"]: result}, proj, baseline="baseline")


def report(result: dict, decision, rebuild: dict[str, float]) -> bool:
    arch = result["arch"]
    print(
        "\n== machine:",
        result["machine"].get("cpu"),
        f"nproc={result['machine'].get('nproc')}",
        "| timings:",
        json.dumps(result["timings"]),
    )
    print(
        f"\n{'variant':<10} {'status':<18} {'build_s':>8} {'pp t/s (med, n)':>18} {'tg t/s (med, n)':>18}  "
        f"{'verdict tg / pp':<22} validation"
    )
    verdicts = {}
    for name, v in result["variants"].items():
        med = {m: (statistics.median(s), len(s)) for m, s in (v.get("samples") or {}).items() if s}
        rows = [r for r in (decision.rows if decision else []) if r.candidate == name and r.arch == arch]
        verdict = {r.metric: r.verdict for r in rows}
        verdicts[name] = verdict
        checks = "; ".join(
            f"{c['name']}={'ok' if c['ok'] else 'FAIL'} ({c['detail'][:90]})"
            for c in (v.get("validation") or {}).get("checks", [])
        )
        cell = {m: f"{med[m][0]:.1f} (n={med[m][1]})" if m in med else "-" for m in ("pp", "tg")}
        vcell = "-" if name == "baseline" else f"{verdict.get('tg', '?')} / {verdict.get('pp', '?')}"
        print(
            f"{name:<10} {v['status']:<18} {v['build']['seconds']:>8.1f} {cell['pp']:>18} {cell['tg']:>18}  "
            f"{vcell:<22} {checks}"
        )
    if decision:
        for r in decision.rows:
            if r.comparison:
                c = r.comparison
                print(
                    f"  {r.candidate}/{r.metric}: speedup {c.speedup:.3f} "
                    f"CI [{c.ci_low:.3f}, {c.ci_high:.3f}] "
                    f"p={c.p_value:.2g} p_holm={c.p_adjusted:.2g} base_cv={c.baseline_cv:.1%} -> {c.verdict}"
                )
        print(
            "  winners:",
            decision.winners or "none",
            "| notes:",
            "; ".join(n.text for n in decision.notes)[:400],
        )
    builds = {n: v["build"]["seconds"] for n, v in result["variants"].items()}
    print(f"\nbuilds in this run (full when $CCACHE_DIR was empty, else from ccache): {builds}")
    print(
        f"rebuild of the built baseline tree: no-op {rebuild['noop']}s, touched {OPS} (ccache hit) "
        f"{rebuild['touch_ops']}s, edited {OPS} (real recompile + relink) {rebuild['edit_ops']}s"
    )
    v = result["variants"]
    expectations = {
        "a_a: validated, not a winner, not faster": v["a_a"]["status"] == "ok"
        and (
            decision is None or ("a_a" not in decision.winners and "faster" not in verdicts["a_a"].values())
        ),
        "slow_norm: validated and detected slower on tg": v["slow_norm"]["status"] == "ok"
        and (decision is None or verdicts["slow_norm"].get("tg") == "slower"),
        "bad_norm: rejected by validation": v["bad_norm"]["status"] == "validation_failed",
    }
    print()
    for text, ok in expectations.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    return all(expectations.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="llama.cpp git repo (default: scripts/fetch_llamacpp.sh)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/llamacpp-e2e"))
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2, help="driver invocations per variant per round")
    ap.add_argument("--bench-reps", type=int, default=5, help="llama-bench -r (samples per invocation)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument(
        "--direct", action="store_true", help="run sky/driver.py directly instead of LocalExecutor"
    )
    args = ap.parse_args()
    t0 = time.monotonic()
    # one ccache for the driver run and the rebuild timings (kept between runs of this script)
    os.environ.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "autoresearch-bot" / "ccache"))
    source = args.source or Path(sh([str(ROOT / "scripts" / "fetch_llamacpp.sh")]).splitlines()[-1])
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    shas = make_repo(source, work / "repo")
    proj = project(args)
    arch = "arm" if platform.machine().lower() in ("aarch64", "arm64") else "x86"
    proj["architectures"] = [arch]
    spec = {
        "schema": 1,
        "run_id": 0,
        "arch": arch,
        "seed": 1,
        "source": {"url": str(work / "repo")},
        "baseline": {"name": "baseline", "sha": shas["baseline"]},
        "candidates": [{"name": n, "sha": shas[n]} for n in ("a_a", "slow_norm", "bad_norm")],
        "project": proj,
    }
    if args.direct:
        drv_work = work / "driver-work"
        if drv_work.exists():
            shutil.rmtree(drv_work)
        result = run_driver(work / "files", spec, drv_work, work / "driver.log")
    else:
        result, drv_work = run_executor(spec, work / "repo", work / "executor", work / "driver.log")
    rebuild = rebuild_times(drv_work, proj, args.threads)
    ok = report(result, decide(result, proj), rebuild)
    print(f"\ntotal {time.monotonic() - t0:.0f}s; driver workdir: {drv_work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
