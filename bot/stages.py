"""The pipeline's stages: research -> candidates -> benchmarks -> decision -> verification + publishing.

Each stage reads its inputs from the run's artifacts and writes its outputs there; each can run again after a
crash without repeating what is recorded (see bot/pipeline.py).
"""

from __future__ import annotations

import logging
import platform
import re
import time
from typing import Any

from .gitutil import GitError, Mirror
from .pipeline import Cancelled, Pipeline, StageContext, StageFailed
from .store import Run

log = logging.getLogger("autoresearch.stages")

POLL_SECONDS = 1.0


# --------------------------------------------------------------------------------------------------------------
# shared helpers


def mirror(ctx: StageContext) -> Mirror:
    m = Mirror(ctx.settings.data_path / "git", ctx.run.repo, redact=ctx.forge.redact)
    try:
        return m.ensure(ctx.forge.clone_url(ctx.run.repo, write=True))
    except GitError as exc:
        raise StageFailed("Could not fetch the repository.", str(exc)) from None


def baseline_sha(ctx: StageContext) -> str:
    return ctx.artifact("baseline")["sha"]


def llm_for(ctx: StageContext) -> Any | None:
    factory = ctx.pipeline.services.get("llm_factory")
    return factory(ctx) if factory else None


def branch_for(run: Run, slug: str) -> str:
    from .publish import pr_branch_name

    return pr_branch_name(run.issue_number, slug, run.attempt)


def local_arch() -> str:
    machine = platform.machine().lower()
    return "arm" if machine in ("aarch64", "arm64") else "x86"


def measured_archs(ctx: StageContext) -> list[str]:
    """Architectures this run measures: the project's, or with the local executor only this machine's."""
    archs = ctx.project.architectures
    if ctx.settings.executor == "local":
        return [local_arch()]
    return archs


# --------------------------------------------------------------------------------------------------------------
# research


def research(ctx: StageContext) -> None:
    if ctx.artifact("dossier") is not None:
        return
    from .research.arxiv import ArxivOptions
    from .research.dossier import ResearchOptions, build_dossier

    m = mirror(ctx)
    issue = ctx.forge.get_issue(ctx.run.repo, ctx.run.issue_number)
    project = ctx.project.to_dict()
    options = ctx.pipeline.services.get("research_options") or ResearchOptions(
        arxiv=ArxivOptions(base_url=ctx.settings.arxiv_base_url))
    unreachable = False
    if not ctx.settings.arxiv_enabled:
        project["research"]["arxiv"] = False
    elif project["research"]["arxiv"] and not _reachable(options.arxiv.base_url or "https://export.arxiv.org"):
        project["research"]["arxiv"] = False
        unreachable = True
        ctx.event("research", "arXiv is not reachable from this machine: paper search skipped")
    ctx.progress("reading papers, forks and other backends")
    with m.worktree(baseline_sha(ctx), prefix="research-") as tree:
        dossier = build_dossier(issue=issue, project=project, clone_dir=tree, forge=ctx.forge, llm=llm_for(ctx),
                                cache_dir=ctx.settings.data_path / "cache" / "research", repo=ctx.run.repo,
                                options=options)
    data = dossier.to_dict()
    data["markdown"] = dossier.markdown()
    if unreachable:
        why = "arXiv is not reachable from this machine: paper search skipped"
        data["markdown"] = data["markdown"].replace("research.arxiv is false", why)
        for note in data.get("notes", []):
            if note.get("source") == "arxiv":
                note["detail"] = why
    ctx.put("dossier", data)
    ctx.progress(f"dossier ready: {len(data.get('hypotheses', []))} hypotheses")


def _reachable(url: str, timeout: float = 3.0) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------------------------
# candidates


def implement(ctx: StageContext) -> None:
    if ctx.artifact("candidates_done"):
        return
    if ctx.run.kind == "issue":
        _candidates_from_dossier(ctx)
    elif ctx.run.kind == "bench":
        _candidate_from_branch(ctx, ctx.run.params["branch"])
    elif ctx.run.kind == "rebench":
        pr = ctx.forge.get_pull(ctx.run.repo, ctx.run.params["pull"])
        _candidate_from_branch(ctx, pr.head_ref, sha=pr.head_sha, name="pr-head")
    ctx.put("candidates_done", True)


def _add_candidate(ctx: StageContext, cand: dict[str, Any]) -> None:
    cands = ctx.artifact("candidates", [])
    cands = [c for c in cands if c["name"] != cand["name"]] + [cand]
    ctx.put("candidates", cands)
    ctx.progress(f"candidate {cand['name']} ready ({cand['source']})")


def _skip(ctx: StageContext, hypothesis: dict[str, Any], reason: str) -> None:
    skipped = ctx.artifact("skipped", [])
    skipped.append({"hypothesis": hypothesis.get("id"), "title": hypothesis.get("title"), "reason": reason})
    ctx.put("skipped", skipped)
    ctx.event("candidate", f"skipped {hypothesis.get('id')}: {reason}")


def _candidates_from_dossier(ctx: StageContext) -> None:
    from .publish import candidate_from_commit, push_blockers

    dossier = ctx.artifact("dossier") or {}
    m = mirror(ctx)
    base = baseline_sha(ctx)
    done = {c.get("hypothesis") for c in ctx.artifact("candidates", [])}
    done |= {s.get("hypothesis") for s in ctx.artifact("skipped", [])}
    write_url = ctx.forge.clone_url(ctx.run.repo, write=True)
    agent_budget = ctx.project.raw["agent"]["max_candidates"]
    agent_used = sum(1 for c in ctx.artifact("candidates", []) if c["source"] == "agent")
    llm = None
    for h in dossier.get("hypotheses", []):
        if h.get("id") in done:
            continue
        ctx.heartbeat()
        slug = candidate_slug(h)
        branch = branch_for(ctx.run, slug)
        if h.get("kind") == "fork_commit" and h.get("fork"):
            fork = h["fork"]
            try:
                if not m.has(fork["sha"]):
                    m.fetch(ctx.forge.clone_url(fork["repo"], write=False), fork["sha"])
                result = candidate_from_commit(m.path, base, fork["sha"], branch)
            except Exception as exc:
                _skip(ctx, h, f"fork commit could not be ported: {exc}")
                continue
            if not result.sha:
                _skip(ctx, h, "; ".join(d["reason"] for d in result.dropped) or "did not apply")
                continue
            sha, source = result.sha, "fork"
        else:
            if agent_used >= agent_budget:
                _skip(ctx, h, f"agent limit of {agent_budget} candidates reached")
                continue
            llm = llm or llm_for(ctx)
            if llm is None:
                _skip(ctx, h, "no LLM configured (set ANTHROPIC_API_KEY); only fork commits become candidates")
                continue
            sha = _agent_candidate(ctx, m, base, h, llm, branch)
            agent_used += 1
            if sha is None:
                continue
            source = "agent"
        blocked = push_blockers(m.path, base, sha, ctx.project.protected_paths)
        if blocked:
            shown = ", ".join(f"`{p}`" for p in blocked[:5]) + (" ..." if len(blocked) > 5 else "")
            _skip(ctx, h, f"not pushed or measured: it changes {shown} (CI, the config file or protected "
                          f"paths), which the repository's own CI could run with its secrets")
            continue
        try:
            m.push(write_url, sha, branch, force=True)
        except GitError as exc:
            raise StageFailed(f"Could not push candidate branch `{branch}`.", str(exc)) from None
        _add_candidate(ctx, {"name": slug, "branch": branch, "sha": sha, "source": source,
                             "title": h.get("title", slug), "hypothesis": h.get("id"),
                             "citations": h.get("citations", []), "fork": h.get("fork")})


def candidate_slug(h: dict[str, Any]) -> str:
    """Short, stable names: `<fork owner>-<sha7>` for fork commits, the title's words otherwise."""
    from .publish import slugify

    fork = h.get("fork") or {}
    if h.get("kind") == "fork_commit" and fork.get("repo") and fork.get("sha"):
        return slugify(f"{fork['repo'].split('/')[0]}-{fork['sha'][:7]}")
    return slugify(h.get("title") or h.get("id") or "candidate", limit=32)


def _agent_candidate(ctx: StageContext, m: Mirror, base: str, h: dict[str, Any], llm: Any, branch: str) -> str | None:
    from .agent.coder import Limits, implement as agent_implement
    from .agent.tools import Workspace

    issue = ctx.forge.get_issue(ctx.run.repo, ctx.run.issue_number)
    agent_cfg = ctx.project.raw["agent"]
    with m.worktree(base, prefix="agent-") as tree:
        m.git("-C", str(tree), "checkout", "-q", "-B", branch)
        ws = Workspace(tree, allowed=ctx.project.allowed_paths, protected=ctx.project.protected_paths,
                       build_commands=ctx.project.raw["build"]["commands"],
                       isolate=ctx.settings.local_trust != "all")
        limits = Limits(max_turns=agent_cfg["max_turns"], max_seconds=agent_cfg["max_minutes"] * 60)
        result = agent_implement(h, f"{issue.title}\n\n{issue.body or ''}", ws, llm, limits)
        ctx.event("agent", f"{h.get('id')}: {result.status}", result.to_dict())
        if ws.refusals:
            ctx.put(f"refusals:{h.get('id')}", [dict(r) if isinstance(r, dict) else vars(r) for r in ws.refusals])
        if result.status != "committed" or not result.commit_sha:
            _skip(ctx, h, f"agent: {result.status} {result.message}")
            return None
        return result.commit_sha


def _candidate_from_branch(ctx: StageContext, branch: str, sha: str | None = None, name: str | None = None) -> None:
    m = mirror(ctx)
    owner_repo = ctx.run.repo
    if ":" in branch:  # owner:branch of a fork
        owner, branch = branch.split(":", 1)
        owner_repo = f"{owner}/{ctx.run.repo.split('/')[1]}"
    try:
        m.fetch(ctx.forge.clone_url(owner_repo, write=False), f"+refs/heads/{branch}:refs/remotes/cand/{branch}")
        resolved = m.rev(f"refs/remotes/cand/{branch}")
    except GitError as exc:
        raise StageFailed(f"Branch `{branch}` could not be fetched from `{owner_repo}`.", str(exc)) from None
    if sha and resolved != sha:
        ctx.event("candidate", f"branch moved: measuring {resolved[:10]} (PR said {sha[:10]})")
    from .publish import slugify

    _add_candidate(ctx, {"name": name or slugify(branch), "branch": branch, "sha": resolved, "source": "user",
                         "title": f"branch {owner_repo}:{branch}", "hypothesis": None, "citations": []})


# --------------------------------------------------------------------------------------------------------------
# benchmarks


def benchmark(ctx: StageContext) -> None:
    cands = ctx.artifact("candidates", [])
    if not cands:
        ctx.put("results:main", {})
        ctx.progress("no candidates to measure")
        return
    run_experiment(ctx, "main", baseline_sha(ctx), cands)


def run_experiment(ctx: StageContext, name: str, base: str, cands: list[dict[str, Any]]) -> dict[str, Any]:
    """Submit (once) baseline + candidates to the executor, wait, collect; record results and cost."""
    stored = ctx.artifact(f"results:{name}")
    if stored is not None:
        return stored
    from .experiments import executors as ex
    from .experiments.tasks import make_bundle

    executor = ctx.pipeline.services["executor"]
    exp = ctx.store.experiment(ctx.run.id, name)
    handle = exp["handle"] if exp else None
    archs = measured_archs(ctx)
    if not handle:
        _check_budget(ctx, len(cands), archs)
        m = mirror(ctx)
        files = ctx.workdir / f"exp-{name}"
        files.mkdir(parents=True, exist_ok=True)
        bundle = make_bundle(m.path, [base] + [c["sha"] for c in cands], files / "repo.bundle")
        specs = {arch: {"schema": 1, "run_id": ctx.run.id, "arch": arch, "seed": ctx.run.id,
                        "source": {"bundle": "repo.bundle"},
                        "baseline": {"name": "baseline", "sha": base},
                        "candidates": [{"name": c["name"], "sha": c["sha"]} for c in cands],
                        "project": ctx.project.to_dict()} for arch in archs}
        batch = ex.Batch(run_id=ctx.run.id, specs=specs, bundle=bundle,
                         arch_configs={a: ctx.settings.architectures.get(a, {}) for a in archs})
        try:
            handle = executor.submit(batch)
        except ex.UntrustedRefused as exc:
            raise StageFailed("The benchmark was not started: this host cannot isolate untrusted candidate "
                              "code, and the bot never runs it unisolated unless told to.",
                              str(exc)) from None
        ctx.store.upsert_experiment(ctx.run.id, name, ctx.settings.executor, handle=handle, state="running")
        ctx.progress(f"experiment {name} submitted: {len(cands)} candidates on {', '.join(archs)}")
    started = last_note = time.monotonic()
    while True:
        state = executor.poll(handle)
        if state != "running":
            break
        try:
            ctx.heartbeat()
        except Cancelled:
            executor.cancel(handle)
            ctx.store.finish_experiment(ctx.run.id, name, "cancelled")
            raise
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            ctx.progress(f"experiment {name} running ({int(time.monotonic() - started)} s)")
        # a local batch measures on this very machine: wake rarely (no busy polling beside the benchmark)
        time.sleep(float(getattr(executor, "poll_interval", POLL_SECONDS)))
    results = executor.collect(handle)
    vm_seconds, cost = _record_cost(ctx, name, results, executor, handle)
    ctx.store.finish_experiment(ctx.run.id, name, state, vm_seconds=vm_seconds, cost_usd=cost)
    if not results:
        tail = executor.logs(handle)[-3000:] if hasattr(executor, "logs") else ""
        raise StageFailed(f"The benchmark machine produced no result for experiment `{name}`.", tail)
    ctx.put(f"results:{name}", results)
    return results


def _price(ctx: StageContext, arch: str) -> float:
    """$/h of the arch's VM: SkyPilot's local catalog, else the configured price; 0 for the local executor."""
    if ctx.settings.executor == "local":
        return 0.0
    from .experiments.cost import quote_price

    cfg = ctx.settings.architectures.get(arch, {})
    configured = {cfg.get("instance_type", ""): cfg["price_per_hour"]} if cfg.get("price_per_hour") else None
    quote = quote_price(cfg.get("cloud", "aws"), cfg.get("instance_type", ""), cfg.get("region"),
                        bool(cfg.get("use_spot")), configured=configured)
    return float(quote.usd_per_hour or 0.0)


def _check_budget(ctx: StageContext, n_candidates: int, archs: list[str]) -> None:
    """Refuse to launch a batch whose estimated cost would take the run over its budget."""
    from .experiments.cost import estimate_run

    spent = ctx.store.usage_totals(ctx.run.id)["usd"]
    limit = min(ctx.project.budget_usd, ctx.settings.budget_usd)
    bench = ctx.project.raw["benchmark"]
    invocations = bench["rounds"] * (bench["repetitions"] + bench["warmup"])
    per_candidate_s = 120.0 + invocations * 2.0  # build + validate + an invocation every ~2 s (see estimate_cost.py)
    estimate = estimate_run(n_candidates, archs, per_candidate_s, 300.0, {a: _price(ctx, a) for a in archs})
    cost = float(estimate.total_usd or 0.0)
    ctx.event("budget", f"estimated ${cost:.2f} for {n_candidates} candidates on {', '.join(archs)}; "
                        f"spent ${spent:.2f} of ${limit:.2f}")
    if spent + cost > limit:
        raise StageFailed(f"The run's budget would be exceeded: ${spent:.2f} spent, this benchmark would cost about "
                          f"${cost:.2f}, the limit is ${limit:.2f}. No VM was launched. Raise `budget.usd` in "
                          "`.autoresearch.yml` or reduce the candidates.")


def _record_cost(ctx: StageContext, name: str, results: dict[str, Any], executor: Any,
                 handle: str) -> tuple[float, float]:
    """VM seconds (the executor's own count when it has one: launch to teardown) x price, per arch."""
    known = executor.vm_seconds(handle) if hasattr(executor, "vm_seconds") else {}
    total_s, total_usd = 0.0, 0.0
    costs = ctx.artifact("costs", {})
    # every arch that ran a VM is charged, also one that failed and returned no result
    archs = list(results or {}) + [a for a in known if a not in (results or {})]
    for arch in archs:
        result = (results or {}).get(arch)
        seconds = float(known.get(arch) or ((result or {}).get("timings") or {}).get("total_s") or 0.0)
        price = _price(ctx, arch)
        usd = seconds / 3600.0 * price
        total_s += seconds
        total_usd += usd
        costs[arch] = costs.get(arch, 0.0) + usd
        ctx.store.record_usage(ctx.run.id, "vm", usd=usd, detail=f"{name}/{arch}: {seconds:.0f} s at ${price}/h")
    ctx.put("costs", costs)
    return total_s, total_usd


# --------------------------------------------------------------------------------------------------------------
# decision


def project_for(ctx: StageContext, results: dict[str, Any]) -> dict[str, Any]:
    project = ctx.project.to_dict()
    project["architectures"] = [a for a in project["architectures"] if a in results] or list(results)
    return project


def decide(ctx: StageContext) -> None:
    from .experiments.stats import decide as stats_decide

    results = ctx.artifact("results:main") or {}
    if not results:
        ctx.put("decision", {"rows": [], "winners": [], "notes": ["nothing was measured"], "target":
                             ctx.project.target, "archs": []})
        return
    decision = stats_decide(results, project_for(ctx, results), seed=ctx.run.id)
    ctx.put("decision", decision.to_dict())
    ctx.progress(f"decision: {len(decision.winners)} winner(s)")


# --------------------------------------------------------------------------------------------------------------
# verification and publishing


def publish(ctx: StageContext) -> None:
    decision = ctx.artifact("decision") or {}
    if ctx.run.kind == "bench":
        return  # the table in the status comment is the answer
    if ctx.run.kind == "rebench":
        _refresh_pull(ctx, decision)
        return
    winners = decision.get("winners", [])
    if not winners:
        ctx.put("publication", {"kind": "none", "reason": "no candidate was correct and significantly faster"})
        _notify_no_pull(ctx, "no candidate was correct and significantly faster")
        return
    choice = ctx.artifact("choice") or _verify(ctx, decision)
    ctx.put("choice", choice)
    if choice["kind"] == "none":
        ctx.put("publication", {"kind": "none", "reason": choice["reason"]})
        _notify_no_pull(ctx, choice["reason"])
        return
    _open_pull(ctx, choice)


def _notify_no_pull(ctx: StageContext, reason: str) -> None:
    """Tell whoever asked (an @-mention notifies them; editing the status comment does not): once per run."""
    from . import report

    user = ctx.run.trigger_user
    if not user or not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?", user):
        return
    marker = f"<!-- autoresearch:run:{int(ctx.run.id)}:no-pr -->"
    body = (f"{marker}\n@{user} run #{int(ctx.run.id)} finished without a pull request: {report.cell(reason, 300)}. "
            f"The benchmark table is in the status comment above.")
    ctx.store.once(ctx.run.id, "notify:no-pr",
                   lambda: ctx.forge.upsert_marked_comment(ctx.run.repo, ctx.run.issue_number, marker, body).id)


def _verify(ctx: StageContext, decision: dict[str, Any]) -> dict[str, Any]:
    """Stack the winners, measure the stack afresh (with the single winners alongside), choose."""
    from .experiments.stats import decide as stats_decide
    from .publish import choose_publication, stack_winners

    cands = {c["name"]: c for c in ctx.artifact("candidates", [])}
    winners = [{"name": w, "sha": cands[w]["sha"], "speedup": _target_speedup(decision, w)}
               for w in decision["winners"]]
    m = mirror(ctx)
    stack = ctx.artifact("stack")
    if stack is None:
        branch = branch_for(ctx.run, "stack")
        result = stack_winners(m.path, baseline_sha(ctx), winners, branch, force=True)
        stack = result.to_dict()
        if result.sha:
            m.push(ctx.forge.clone_url(ctx.run.repo, write=True), result.sha, branch, force=True)
        ctx.put("stack", stack)
        ctx.progress(f"stacked {len(stack['applied'])} winner(s); dropped {len(stack['dropped'])}")
    if not stack.get("sha"):
        return choose_publication(None, decision)
    verify_cands = [{"name": "stack", "sha": stack["sha"]}] + [
        {"name": w["name"], "sha": w["sha"]} for w in winners]
    results = run_experiment(ctx, "verify", baseline_sha(ctx), verify_cands)
    verification = stats_decide(results, project_for(ctx, results), seed=ctx.run.id + 1).to_dict()
    ctx.put("verification", {"stack": stack, "decision": verification})
    return choose_publication(verification, decision)


def _target_speedup(decision: dict[str, Any], name: str) -> float:
    from .experiments.stats import Decision

    return Decision.from_dict(decision).target_speedup(name)


def _published(ctx: StageContext, choice: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    """(head branch, head sha, stack or None, the decision that measured what is published)."""
    cands = {c["name"]: c for c in ctx.artifact("candidates", [])}
    verification = ctx.artifact("verification") or {}
    measured = verification.get("decision") or ctx.artifact("decision") or {}
    if choice["kind"] == "stack":
        stack = ctx.artifact("stack") or {}
        return stack["branch"], stack["sha"], stack, measured
    c = cands[choice["candidate"]]
    return c["branch"], c["sha"], None, measured


def _open_pull(ctx: StageContext, choice: dict[str, Any]) -> None:
    from . import report

    head_branch, head_sha, stack, measured = _published(ctx, choice)
    inputs = ctx.pipeline.report_inputs(ctx.run)
    candidates = inputs["candidates"] + ([{"name": "stack", "branch": head_branch, "sha": head_sha,
                                           "source": "stack", "title": "stacked verified winners"}] if stack else [])
    body = report.pr_body(_report_run(inputs), measured, candidates, choice, baseline_sha(ctx), head_sha,
                          stack=stack, costs=report_costs(inputs), links=report_links(inputs))
    title = report.pr_title(choice, candidates, measured, (stack or {}).get("applied") or [])
    base_branch = ctx.artifact("baseline")["branch"]

    def create() -> dict[str, Any]:
        existing = ctx.forge.find_open_pull(ctx.run.repo, head_branch)
        pr = existing or ctx.forge.create_pull(ctx.run.repo, title, body, head_branch, base_branch, draft=True)
        return {"number": pr.number, "url": pr.html_url}

    pr = ctx.store.once(ctx.run.id, "pull_request", create)
    ctx.forge.edit_pull(ctx.run.repo, pr["number"], body=body)
    _check_runs(ctx, head_sha, measured, choice["candidate"], candidates)
    ctx.put("publication", {"kind": choice["kind"], "pr_number": pr["number"], "pr_url": pr["url"],
                            "head_branch": head_branch, "head_sha": head_sha, "base_sha": baseline_sha(ctx),
                            "reason": choice["reason"]})
    ctx.progress(f"draft pull request #{pr['number']} opened")


def _check_runs(ctx: StageContext, head_sha: str, decision: dict[str, Any], candidate: str,
                candidates: list[dict[str, Any]]) -> None:
    from . import report

    for kind in ("correctness", "benchmark"):
        def create(kind: str = kind) -> int:
            conclusion, title, summary = report.check_run_output(kind, decision, candidate, candidates)
            return ctx.forge.create_check_run(ctx.run.repo, head_sha, f"autoresearch / {kind}", "completed",
                                              conclusion=conclusion, title=title, summary=summary)

        ctx.store.once(ctx.run.id, f"check_run:{kind}:{head_sha}", create)


def _refresh_pull(ctx: StageContext, decision: dict[str, Any]) -> None:
    """Rebench of a PR: the status comment on the PR carries the new table; check runs on its head."""
    pr = ctx.forge.get_pull(ctx.run.repo, ctx.run.params["pull"])
    cands = ctx.artifact("candidates", [])
    if cands:
        _check_runs(ctx, cands[0]["sha"], decision, cands[0]["name"], cands)
    ctx.put("publication", {"kind": "rebench", "pr_number": pr.number, "base_sha": baseline_sha(ctx),
                            "head_sha": cands[0]["sha"] if cands else pr.head_sha})


# --------------------------------------------------------------------------------------------------------------
# status comment


def _report_run(inputs: dict[str, Any]) -> dict[str, Any]:
    run = inputs["run"]
    return {**run, "issue_number": run["issue"]}


def report_links(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"repo": inputs["links"]["repo_web"], "run": inputs["links"]["status_page"]}


def report_costs(inputs: dict[str, Any]) -> dict[str, Any]:
    archs = dict(inputs.get("costs") or {})
    return {"archs": archs, "llm_usd": inputs["budget"]["llm_usd"], "total_usd": inputs["budget"]["spent_usd"]}


def render_status(pipeline: Pipeline, run: Run) -> str:
    from . import report

    i = pipeline.report_inputs(run)
    failures = report.failures_from_results(i["results"]) if i["results"] else []
    if i["failure"]:
        failures = [{"title": f"Run stopped during {i['failure']['stage']}", "message": i["failure"]["message"],
                     "log": i["failure"]["log_tail"]}] + failures
    decision = i["decision"]
    dossier_md = (i["dossier"] or {}).get("markdown")
    extra = []
    if i["skipped"]:
        extra.append("**Hypotheses not turned into candidates:**")
        extra += [f"- {report.cell(s.get('title') or s.get('hypothesis'), 100)}: {report.cell(s['reason'], 200)}"
                  for s in i["skipped"]]
    pub = i["publication"] or {}
    if pub.get("pr_url"):
        extra.append(f"**Draft pull request:** #{pub['pr_number']} ({report.cell(pub.get('reason', ''), 300)})")
    elif pub.get("kind") == "none":
        extra.append(f"**No pull request:** {report.cell(pub.get('reason', ''), 300)}")
    body = report.status_comment(_report_run(i), i["run"]["state"], i["progress"][-1] if i["progress"] else None,
                                 budget_spent=i["budget"]["spent_usd"], budget_limit=i["budget"]["limit_usd"],
                                 dossier_md=dossier_md, decision=decision, candidates=i["candidates"],
                                 costs=report_costs(i) if i["results"] else None, links=report_links(i),
                                 failures=failures)
    if extra:
        marker_end = body.index("\n") + 1
        body = body[:marker_end] + body[marker_end:].replace("\n<sub>Commands", "\n" + "\n".join(extra) +
                                                             "\n\n<sub>Commands", 1)
    return body


DEFAULT_STAGES = {
    "researching": research,
    "implementing": implement,
    "benchmarking": benchmark,
    "deciding": decide,
    "publishing": publish,
}

__all__ = ["DEFAULT_STAGES", "render_status", "run_experiment"]
