"""N bench runs through the real worker, pipeline, benchmark stage and SkyPilotExecutor against the SDK double
(tests/sky_double.py), each VM job with a scripted duration. Shared by tests/test_concurrent_runs.py (small
durations, asserts on counts and states) and scripts/concurrent_runs.py (prints the wall-time figures).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sky_double import PRICE, Attempt, FakeSky, executor

REPO = Path(__file__).resolve().parents[1]
ARCH = {"cloud": "aws", "instance_type": "fake.bench", "price_per_hour": PRICE}


@dataclass
class Comment:
    id: int
    html_url: str


class LocalForge:
    """What a bench run's pipeline asks of the forge: the clone URL (a local bare repo), redaction, the status
    comment (kept as text per issue)."""

    def __init__(self, origin: Path) -> None:
        self.origin = origin
        self.comments: dict[tuple[str, int], str] = {}
        self.checks: list[dict[str, Any]] = []
        self.marked: dict[str, str] = {}  # marker -> the comment's body (the status comment, notices)

    def clone_url(self, repo: str, write: bool = False) -> str:
        return str(self.origin)

    def redact(self, text: str) -> str:
        return text

    def upsert_marked_comment(self, repo: str, number: int, marker: str, body: str) -> Comment:
        self.comments[(repo, number)] = body
        self.marked[marker] = body
        return Comment(number, f"https://example.test/{repo}/issues/{number}#c1")

    def create_check_run(self, repo: str, head_sha: str, name: str, status: str, **fields: Any) -> int:
        """Check runs kept as records (bot/checkruns.py opens one per candidate and arch)."""
        self.checks.append({"repo": repo, "head_sha": head_sha, "name": name, "status": status, **fields})
        return len(self.checks)

    def update_check_run(self, repo: str, check_run_id: int, **fields: Any) -> None:
        self.checks[check_run_id - 1].update({k: v for k, v in fields.items() if v is not None})


def make_origin(root: Path, n: int) -> tuple[Path, str, list[str]]:
    """A bare repository: a baseline commit and `n` candidate commits on top of it -> (path, base, cands)."""
    work = root / "origin-work"
    work.mkdir(parents=True)
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.test", "-c", "commit.gpgsign=false"]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *env_args, *args], cwd=work, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    (work / "kernel.c").write_text("int k(void) { return 0; }\n")
    git("add", ".")
    git("commit", "-q", "-m", "baseline")
    base = git("rev-parse", "HEAD")
    cands = []
    for i in range(n):
        git("checkout", "-q", "--detach", base)
        (work / "kernel.c").write_text(f"int k(void) {{ return {i + 1}; }}\n")
        git("commit", "-q", "-am", f"candidate {i}")
        sha = git("rev-parse", "HEAD")
        git("branch", "-q", f"cand-{i}", sha)
        cands.append(sha)
    bare = root / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, capture_output=True)
    return bare, base, cands


@dataclass
class Outcome:
    runs: int
    concurrency: int
    wall_s: float
    durations: list[float]
    peak: int  # the most VM jobs (one per run) running at once
    states: dict[int, str]
    clusters: dict[int, list[str]]  # run id -> clusters launched for it
    handles: dict[int, list[str]]  # run id -> experiment handles
    workdirs: dict[int, str]
    results: dict[int, str]  # run id -> the cluster its stored result came from
    problems: list[str] = field(default_factory=list)
    store: Any = None
    fake: Any = None


def run_bench(
    root: Path,
    durations: list[float],
    concurrency: int,
    *,
    attempts: list[Attempt] | None = None,
    gate: int = 0,
    timeout: float = 300.0,
    **overrides: Any,
) -> Outcome:
    """One bench run per duration (its VM job runs that long), driven by a started Worker with
    `max_concurrent_runs = concurrency`; returns what happened. `attempts`: the double's script instead
    (launches in order), `gate`: the double's latch (jobs end early once that many ran at once),
    `overrides`: more Settings."""
    from bot.config import ProjectConfig, Settings
    from bot.pipeline import Pipeline
    from bot.stages import DEFAULT_STAGES, render_status
    from bot.store import Store
    from bot.worker import Worker

    root.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database=str(root / "bot.db"),
        data_dir=str(root / "data"),
        executor="skypilot",
        architectures={"x86": dict(ARCH)},
        max_concurrent_runs=concurrency,
        worker_poll_seconds=0.02,
        **{"budget_usd": 100.0, **overrides},
    )
    store = Store(settings.db_path)
    origin, base, cands = make_origin(root, len(durations))
    fake = FakeSky({"x86": attempts or [Attempt("ok", seconds=s) for s in durations]})
    fake.gate = gate
    ex = executor(root, fake)
    ex.poll_interval = 0.02  # the stage's poll loop (1 s for real VMs)

    def noop(ctx: Any) -> None:
        return None

    stages = {
        **DEFAULT_STAGES,
        "implementing": noop,  # the candidate commits are given (a `bench <branch>` run resolves one)
        "deciding": noop,  # the double's samples are not a measurement
        "publishing": noop,
    }
    pipeline = Pipeline(
        settings,
        store,
        LocalForge(origin),
        stages=stages,
        services={"executor": ex},
        status_renderer=render_status,
    )
    raw = yaml.safe_load((REPO / "examples" / "attention" / ".autoresearch.yml").read_text())
    raw["architectures"] = ["x86"]
    project = ProjectConfig.from_dict(raw, ["x86"]).to_dict()
    ids = []
    for i, sha in enumerate(cands):
        run = store.create_run("maria/kernels", 100 + i, "bench", "maria")
        store.put_artifact(run.id, "project", project)
        store.put_artifact(run.id, "baseline", {"branch": "main", "sha": base})
        store.put_artifact(run.id, "candidates", [{"name": f"cand-{i}", "sha": sha, "source": "user"}])
        ids.append(run.id)
    worker = Worker(settings, store, pipeline, lease_seconds=60.0)
    started = time.monotonic()
    worker.start()
    try:
        deadline = time.monotonic() + timeout
        while not all(store.get_run(i).state in ("done", "failed", "cancelled") for i in ids):
            if time.monotonic() > deadline:
                raise TimeoutError("the runs did not finish")
            time.sleep(0.02)
        wall = time.monotonic() - started
    finally:
        worker.stop()
    clusters: dict[int, list[str]] = {i: [] for i in ids}
    for call in fake.calls:
        if call[0] == "launch":
            clusters[int(call[1].split("-")[1][1:])].append(call[1])
    out = Outcome(
        runs=len(ids),
        concurrency=concurrency,
        wall_s=wall,
        durations=list(durations),
        peak=fake.peak,
        states={i: str(store.get_run(i).state) for i in ids},
        clusters=clusters,
        handles={i: [e["handle"] for e in store.experiments(i)] for i in ids},
        workdirs={i: str(settings.data_path / "runs" / str(i)) for i in ids},
        results={i: _result_source(store.get_artifact(i, "results:main")) for i in ids},
    )
    out.problems = shared(out)
    out.store, out.fake = store, fake
    return out


def _result_source(results: dict[str, Any] | None) -> str:
    """The cluster(s) a run's stored results came from (the double writes it into each final result)."""
    return ",".join(sorted(str(r.get("cluster")) for r in (results or {}).values()))


def shared(out: Outcome) -> list[str]:
    """What two runs had in common that they must not: a cluster, a handle, a work dir, a result."""
    problems = []
    for what, per_run in (
        ("cluster", out.clusters),
        ("handle", out.handles),
        ("workdir", {i: [d] for i, d in out.workdirs.items()}),
        ("result", {i: [r] for i, r in out.results.items()}),
    ):
        seen: dict[str, int] = {}
        for run_id, values in per_run.items():
            if not values or values == [""]:
                problems.append(f"run {run_id} has no {what}")
            for v in values:
                if v in seen and seen[v] != run_id:
                    problems.append(f"{what} {v} shared by runs {seen[v]} and {run_id}")
                seen[v] = run_id
    for run_id, value in out.results.items():
        if value not in out.clusters[run_id]:
            problems.append(f"run {run_id}'s result came from {value}, not from its own cluster")
    return problems
