"""The pipeline's stages: research -> candidates -> benchmarks -> decision -> verification + publishing.

Each stage reads its inputs from the run's artifacts and writes its outputs there; each can run again after a
crash without repeating what is recorded (see bot/pipeline.py).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from typing import Any

from . import checkruns, waves
from .artifacts import (
    ARCH_COVERAGE,
    BASELINE,
    CANDIDATES,
    CANDIDATES_DONE,
    CHOICE,
    COSTS,
    DECISION,
    DOSSIER,
    FINAL,
    LOOP,
    PROFILE,
    PUBLICATION,
    RESULTS_MAIN,
    SKIPPED,
    STACK,
    VERIFICATION,
    RunArtifacts,
    deadline_key,
    plan_key,
)
from .experiments import shards
from .forge import ForgeError, RateLimited
from .gitutil import GitError, Mirror
from .model import PHASES, Baseline, Cancelled, Candidate, Phase, Publication, StageFailed
from .pipeline import Pipeline, StageContext
from .store import Run, iso_utc

log = logging.getLogger("autoresearch.stages")


# ------------------------------------------------------------------------------------------------------------
# shared helpers


def mirror(ctx: StageContext) -> Mirror:
    _use_forge_identity(ctx)
    m = Mirror(ctx.settings.data_path / "git", ctx.run.repo, redact=ctx.forge.redact)
    try:
        return m.ensure(ctx.forge.clone_url(ctx.run.repo, write=True))
    except GitError as exc:
        raise StageFailed("Could not fetch the repository.", str(exc)) from None


def _use_forge_identity(ctx: StageContext) -> None:
    """The bot's commits carry the forge account's identity (an App's `<slug>[bot]` and its noreply
    address; the forge asks GitHub once and caches it); a forge that cannot say keeps the default."""
    from . import gitutil

    lookup = getattr(ctx.forge, "commit_identity", None)
    if lookup is None:
        return
    try:
        gitutil.set_identity(*lookup(ctx.run.repo))
    except RateLimited:
        raise
    except ForgeError as exc:
        log.warning("commit identity unknown (%s); commits keep %s", exc, gitutil.BOT_IDENTITY[1])


def push_target(ctx: StageContext) -> str:
    """The repository that candidate and stack branches are pushed to: the run's repository, or with
    `publish.push_to: fork` the bot's fork of it (found, else created: again when someone deleted it), so
    nothing the bot pushes lands where the base repository's CI runs with its secrets."""
    if ctx.project.push_to != "fork":
        return ctx.run.repo
    try:
        return ctx.forge.ensure_fork(ctx.run.repo, ctx.project.fork_owner)
    except RateLimited:  # not a failure: the run is deferred until the reset (Pipeline.defer)
        raise
    except ForgeError as exc:
        where = f"`{ctx.project.fork_owner}`" if ctx.project.fork_owner else "the bot's account"
        raise StageFailed(
            f"Could not find or create the bot's fork of `{ctx.run.repo}` in {where} "
            f"(`publish.push_to: fork`): {ctx.forge.redact(exc.message)}"
        ) from None


def push_branch(ctx: StageContext, m: Mirror, target: str, sha: str, branch: str, what: str) -> None:
    """Force-push `sha` from the mirror to `branch` of `target` (push_target's answer). A fork GitHub has
    just created may refuse pushes for a few seconds: a push to a fork is tried three times."""
    attempts = 3 if target != ctx.run.repo else 1
    for attempt in range(attempts):
        try:
            m.push(ctx.forge.clone_url(target, write=True), sha, branch, force=True)
            return
        except RateLimited:
            raise
        except (GitError, ForgeError) as exc:
            if attempt + 1 < attempts:
                time.sleep(2.0 * (attempt + 1))
                continue
            detail = str(exc) if isinstance(exc, GitError) else ctx.forge.redact(exc.message)
            raise StageFailed(f"Could not push {what} `{branch}` to `{target}`.", detail) from None


def baseline_sha(ctx: StageContext) -> str:
    return Baseline.from_dict(ctx.artifacts.get(BASELINE)).sha


def llm_for(ctx: StageContext) -> Any | None:
    factory = ctx.pipeline.services.get("llm_factory")
    return factory(ctx) if factory else None


def branch_for(run: Run, slug: str) -> str:
    from .publish import pr_branch_name

    return pr_branch_name(run.issue_number, slug, run.attempt)


def local_arch() -> str:
    machine = platform.machine().lower()
    return "arm" if machine in ("aarch64", "arm64") else "x86"


def executor_capabilities(ctx: StageContext) -> Any:
    """What the run's executor declares (`executors.Capabilities`): the service's own, else (a pipeline built
    without an executor) the registered one's that the settings name."""
    executor = ctx.pipeline.services.get("executor")
    if executor is not None:
        return executor.capabilities
    from .experiments import registry

    return registry.get(ctx.settings.executor).capabilities


def measured_archs(ctx: StageContext) -> list[str]:
    """Architectures this run measures: the project's, or with an executor that measures on this host (local)
    only this machine's."""
    archs = ctx.project.architectures
    if executor_capabilities(ctx).archs == "host":
        return [local_arch()]
    return archs


def arch_coverage(ctx: StageContext) -> dict[str, dict[str, str]]:
    """What each architecture the project asks for gets in this run, never silently dropped: `measured`
    (timed and simulated), `emulated` (built for it and its correctness checks run under emulation, not
    timed) or `not_run`, each with the reason in words."""
    caps = executor_capabilities(ctx)
    measured = measured_archs(ctx)
    emulated = emulated_archs(ctx)
    out: dict[str, dict[str, str]] = {}
    for a in dict.fromkeys([*ctx.project.architectures, *measured]):
        if a in measured:
            where = "on this machine" if caps.archs == "host" else "on its own VM(s)"
            out[a] = {"kind": "measured", "reason": f"measured {where}: wall time and simulated cost"}
        elif a in emulated:
            out[a] = {
                "kind": "emulated",
                "reason": f"correctness only: built for {a} with a cross compiler, the baseline's checks run "
                f"under emulation ({emulated[a]}); not timed: no {a.upper()} machine",
            }
        else:
            why = (
                f"the {ctx.settings.executor} executor measures this machine ({local_arch()}) only"
                if caps.archs == "host"
                else "no machine configured for it"
            )
            out[a] = {"kind": "not_run", "reason": f"not run: {why}; {_emulation_missing(ctx, a)}"}
    return out


def emulated_archs(ctx: StageContext) -> dict[str, str]:
    """{arch: emulator} the executor can check under emulation here (local executor, another arch, the cross
    toolchain and qemu-user installed); empty elsewhere."""
    return {a: e["emulator"] for a, e in emulation_specs(ctx).items()}


def emulation_specs(ctx: StageContext) -> dict[str, dict[str, str]]:
    """{arch: spec.emulate} for the project's archs this host checks under emulation (an executor that
    measures this host, in its jail: the local one)."""
    from .experiments import emulation

    caps = executor_capabilities(ctx)
    if caps.archs != "host" or not caps.jail or not ctx.settings.local_emulate:
        return {}
    out = {}
    for a in ctx.project.architectures:
        got = emulation.probe(a) if a != local_arch() else None
        if got:
            out[a] = got
    return out


def _emulation_missing(ctx: StageContext, arch: str) -> str:
    from .experiments import emulation

    if executor_capabilities(ctx).archs != "host":
        return "no emulated check either"
    if emulation.probe(arch) and not ctx.settings.local_emulate:
        return (
            "its correctness is not checked under emulation either (the cross toolchain and qemu-user are "
            "installed: set `local_emulate: true`)"
        )
    return emulation.missing(arch)


def arch_lines(coverage: dict[str, dict[str, str]] | None) -> list[str]:
    """The status comment's line on what each arch row is."""
    if not coverage:
        return []
    parts = [f"{a} — {c['reason']}" for a, c in coverage.items()]
    return ["**Architectures:** " + "; ".join(parts)]


# ------------------------------------------------------------------------------------------------------------
# research


def current_wave(ctx: StageContext) -> int:
    return waves.current(ctx.artifact) if ctx.run.kind == "issue" else 1


def wave_base(ctx: StageContext, n: int) -> tuple[str, str]:
    """(sha, label) of what wave n builds on and is measured against: the running best after wave n-1."""
    best = waves.best_after(waves.records(ctx.artifact)[: n - 1]) if n > 1 else None
    if best:
        return best["sha"], best["label"]
    return baseline_sha(ctx), "the baseline"


def research(ctx: StageContext) -> None:
    n = current_wave(ctx)
    if ctx.artifacts.get(DOSSIER, n) is not None:
        return
    if n > 1:
        _next_wave_research(ctx, n)
        return
    from .research.arxiv import ArxivOptions
    from .research.dossier import ResearchOptions, build_dossier

    m = mirror(ctx)
    issue = ctx.forge.get_issue(ctx.run.repo, ctx.run.issue_number)
    project = ctx.project.to_dict()
    options = ctx.pipeline.services.get("research_options") or ResearchOptions(
        arxiv=ArxivOptions(base_url=ctx.settings.arxiv_base_url)
    )
    unreachable = False
    if not ctx.settings.arxiv_enabled:
        project["research"]["arxiv"] = False
    elif project["research"]["arxiv"] and not _reachable(
        options.arxiv.base_url or "https://export.arxiv.org"
    ):
        project["research"]["arxiv"] = False
        unreachable = True
        ctx.event("research", "arXiv is not reachable from this machine: paper search skipped")
    profile = baseline_profile(ctx)
    ctx.progress("reading papers, forks and other backends")
    with m.worktree(baseline_sha(ctx), prefix="research-") as tree:
        dossier = build_dossier(
            issue=issue,
            project=project,
            clone_dir=tree,
            forge=ctx.forge,
            llm=llm_for(ctx),
            cache_dir=ctx.settings.data_path / "cache" / "research",
            repo=ctx.run.repo,
            options=options,
            profile=profile,
        )
    data = dossier.to_dict()
    data["markdown"] = dossier.markdown()
    if unreachable:
        why = "arXiv is not reachable from this machine: paper search skipped"
        data["markdown"] = data["markdown"].replace("research.arxiv is false", why)
        for note in data.get("notes", []):
            if note.get("source") == "arxiv":
                note["detail"] = why
    ctx.artifacts.put(DOSSIER, data)
    ctx.progress(f"dossier ready: {len(data.get('hypotheses', []))} hypotheses")


PROFILE_BENCH = {"min_pairs": 2, "max_pairs": 2, "warmup": 0}  # the profiling batch: the baseline, briefly


def baseline_profile(ctx: StageContext) -> dict[str, Any]:
    """The `profile` artifact: one batch of the baseline alone (first measured arch) through the same
    executor; its simulated record gives the self cost per function. Never fatal: without valgrind, with the
    simulated tier off, or when the batch fails, the profile says why and research continues without it."""
    from .research import profile as prof

    stored = ctx.artifacts.get(PROFILE)
    if stored is not None:
        return stored
    if not ctx.project.profile_enabled:
        data = prof.unavailable("research.profile is false")
    elif ctx.project.primary == "wall" or not ctx.project.simulate_enabled:
        data = prof.unavailable(
            "the simulated tier is off (decision.primary: wall or simulate.enabled: false)"
        )
    else:
        arch = measured_archs(ctx)[0]
        ctx.progress(f"profiling the baseline on {arch} (simulated cost per function)")
        try:
            results = run_experiment(
                ctx, "profile", baseline_sha(ctx), [], archs=[arch], overrides={"benchmark": PROFILE_BENCH}
            )
        except StageFailed as exc:
            data = prof.unavailable(f"the profiling batch failed: {exc.message}")
        else:
            data = prof.from_results(results, arch)
    ctx.artifacts.put(PROFILE, data)
    ctx.event(
        "research",
        "profile: "
        + (f"{len(data['functions'])} functions" if data["available"] else f"unavailable ({data['reason']})"),
    )
    return data


def _next_wave_research(ctx: StageContext, n: int) -> None:
    """Wave n's plan: the LLM reads what wave n-1 measured (table, per-function diffs, failures with logs, the
    running best) and proposes hypotheses on top of the running best; validated and ranked like wave 1's."""
    from .report import failures_from_results
    from .research import profile as prof
    from .research.dossier import (
        SYNTHESIS_SCHEMA,
        Dossier,
        Source,
        SourceNote,
        annotate_hypotheses,
        code_map_for,
        profile_sources,
        rank,
        validate_llm_hypotheses,
    )
    from .text import clean, quote

    prev = n - 1
    base, label = wave_base(ctx, n)
    first = ctx.artifacts.get(DOSSIER) or {}
    recs = waves.records(ctx.artifact)
    decision = ctx.artifacts.get(DECISION, prev) or {}
    cands = ctx.artifacts.get(CANDIDATES, prev)
    profile = _best_profile(ctx, recs[-1]) or ctx.artifacts.get(PROFILE) or prof.unavailable("no profile")
    project = ctx.project.to_dict()
    issue = ctx.forge.get_issue(ctx.run.repo, ctx.run.issue_number)
    sources = [Source(**s) for s in first.get("sources", []) if s.get("kind") != "profile"]
    sources = profile_sources(profile) + sources + _measurement_sources(ctx, recs)
    tried = []
    for k in range(1, n):
        for h in (ctx.artifacts.get(DOSSIER, k) or {}).get("hypotheses", []):
            outcome = next(
                (
                    f"measured as {c['name']}"
                    for c in ctx.artifacts.get(CANDIDATES, k)
                    if c.get("hypothesis") == h.get("id")
                ),
                "not measured",
            )
            tried.append(f"- wave {k}: {h.get('title')} ({outcome})")
    results = ctx.artifacts.get(RESULTS_MAIN, prev) or {}
    variables = {
        "repo": ctx.run.repo,
        "wave": str(n),
        "prev_wave": str(prev),
        "issue": quote(f"{issue.title}\n\n{issue.body or ''}", "issue text", 6000),
        "best": quote(
            f"{waves.path_text(recs)}\nWave {n} builds on {label} (commit {base[:12]}).", "running best", 3000
        ),
        "measured": quote(waves.measured_table(decision, cands), f"wave {prev} measurements", 12000),
        "function_diff": quote(waves.function_diffs(decision), f"wave {prev} per-function diff", 12000),
        "failures": quote(waves.failures_text(failures_from_results(results)), "build and check logs", 8000),
        "tried": quote("\n".join(tried) or "(none)", "hypotheses already tried", 6000),
        "profile": quote(prof.material(profile), "profile of the running best", 4000),
        "source_ids": ", ".join(s.id for s in sources) or "(none)",
        "architectures": ", ".join(project.get("architectures", ["x86"])),
        "allowed_paths": ", ".join(project.get("paths", {}).get("allowed", ["**"])),
        "max_hypotheses": str(ctx.project.max_candidates),
    }
    dossier = Dossier(
        goal=clean(issue.title, 200),
        repo=ctx.run.repo,
        baseline=base,
        sources=sources,
        wave=n,
        heading=f"Wave {n} plan",
        profile=profile,
    )
    llm = llm_for(ctx)
    ctx.progress(f"wave {n}: planning from wave {prev}'s measurements")
    hyps = []
    if llm is None:
        dossier.notes.append(SourceNote("llm", "skipped", "no LLM configured"))
    else:
        try:
            out = llm.structured("next_wave", variables, SYNTHESIS_SCHEMA, purpose=f"wave {n} plan")
        except Exception as exc:  # budget, API errors: the wave has no hypotheses and the loop stops after it
            dossier.notes.append(
                SourceNote(
                    "llm", "failed", f"wave {n} plan failed: {type(exc).__name__}: {clean(str(exc), 300)}"
                )
            )
        else:
            hyps, problems = validate_llm_hypotheses(
                (out or {}).get("hypotheses", []), {s.id for s in sources}, project
            )
            dossier.summary = clean(
                (out or {}).get("summary") if isinstance((out or {}).get("summary"), str) else "", 3000
            )
            dossier.notes.append(
                SourceNote(
                    "llm",
                    "ok",
                    f"{len(hyps)} hypotheses accepted"
                    + (("; " + "; ".join(problems[:10])) if problems else ""),
                )
            )
    for h in hyps:
        h.id, h.wave = f"w{n}-{h.id}", n
    m = mirror(ctx)
    min_effect = float(project["decision"]["min_effect"])
    with m.worktree(base, prefix="research-") as tree:
        cmap = code_map_for(str(tree), project)
        dossier.profile_md = prof.markdown(profile, cmap).replace(
            "Simulated cost of the baseline", f"Simulated cost of the running best ({label})", 1
        )
        annotate_hypotheses(hyps, profile, cmap, str(tree), base, min_effect)
    dossier.hypotheses = rank(hyps, set(), min_effect)[: ctx.project.max_candidates or 1]
    data = dossier.to_dict()
    data["markdown"] = dossier.markdown()
    ctx.artifacts.put(DOSSIER, data, n)
    ctx.progress(f"wave {n} plan ready: {len(data['hypotheses'])} hypotheses")


def _best_profile(ctx: StageContext, rec: dict[str, Any]) -> dict[str, Any] | None:
    """The simulated profile of what a wave kept (the stack from its verification, or the single winner)."""
    from .research import profile as prof

    best = rec.get("best") or {}
    kept = rec.get("kept") or {}
    if not best.get("wave") or not kept:
        return None
    n = best["wave"]
    name = "stack" if kept.get("kind") == "stack" else kept["names"][0]
    for experiment in (waves.key("verify", n), waves.key("main", n)):
        for arch, result in sorted((ctx.artifacts.results(experiment) or {}).items()):
            rec_ = ((result.get("variants") or {}).get(name) or {}).get("simulated") or {}
            if rec_.get("ok") and rec_.get("estimated_cycles"):
                return prof.profile_of(rec_, arch=arch, source=f"wave {n}: {name}")
    return None


def _measurement_sources(ctx: StageContext, recs: list[dict[str, Any]]) -> list[Any]:
    """Each measured candidate of the earlier waves as a citable source (`measured:w<k>:<name>`)."""
    from .research.dossier import Source

    out = []
    for rec in recs:
        k = rec["wave"]
        decision = ctx.artifacts.get(DECISION, k) or {}
        by_name = {c["name"]: c for c in ctx.artifacts.get(CANDIDATES, k)}
        for r in decision.get("rows") or []:
            if r.get("metric") != decision.get("target") or r["candidate"] not in by_name:
                continue
            sim = r.get("simulated") or {}
            fig = f"{sim['speedup']:.3f}x estimated cycles" if "speedup" in sim else "no simulated figure"
            out.append(
                Source(
                    id=f"measured:w{k}:{r['candidate']}",
                    kind="measurement",
                    title=f"wave {k}: {by_name[r['candidate']].get('title')} ({r['arch']})",
                    url=None,
                    summary=f"{r.get('verdict')}: {fig}",
                    suggests="",
                )
            )
    return list({s.id: s for s in out}.values())


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


# ------------------------------------------------------------------------------------------------------------
# candidates


def implement(ctx: StageContext) -> None:
    n = current_wave(ctx)
    if ctx.artifacts.get(CANDIDATES_DONE, n):
        return
    if ctx.run.kind == "issue":
        _candidates_from_dossier(ctx, n)
    elif ctx.run.kind == "bench":
        _candidate_from_branch(ctx, ctx.run.params["branch"])
    elif ctx.run.kind == "rebench":
        pr = ctx.forge.get_pull(ctx.run.repo, ctx.run.params["pull"])
        head_repo = pr.head_repo if pr.head_repo and pr.head_repo.lower() != ctx.run.repo.lower() else None
        _candidate_from_branch(ctx, pr.head_ref, sha=pr.head_sha, name="pr-head", repo=head_repo)
    ctx.artifacts.put(CANDIDATES_DONE, True, n)


def _add_candidate(ctx: StageContext, cand: Candidate, n: int = 1) -> None:
    cands = ctx.artifacts.get(CANDIDATES, n)
    cands = [c for c in cands if c["name"] != cand.name] + [cand.to_dict()]
    ctx.artifacts.put(CANDIDATES, cands, n)
    ctx.progress(f"candidate {cand.name} ready ({cand.source})")


def _skip(ctx: StageContext, hypothesis: dict[str, Any], reason: str, n: int = 1) -> None:
    skipped = ctx.artifacts.get(SKIPPED, n)
    skipped.append({"hypothesis": hypothesis.get("id"), "title": hypothesis.get("title"), "reason": reason})
    ctx.artifacts.put(SKIPPED, skipped, n)
    ctx.event("candidate", f"skipped {hypothesis.get('id')}: {reason}")


def _candidates_from_dossier(ctx: StageContext, n: int = 1) -> None:
    """The wave's hypotheses as branches built on the wave's base (the running best; in wave 1 the
    baseline)."""
    from .publish import candidate_from_commit, push_blockers

    dossier = ctx.artifacts.get(DOSSIER, n) or {}
    m = mirror(ctx)
    base, _ = wave_base(ctx, n)
    wave_cands = [Candidate.from_dict(c) for c in ctx.artifacts.get(CANDIDATES, n)]
    done = {c.hypothesis for c in wave_cands}
    done |= {s.get("hypothesis") for s in ctx.artifacts.get(SKIPPED, n)}
    target: str | None = None  # push_target, asked at the first push (no fork made for nothing)
    agent_budget = ctx.project.max_candidates
    agent_used = sum(1 for c in wave_cands if c.source == "agent")
    llm = None

    for h in dossier.get("hypotheses", []):
        if h.get("id") in done:
            continue
        ctx.heartbeat()
        slug = candidate_slug(h) if n == 1 else f"w{n}-{candidate_slug(h)}"[:40].rstrip("-")
        branch = branch_for(ctx.run, slug)
        if h.get("kind") == "fork_commit" and h.get("fork"):
            fork = h["fork"]
            try:
                if not m.has(fork["sha"]):
                    m.fetch(ctx.forge.clone_url(fork["repo"], write=False), fork["sha"])
                result = candidate_from_commit(m.path, base, fork["sha"], branch)
            except RateLimited:
                raise
            except Exception as exc:
                _skip(ctx, h, f"fork commit could not be ported: {exc}", n)
                continue
            if not result.sha:
                _skip(ctx, h, "; ".join(d["reason"] for d in result.dropped) or "did not apply", n)
                continue
            sha, source = result.sha, "fork"
        else:
            if agent_used >= agent_budget:
                _skip(ctx, h, f"agent limit of {agent_budget} candidates reached", n)
                continue
            llm = llm or llm_for(ctx)
            if llm is None:
                _skip(
                    ctx,
                    h,
                    "no LLM configured (set ANTHROPIC_API_KEY); only fork commits become candidates",
                    n,
                )
                continue
            sha = _agent_candidate(ctx, m, base, h, llm, branch, n)
            agent_used += 1
            if sha is None:
                continue
            source = "agent"
        blocked = push_blockers(m.path, base, sha, ctx.project.protected_paths)
        if blocked:
            shown = ", ".join(f"`{p}`" for p in blocked[:5]) + (" ..." if len(blocked) > 5 else "")
            _skip(
                ctx,
                h,
                f"not pushed or measured: it changes {shown} (CI, the config file or protected "
                f"paths), which the repository's own CI could run with its secrets",
                n,
            )
            continue
        target = target or push_target(ctx)
        push_branch(ctx, m, target, sha, branch, "candidate branch")
        _add_candidate(
            ctx,
            Candidate(
                name=slug,
                branch=branch,
                sha=sha,
                source=source,
                title=h.get("title", slug),
                hypothesis=h.get("id"),
                citations=h.get("citations", []),
                fork=h.get("fork"),
                wave=n,
                base=base,
                hot_function=h.get("hot_function"),
                hot_share=h.get("hot_share"),
                amdahl_max=h.get("amdahl_max"),
            ),
            n,
        )


def candidate_slug(h: dict[str, Any]) -> str:
    """Short, stable names: `<fork owner>-<sha7>` for fork commits, the title's words otherwise."""
    from .publish import slugify

    fork = h.get("fork") or {}
    if h.get("kind") == "fork_commit" and fork.get("repo") and fork.get("sha"):
        return slugify(f"{fork['repo'].split('/')[0]}-{fork['sha'][:7]}")
    return slugify(h.get("title") or h.get("id") or "candidate", limit=32)


def _agent_candidate(
    ctx: StageContext, m: Mirror, base: str, h: dict[str, Any], llm: Any, branch: str, n: int = 1
) -> str | None:
    from .agent.coder import Limits
    from .agent.coder import implement as agent_implement
    from .agent.tools import Workspace

    issue = ctx.forge.get_issue(ctx.run.repo, ctx.run.issue_number)
    with m.worktree(base, prefix="agent-") as tree:
        m.git("-C", str(tree), "checkout", "-q", "-B", branch)
        ws = Workspace(
            tree,
            allowed=ctx.project.allowed_paths,
            protected=ctx.project.protected_paths,
            build_commands=ctx.project.build_commands,
            isolate=ctx.settings.local_trust != "all",
        )
        limits = Limits(max_turns=ctx.project.agent_max_turns, max_seconds=ctx.project.agent_max_minutes * 60)
        result = agent_implement(h, f"{issue.title}\n\n{issue.body or ''}", ws, llm, limits)
        ctx.event("agent", f"{h.get('id')}: {result.status}", result.to_dict())
        if ws.refusals:
            ctx.artifacts.put_refusals(
                h.get("id"), [dict(r) if isinstance(r, dict) else vars(r) for r in ws.refusals]
            )
        if result.status != "committed" or not result.commit_sha:
            _skip(ctx, h, f"agent: {result.status} {result.message}", n)
            return None
        return result.commit_sha


def _candidate_from_branch(
    ctx: StageContext, branch: str, sha: str | None = None, name: str | None = None, repo: str | None = None
) -> None:
    """`branch` of the run's repository, of `repo` (a pull request's head repository), or `owner:branch` of
    the owner's fork."""
    m = mirror(ctx)
    owner_repo = repo or ctx.run.repo
    if ":" in branch and repo is None:  # owner:branch of a fork
        owner, branch = branch.split(":", 1)
        owner_repo = f"{owner}/{ctx.run.repo.split('/')[1]}"
    try:
        m.fetch(
            ctx.forge.clone_url(owner_repo, write=False), f"+refs/heads/{branch}:refs/remotes/cand/{branch}"
        )
        resolved = m.rev(f"refs/remotes/cand/{branch}")
    except GitError as exc:
        raise StageFailed(f"Branch `{branch}` could not be fetched from `{owner_repo}`.", str(exc)) from None
    if sha and resolved != sha:
        ctx.event("candidate", f"branch moved: measuring {resolved[:10]} (PR said {sha[:10]})")
    from .publish import slugify

    _add_candidate(
        ctx,
        Candidate(
            name=name or slugify(branch),
            branch=branch,
            sha=resolved,
            source="user",
            title=f"branch {owner_repo}:{branch}",
            hypothesis=None,
            citations=[],
        ),
    )


# ------------------------------------------------------------------------------------------------------------
# benchmarks


def benchmark(ctx: StageContext) -> None:
    n = current_wave(ctx)
    coverage = arch_coverage(ctx)
    if ctx.artifact(ARCH_COVERAGE) != coverage:
        ctx.put(ARCH_COVERAGE, coverage)
        for a, c in coverage.items():
            if c["kind"] != "measured":
                ctx.event("arch", f"{a}: {c['reason']}")
    cands = ctx.artifacts.get(CANDIDATES, n)
    if not cands:
        ctx.artifacts.put(RESULTS_MAIN, {}, n)
        ctx.progress("no candidates to measure")
        return
    base, _ = wave_base(ctx, n)
    name = waves.key("main", n)
    # check runs on every candidate's head: queued now, in_progress once the batch is out (bot/checkruns.py)
    targets = [{"sha": c["sha"], "candidate": c["name"], "wave": n, "experiment": name} for c in cands]
    ctx.pipeline._checks(lambda: checkruns.open_checks(ctx.pipeline, ctx.run, targets))
    emulated = [a for a, c in coverage.items() if c["kind"] == "emulated"]
    run_experiment(
        ctx,
        name,
        base,
        cands,
        archs=[*measured_archs(ctx), *emulated],
        started=lambda: ctx.pipeline._checks(lambda: checkruns.on_phase(ctx.pipeline, ctx.run)),
    )


def run_experiment(
    ctx: StageContext,
    name: str,
    base: str,
    cands: list[dict[str, Any]],
    *,
    archs: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    started: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Submit (once) baseline + candidates to the executor, wait, collect; record results and cost.

    `archs`: a subset of the measured architectures; `overrides`: project settings merged into the spec for
    this batch only (the profiling batch measures the baseline briefly)."""
    stored = ctx.artifacts.results(name)
    if stored is not None:
        return stored
    from .experiments import executors as ex
    from .experiments.tasks import make_bundle

    executor = ctx.pipeline.services["executor"]
    exp = ctx.store.experiment(ctx.run.id, name)
    handle = exp["handle"] if exp else None
    archs = archs or measured_archs(ctx)
    # a batch submitted without a plan (before this bot had fan-out) goes on as it was sent
    the_plan = _fanout_plan(ctx, name, cands, archs) if not handle or ctx.artifact(plan_key(name)) else None
    if not handle:
        _check_budget(ctx, len(cands), archs, the_plan)
        m = mirror(ctx)
        files = ctx.workdir / f"exp-{name}"
        files.mkdir(parents=True, exist_ok=True)
        bundle = make_bundle(m.path, [base] + [c["sha"] for c in cands], files / "repo.bundle")
        emulate = emulation_specs(ctx) if set(archs) - set(measured_archs(ctx)) else {}
        specs = {
            arch: {
                "schema": 1,
                "run_id": ctx.run.id,
                "arch": arch,
                "seed": ctx.run.id,
                "source": {"bundle": "repo.bundle"},
                "baseline": {"name": "baseline", "sha": base},
                "candidates": [{"name": c["name"], "sha": c["sha"]} for c in cands],
                "project": _merge(ctx.project.to_dict(), overrides or {}),
                **({"emulate": emulate[arch]} if arch in emulate else {}),
            }
            for arch in archs
        }
        if the_plan is not None and len(the_plan.shards) > len(archs):
            specs = shards.shard_specs(specs, the_plan)  # one entry (one VM) per shard
        batch = ex.Batch(
            run_id=ctx.run.id,
            specs=specs,
            bundle=bundle,
            arch_configs={k: ctx.settings.architectures.get(shards.arch_of(k), {}) for k in specs},
            repo=ctx.run.repo,
        )
        try:
            handle = executor.submit(batch)
        except ex.UntrustedRefused as exc:
            raise StageFailed(
                "The benchmark was not started: this host cannot isolate untrusted candidate "
                "code, and the bot never runs it unisolated unless told to.",
                str(exc),
            ) from None
        ctx.store.upsert_experiment(ctx.run.id, name, ctx.settings.executor, handle=handle, state="running")
        ctx.progress(f"experiment {name} submitted: {len(cands)} candidates on {', '.join(archs)}")
    if started is not None:  # the batch is out (or was, before a restart): e.g. check runs go in_progress
        started()
    deadline = _deadline(ctx, name, the_plan.keys() if the_plan else archs)
    started_at = last_note = time.monotonic()
    expired: str | None = None
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
        if time.time() >= deadline["at"]:
            expired = (
                f"deadline of {_minutes(deadline['seconds'])} min passed in {ctx.run.state} "
                f"(experiment {name}; {deadline['source']})"
            )
            ctx.event("deadline", expired, {"experiment": name, **deadline})
            executor.cancel(handle)  # SkyPilot: cancels launch requests in flight, downs the clusters
            state = "deadline"
            break
        if time.monotonic() - last_note > 30:
            last_note = time.monotonic()
            ctx.progress(f"experiment {name} running ({int(time.monotonic() - started_at)} s)")
        # a local batch measures on this very machine: wake rarely (no busy polling beside the benchmark)
        time.sleep(max(0.0, min(float(executor.poll_interval), deadline["at"] - time.time())))
    results = executor.collect(handle)
    vm_seconds, cost = _record_cost(ctx, name, results, executor, handle)
    if the_plan is not None:
        merged = shards.merge(results, the_plan) if len(the_plan.shards) > len(archs) else results
        _plan_actuals(ctx, name, results, merged, executor, handle)
        results = merged
    ctx.store.finish_experiment(ctx.run.id, name, state, vm_seconds=vm_seconds, cost_usd=cost)
    if not results:
        tail = executor.logs(handle)[-3000:] if executor.capabilities.logs else ""
        if expired:
            raise StageFailed(f"The benchmark of experiment `{name}` was stopped: {expired}.", tail)
        raise StageFailed(f"The benchmark machine produced no result for experiment `{name}`.", tail)
    if expired:  # what finished before the deadline is kept, as partial (`complete` false) results
        for res in results.values():
            res["complete"] = False
            res["errors"] = [*(res.get("errors") or []), expired]
    ctx.artifacts.put_results(name, results)
    return results


def batch_deadline(cap_minutes: float, remaining_usd: float, usd_per_hour: float) -> tuple[float, str]:
    """(seconds, what set them) a batch may run: the configured cap, or less when the run's remaining budget
    buys less VM time at the batch's price per hour (all its archs together); free machines: the cap."""
    cap = float(cap_minutes) * 60.0
    if usd_per_hour > 0:
        affordable = max(0.0, float(remaining_usd)) / float(usd_per_hour) * 3600.0
        if affordable < cap:
            return (
                affordable,
                f"what the remaining ${max(0.0, remaining_usd):.2f} buys at ${usd_per_hour:g}/h",
            )
    return cap, "experiment_deadline_minutes"


def _deadline(ctx: StageContext, name: str, archs: list[str]) -> dict[str, Any]:
    """The batch's deadline, fixed once (wall clock, stored: a restarted bot keeps it)."""
    key = deadline_key(name)
    stored = ctx.artifact(key)
    if stored:
        return stored
    spent = ctx.store.usage_totals(ctx.run.id)["usd"]
    limit = min(ctx.project.budget_usd, ctx.settings.budget_usd)
    seconds, source = batch_deadline(
        ctx.settings.experiment_deadline_minutes, limit - spent, sum(_price(ctx, a) for a in archs)
    )
    deadline = {"at": time.time() + seconds, "seconds": seconds, "source": source}
    ctx.put(key, deadline)
    return deadline


def _minutes(seconds: float) -> str:
    return f"{seconds / 60.0:.3g}"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    from .configmodel import merge

    return merge(base, over)


def _price(ctx: StageContext, arch: str) -> float:
    """$/h of the arch's VM, the same figure the executor quotes at submit (`cost.arch_quote`: SkyPilot's
    catalog for `infra:`, `cloud`/`region` and `any_of`/`ordered` resources, else the configured
    `price_per_hour`); 0 for an executor whose machines are free (local). An unknown price on a priced
    executor refuses the batch: it is never counted as $0."""
    if not executor_capabilities(ctx).priced:
        return 0.0
    from .experiments.cost import arch_quote

    executor = ctx.pipeline.services.get("executor")
    base = shards.arch_of(arch)  # a shard (`x86~2`) is priced as its architecture
    quote = arch_quote(base, ctx.settings.architectures.get(base, {}), getattr(executor, "price", None))
    if quote.usd_per_hour is None:
        raise StageFailed(
            f"No VM was launched: the price of `{base}` is unknown ({quote.note}). Set `price_per_hour` for "
            "the architecture in the bot's settings, or put SkyPilot's catalog in place."
        )
    return float(quote.usd_per_hour)


def _fanout_plan(
    ctx: StageContext, name: str, cands: list[dict[str, Any]], archs: list[str]
) -> shards.Plan | None:
    """The batch's plan (stored once, before the launch): shards x VMs x arch, minutes and dollars. Only on
    an executor of priced VMs; only a wave's main batch fans out (the profile, the stack and the final
    re-measurement run on one VM per arch); `parallel.max_vms_per_arch`, else chosen from the run's
    remaining budget and the candidate count."""
    stored = ctx.artifact(plan_key(name))
    if stored:
        return shards.Plan.from_dict(stored)
    if not executor_capabilities(ctx).priced or not cands:
        return None
    prices = {a: _price(ctx, a) for a in archs}
    times = _variant_times(ctx)
    spent = ctx.store.usage_totals(ctx.run.id)["usd"]
    limit = min(ctx.project.budget_usd, ctx.settings.budget_usd)
    fan_out = name.split("@")[0] == "main"
    configured = ctx.project.max_vms_per_arch
    if not fan_out:
        vms, why = 1, "one VM per arch (only a wave's candidates fan out)"
    elif configured is not None:
        vms, why = configured, "`parallel.max_vms_per_arch`"
    else:
        vms = shards.default_vms(len(cands), max(0.0, limit - spent), prices, times)
        why = (
            f"chosen: one VM per {shards.MIN_CANDIDATES_PER_SHARD} candidates, at most "
            f"{shards.MAX_VMS_PER_ARCH}, within the remaining ${max(0.0, limit - spent):.2f}"
        )
    warm = _earlier_plan_keys(ctx, name)
    the_plan = shards.plan([c["name"] for c in cands], archs, vms, prices, times, warm=warm)
    the_plan.notes.append(f"VMs per arch: {why}")
    ctx.put(plan_key(name), the_plan.to_dict())
    ctx.pipeline.refresh_status(ctx.run)  # the plan is on the issue before any VM is launched
    ctx.event(
        "plan",
        f"{name}: {len(the_plan.shards)} VMs ("
        + ", ".join(f"{a} x{n}" for a, n in the_plan.vms_per_arch.items())
        + f"), about {the_plan.minutes:.0f} min and ${the_plan.usd:.2f}",
    )
    return the_plan


def _earlier_plan_keys(ctx: StageContext, name: str) -> list[str]:
    """Batch entries whose VM an earlier batch of this run left up (the executor reuses them: warm)."""
    keys: list[str] = []
    for n in range(1, current_wave(ctx) + 1):
        for exp in (waves.key("main", n), waves.key("verify", n)):
            if exp == name:
                return keys
            got = ctx.artifact(plan_key(exp))
            keys += [s["key"] for s in (got or {}).get("shards") or [] if s["key"] not in keys]
    return keys


def _variant_times(ctx: StageContext) -> shards.VariantTimes:
    """Per-variant times for the plan: the README's measured llama.cpp figures, replaced by what this run's
    own batches measured (the profile batch's baseline build and simulation; an earlier wave's candidates)."""
    times = shards.VariantTimes()
    from dataclasses import replace

    profile = ctx.artifact("results:profile") or {}
    for res in profile.values():
        base = (res.get("variants") or {}).get("baseline") or {}
        build = float((base.get("build") or {}).get("seconds") or 0.0)
        sim = float((base.get("simulated") or {}).get("seconds") or 0.0)
        times = replace(
            times,
            cold_build_s=build or times.cold_build_s,
            simulate_s=sim or times.simulate_s,
        )
        break
    for n in range(current_wave(ctx) - 1, 0, -1):
        for res in (ctx.artifacts.results(waves.key("main", n)) or {}).values():
            return shards.VariantTimes.from_result(res, times)
    return times


def _plan_actuals(
    ctx: StageContext,
    name: str,
    results: dict[str, Any],
    merged: dict[str, Any],
    executor: Any,
    handle: str,
) -> None:
    """Beside the plan: each VM's actual seconds and dollars so far (the executor's count, the one price;
    the time a VM waits for the run's next batch or its teardown is charged later), and per arch the A/A
    check of the baseline's simulated cost across its shards."""
    stored = ctx.artifact(plan_key(name)) or {}
    known = executor.vm_seconds(handle) if executor.capabilities.vm_seconds else {}
    actual = {}
    for key in sorted({*known, *(results or {})}):
        secs = float(known.get(key) or ((results.get(key) or {}).get("timings") or {}).get("total_s") or 0.0)
        actual[key] = {"seconds": secs, "usd": secs / 3600.0 * _price(ctx, key)}
    aa = {a: r["shards"] for a, r in (merged or {}).items() if r.get("shards")}
    ctx.put(plan_key(name), {**stored, "actual": actual, "aa": aa})


def plan_lines(plan: dict[str, Any] | None, name: str) -> list[str]:
    """Status comment lines: the plan before the launch, the actuals beside it after the run."""
    if not plan or not plan.get("shards"):
        return []
    vms = ", ".join(f"{a}: {n} VM{'s' if n > 1 else ''}" for a, n in (plan.get("vms_per_arch") or {}).items())
    head = (
        f"**Plan for `{name}`:** {len(plan['shards'])} shards ({vms}), expected "
        f"{plan['minutes']:.0f} min and ${plan['usd']:.2f}"
    )
    actual = plan.get("actual") or {}
    if actual:
        longest = max((a["seconds"] for a in actual.values()), default=0.0) / 60.0
        head += f"; actual {longest:.0f} min (longest VM) and ${sum(a['usd'] for a in actual.values()):.2f}"
    lines = [head]
    for s in plan["shards"]:
        got = actual.get(s["key"])
        after = f" | actual {got['seconds'] / 60.0:.1f} min, ${got['usd']:.2f}" if got else ""
        lines.append(
            f"- `{s['key']}`: {len(s['candidates'])} candidates + baseline, expected "
            f"{s['seconds'] / 60.0:.1f} min, ${s['usd']:.2f}{after}"
        )
    lines += [f"- {n}" for n in plan.get("notes") or []]
    for arch, info in (plan.get("aa") or {}).items():
        aa = info.get("aa") or {}
        if info.get("simulated_across_shards"):
            lines.append(
                f"- {arch}: A/A across its shards: the baseline's simulated cost agrees within "
                f"{aa.get('spread', 0.0) * 100:.4f}% (at most {info.get('tolerance', 0) * 100:.2f}%), so "
                "candidates on different VMs are compared with one baseline figure"
            )
        else:
            lines.append(
                f"- {arch}: A/A across its shards FAILED (the baseline's simulated cost differs by "
                f"{aa.get('spread', 0.0) * 100:.4f}%): each candidate is compared within its own shard"
            )
        lost = [e for e in info.get("entries") or [] if not e.get("returned")]
        lines += [f"- shard `{e['key']}` returned no result ({', '.join(e['candidates'])})" for e in lost]
    return lines


def _estimate_usd(ctx: StageContext, n_candidates: int, archs: list[str]) -> float:
    from .experiments.cost import estimate_run

    project = ctx.project
    invocations = project.rounds * (project.repetitions + project.warmup)
    per_candidate_s = (
        120.0 + invocations * 2.0
    )  # build + validate + an invocation every ~2 s (see estimate_cost.py)
    estimate = estimate_run(n_candidates, archs, per_candidate_s, 300.0, {a: _price(ctx, a) for a in archs})
    return float(estimate.total_usd or 0.0)


def _check_budget(
    ctx: StageContext, n_candidates: int, archs: list[str], the_plan: shards.Plan | None = None
) -> None:
    """Refuse to launch a batch whose estimated cost would take the run over its budget (the fan-out plan's
    dollars when there is one)."""
    spent = ctx.store.usage_totals(ctx.run.id)["usd"]
    limit = min(ctx.project.budget_usd, ctx.settings.budget_usd)
    cost = the_plan.usd if the_plan is not None else _estimate_usd(ctx, n_candidates, archs)
    ctx.event(
        "budget",
        f"estimated ${cost:.2f} for {n_candidates} candidates on {', '.join(archs)}; "
        f"spent ${spent:.2f} of ${limit:.2f}",
    )
    if spent + cost > limit:
        raise StageFailed(
            f"The run's budget would be exceeded: ${spent:.2f} spent, this benchmark would cost about "
            f"${cost:.2f}, the limit is ${limit:.2f}. No VM was launched. Raise `budget.usd` in "
            "`.autoresearch.yml` or reduce the candidates."
        )


def _record_cost(
    ctx: StageContext, name: str, results: dict[str, Any], executor: Any, handle: str
) -> tuple[float, float]:
    """VM seconds (the executor's own count when it has one: launch to teardown) x price, per arch."""
    known = executor.vm_seconds(handle) if executor.capabilities.vm_seconds else {}
    total_s, total_usd = 0.0, 0.0
    costs = ctx.artifacts.get(COSTS)
    # every arch that ran a VM is charged, also one that failed and returned no result
    archs = list(results or {}) + [a for a in known if a not in (results or {})]
    for arch in archs:
        result = (results or {}).get(arch)
        seconds = float(known.get(arch) or ((result or {}).get("timings") or {}).get("total_s") or 0.0)
        price = _price(ctx, arch)
        usd = seconds / 3600.0 * price
        total_s += seconds
        total_usd += usd
        costs[shards.arch_of(arch)] = costs.get(shards.arch_of(arch), 0.0) + usd
        ctx.store.record_usage(
            ctx.run.id, "vm", usd=usd, detail=f"{name}/{arch}: {seconds:.0f} s at ${price}/h"
        )
    ctx.artifacts.put(COSTS, costs)
    return total_s, total_usd


# ------------------------------------------------------------------------------------------------------------
# decision


def project_for(ctx: StageContext, results: dict[str, Any]) -> dict[str, Any]:
    project = ctx.project.to_dict()
    project["architectures"] = [a for a in project["architectures"] if a in results] or list(results)
    return project


def decide(ctx: StageContext) -> None:
    from .experiments.stats import decide as stats_decide
    from .experiments.stats.words import Note

    n = current_wave(ctx)
    results = ctx.artifacts.get(RESULTS_MAIN, n) or {}
    if not results:
        ctx.artifacts.put(
            DECISION,
            {
                "rows": [],
                "winners": [],
                "notes": ["nothing was measured"],
                "target": ctx.project.target,
                "archs": [],
            },
            n,
        )
        return
    decision = stats_decide(results, project_for(ctx, results), seed=ctx.run.id + 10 * (n - 1))
    coverage = ctx.artifact(ARCH_COVERAGE) or {}
    decision.notes[:0] = [  # what each arch row is; an arch with no row says why: never dropped silently
        Note(f"{a}: {c['reason']}")
        for a, c in coverage.items()
        if c["kind"] == "emulated" or (c["kind"] == "not_run" and a not in results)
    ]
    ctx.artifacts.put(DECISION, decision.to_dict(), n)
    ctx.progress(f"decision: {len(decision.winners)} winner(s)" + (f" in wave {n}" if n > 1 else ""))


# ------------------------------------------------------------------------------------------------------------
# verification, the wave review and publishing


def verify(ctx: StageContext) -> None:
    """The wave's winners stacked on the wave's base and re-measured together (with the single winners
    alongside); `choice` says what the wave keeps. One winner needs no stack: it was measured already."""
    n = current_wave(ctx)
    if ctx.artifacts.get(CHOICE, n) is not None:
        return
    decision = ctx.artifacts.get(DECISION, n) or {}
    winners = decision.get("winners", [])
    if not winners:
        choice = {
            "kind": "none",
            "candidate": None,
            "speedup": None,
            "reason": "no candidate was correct and significantly faster",
        }
    elif len(winners) == 1:
        choice = {
            "kind": "single",
            "candidate": winners[0],
            "speedup": _target_speedup(decision, winners[0]),
            "reason": f"{winners[0]} is the only verified winner: correct and significantly faster, "
            "nothing to stack",
        }
    else:
        choice = _verify(ctx, decision, n)
    ctx.artifacts.put(CHOICE, choice, n)


def _verify(ctx: StageContext, decision: dict[str, Any], n: int = 1) -> dict[str, Any]:
    """Stack the winners, measure the stack afresh (with the single winners alongside), choose."""
    from .experiments.stats import decide as stats_decide
    from .publish import choose_publication, stack_winners

    cands = {c["name"]: Candidate.from_dict(c) for c in ctx.artifacts.get(CANDIDATES, n)}
    winners = [
        {"name": w, "sha": cands[w].sha, "speedup": _target_speedup(decision, w)} for w in decision["winners"]
    ]
    base, _ = wave_base(ctx, n)
    m = mirror(ctx)
    stack = ctx.artifacts.get(STACK, n)
    if stack is None:
        branch = branch_for(ctx.run, "stack" if n == 1 else f"w{n}-stack")
        result = stack_winners(m.path, base, winners, branch, force=True)
        stack = result.to_dict()
        if result.sha:
            from .publish import push_blockers

            # every part passed the push check against the wave's base; the stack is checked as a whole too
            blocked = push_blockers(m.path, base, result.sha, ctx.project.protected_paths)
            if blocked:
                raise StageFailed(
                    f"The stack `{branch}` changes {', '.join(f'`{p}`' for p in blocked[:5])}; it is not "
                    "pushed (CI, the config file or protected paths)."
                )
            push_branch(ctx, m, push_target(ctx), result.sha, branch, "stack branch")
        ctx.artifacts.put(STACK, stack, n)
        ctx.progress(f"stacked {len(stack['applied'])} winner(s); dropped {len(stack['dropped'])}")
    if not stack.get("sha"):
        return choose_publication(None, decision)
    verify_cands = [{"name": "stack", "sha": stack["sha"]}] + [
        {"name": w["name"], "sha": w["sha"]} for w in winners
    ]
    # the stack is a new commit: its check runs start here, in_progress while it is re-measured
    stack_target = {
        "sha": stack["sha"],
        "candidate": "stack",
        "wave": n,
        "experiment": waves.key("verify", n),
    }
    ctx.pipeline._checks(lambda: checkruns.open_checks(ctx.pipeline, ctx.run, [stack_target]))
    results = run_experiment(
        ctx,
        waves.key("verify", n),
        base,
        verify_cands,
        started=lambda: ctx.pipeline._checks(lambda: checkruns.on_phase(ctx.pipeline, ctx.run)),
    )
    seed = ctx.run.id + 1 + 10 * (n - 1)
    verification = stats_decide(results, project_for(ctx, results), seed=seed).to_dict()
    ctx.artifacts.put(VERIFICATION, {"stack": stack, "decision": verification}, n)
    return choose_publication(verification, decision)


def review(ctx: StageContext) -> str | None:
    """Record what the wave kept and the running best; start the next wave ("researching") or stop the loop
    (at research.max_waves, without an LLM, on the budget, or when the wave kept no verified improvement)."""
    n = current_wave(ctx)
    if n > 1 and ctx.artifacts.get(DECISION, n) is None:
        return Phase.RESEARCHING  # wave n-1's review said "continue" just before a restart: wave n starts now
    rec = ctx.artifacts.review(n)
    if rec is None:
        rec = _review_wave(ctx, n)
        ctx.artifacts.put_review(n, rec)  # from here on the current wave is n + 1 when the review continues
    if rec["next"] == "continue":
        ctx.progress(f"wave {n} reviewed: {rec['reason']}")
        return Phase.RESEARCHING
    if ctx.artifacts.get(LOOP) is None:
        best = rec.get("best") or {}
        ctx.artifacts.put(
            LOOP, {"waves": n, "stop": rec["stop"], "reason": rec["reason"], "best_wave": best.get("wave", 0)}
        )
        ctx.progress(f"stopped after wave {n}: {rec['reason']}")
    return None


def _review_wave(ctx: StageContext, n: int) -> dict[str, Any]:
    base, label = wave_base(ctx, n)
    choice = ctx.artifacts.get(CHOICE, n) or {}
    cands = ctx.artifacts.get(CANDIDATES, n)
    kept = waves.kept_of(choice, ctx.artifacts.get(STACK, n), cands)
    prev = waves.best_after(waves.records(ctx.artifact)[: n - 1])
    if kept:
        step = {"wave": n, "names": kept["names"], "titles": kept["titles"], "speedup": kept.get("speedup")}
        best = {
            "sha": kept["sha"],
            "branch": kept.get("branch"),
            "wave": n,
            "label": waves.describe_kept(n, kept),
            "path": list((prev or {}).get("path") or []) + [step],
        }
    else:
        best = prev or {
            "sha": baseline_sha(ctx),
            "branch": None,
            "wave": 0,
            "label": "the baseline",
            "path": [],
        }
    has_llm = llm_for(ctx) is not None
    code, reason = waves.stop_reasons(
        wave=n,
        kept=bool(kept),
        choice_reason=str(choice.get("reason") or ""),
        max_waves=ctx.project.max_waves,
        has_llm=has_llm,
        budget_problem=_budget_problem(ctx, has_llm),
    )
    decision = ctx.artifacts.get(DECISION, n) or {}
    return {
        "wave": n,
        "base": {"sha": base, "label": label},
        "candidates": [c["name"] for c in cands],
        "winners": list(decision.get("winners") or []),
        "choice": choice,
        "kept": kept,
        "best": best,
        "next": "stop" if code else "continue",
        "stop": code,
        "reason": reason,
    }


def _budget_problem(ctx: StageContext, has_llm: bool) -> str | None:
    """Why the budget cannot pay for another wave, or None."""
    usage = ctx.store.usage_totals(ctx.run.id)
    limit = min(ctx.project.budget_usd, ctx.settings.budget_usd)
    cost = _estimate_usd(ctx, max(1, ctx.project.max_candidates) + 1, measured_archs(ctx))
    if usage["usd"] + cost > limit:
        return (
            f"the budget: ${usage['usd']:.2f} of ${limit:.2f} spent, and another wave would cost about "
            f"${cost:.2f}"
        )
    tokens = min(ctx.project.budget_tokens, ctx.settings.budget_llm_tokens)
    used = int(usage["tokens_in"] + usage["tokens_out"])
    if has_llm and tokens - used < waves.MIN_WAVE_TOKENS:
        return f"the LLM token budget: {used:,} of {tokens:,} tokens used"
    return None


def publish(ctx: StageContext) -> None:
    _publish(ctx)
    # every candidate's check runs end with its own verdict (the PR head's were completed with the PR's)
    n = current_wave(ctx) if ctx.run.kind == "issue" else 1
    decisions = {k: ctx.artifacts.get(DECISION, k) for k in range(1, n + 1)}
    ctx.pipeline._checks(lambda: checkruns.finish_measured(ctx, decisions))


def _publish(ctx: StageContext) -> None:
    decision = ctx.artifacts.get(DECISION) or {}
    if ctx.run.kind == "bench":
        return  # the table in the status comment is the answer
    if ctx.run.kind == "rebench":
        _refresh_pull(ctx, decision)
        return
    recs = waves.records(ctx.artifact)
    best = waves.best_after(recs)
    stopped = (ctx.artifacts.get(LOOP) or {}).get("reason")
    if best is None:
        reason = (recs[0].get("choice") or {}).get("reason") if recs else None
        reason = reason or "no candidate was correct and significantly faster"
        ctx.artifacts.put(PUBLICATION, Publication(kind="none", reason=reason, stopped=stopped).to_dict())
        return  # the requester is @-mentioned when the run ends (Pipeline.mention_ending)
    if best["wave"] > 1:
        final = ctx.artifacts.get(FINAL) or _measure_final(ctx, best)
        if final["choice"]["kind"] != "none":
            candidates = [c for rec in recs for c in ctx.artifacts.get(CANDIDATES, rec["wave"])]
            stack = final["stack"]
            _open_pull(
                ctx,
                final["choice"],
                recs,
                published=(stack["branch"], stack["sha"], stack, final["decision"]),
                candidates=candidates,
            )
            return
        ctx.event(
            "publish", f"the running best did not hold against the baseline: {final['choice']['reason']}"
        )
        if not recs[0].get("kept"):
            ctx.artifacts.put(
                PUBLICATION,
                Publication(kind="none", reason=final["choice"]["reason"], stopped=stopped).to_dict(),
            )
            return
    _open_pull(ctx, ctx.artifacts.get(CHOICE), recs[:1] if best["wave"] > 1 else recs)


def _measure_final(ctx: StageContext, best: dict[str, Any]) -> dict[str, Any]:
    """The running best of several waves, measured against the baseline itself (what the PR changes)."""
    from .experiments.stats import decide as stats_decide

    results = run_experiment(ctx, "final", baseline_sha(ctx), [{"name": "stack", "sha": best["sha"]}])
    decision = stats_decide(results, project_for(ctx, results), seed=ctx.run.id + 7).to_dict()
    applied = [name for step in best["path"] for name in step["names"]]
    waves_used = ", ".join(str(step["wave"]) for step in best["path"])
    if "stack" in decision.get("winners", []):
        choice = {
            "kind": "stack",
            "candidate": "stack",
            "speedup": _target_speedup(decision, "stack"),
            "reason": f"the verified changes of waves {waves_used} ({len(applied)} in all), each "
            "measured against the stack before it, re-measured together: correct and "
            "significantly faster than the baseline",
        }
    else:
        choice = {
            "kind": "none",
            "candidate": None,
            "speedup": None,
            "reason": f"the stack of waves {waves_used} was not significantly faster than the "
            "baseline when measured against it",
        }
    final = {
        "decision": decision,
        "choice": choice,
        "stack": {"sha": best["sha"], "branch": best["branch"], "applied": applied, "dropped": []},
    }
    ctx.artifacts.put(FINAL, final)
    return final


def _target_speedup(decision: dict[str, Any], name: str) -> float:
    from .experiments.stats import Decision

    return Decision.from_dict(decision).target_speedup(name)


def _published(
    ctx: StageContext, choice: dict[str, Any]
) -> tuple[str, str, dict[str, Any] | None, dict[str, Any]]:
    """(head branch, head sha, stack or None, the decision that measured what is published)."""
    cands = {c["name"]: Candidate.from_dict(c) for c in ctx.artifacts.get(CANDIDATES)}
    verification = ctx.artifacts.get(VERIFICATION) or {}
    measured = verification.get("decision") or ctx.artifacts.get(DECISION) or {}
    if choice["kind"] == "stack":
        stack = ctx.artifacts.get(STACK) or {}
        return stack["branch"], stack["sha"], stack, measured
    c = cands[choice["candidate"]]
    return c.branch, c.sha, None, measured


def _open_pull(
    ctx: StageContext,
    choice: dict[str, Any],
    recs: list[dict[str, Any]] | None = None,
    *,
    published: tuple[str, str, dict[str, Any] | None, dict[str, Any]] | None = None,
    candidates: list[dict[str, Any]] | None = None,
) -> None:
    from . import report

    head_branch, head_sha, stack, measured = published or _published(ctx, choice)
    inputs = ctx.pipeline.report_inputs(ctx.run)
    measured = report.with_units(measured, inputs["project"])
    base_cands = candidates if candidates is not None else ctx.artifacts.get(CANDIDATES)
    stacked = Candidate(
        name="stack", branch=head_branch, sha=head_sha, source="stack", title="stacked verified winners"
    )
    candidates = base_cands + ([stacked.to_dict()] if stack else [])
    path_md = report.waves_path(recs, (ctx.artifacts.get(LOOP) or {}).get("reason")) if recs else None
    body = report.pr_body(
        _report_run(inputs),
        measured,
        candidates,
        choice,
        baseline_sha(ctx),
        head_sha,
        stack=stack,
        costs=report_costs(inputs),
        links=report_links(inputs),
        path_md=path_md,
    )
    title = report.pr_title(choice, candidates, measured, (stack or {}).get("applied") or [])
    base_branch = Baseline.from_dict(ctx.artifacts.get(BASELINE)).branch

    head_owner, head = None, head_branch
    if ctx.project.push_to == "fork":
        # the fork may have been deleted since the branches were pushed: found or made again, and the head
        # pushed (again) from the mirror, which holds every commit the bot measured
        fork = push_target(ctx)
        push_branch(ctx, mirror(ctx), fork, head_sha, head_branch, "the pull request's branch")
        head_owner = fork.split("/", 1)[0]
        head = f"{head_owner}:{head_branch}"

    def create() -> dict[str, Any]:
        try:
            existing = ctx.forge.find_open_pull(ctx.run.repo, head_branch, head_owner)
            pr = existing or ctx.forge.create_pull(ctx.run.repo, title, body, head, base_branch, draft=True)
        except RateLimited:
            raise
        except ForgeError as exc:
            raise StageFailed(
                f"Could not open the draft pull request from `{head}` into `{base_branch}`: "
                f"{ctx.forge.redact(exc.message)}"
            ) from None
        return {"number": pr.number, "url": pr.html_url}

    pr = ctx.store.once(ctx.run.id, "pull_request", create)
    ctx.forge.edit_pull(ctx.run.repo, pr["number"], body=body)
    _finish_head(ctx, head_sha, measured, choice["candidate"], candidates, stack is not None, recs)
    ctx.artifacts.put(
        PUBLICATION,
        Publication(
            kind=choice["kind"],
            pr_number=pr["number"],
            pr_url=pr["url"],
            head_branch=head_branch,
            head_sha=head_sha,
            base_sha=baseline_sha(ctx),
            reason=choice["reason"],
            waves=[r["wave"] for r in recs or []],
        ).to_dict(),
    )
    ctx.progress(f"draft pull request #{pr['number']} opened")


def _finish_head(
    ctx: StageContext,
    head_sha: str,
    measured: dict[str, Any],
    candidate: str,
    candidates: list[dict[str, Any]],
    stacked: bool,
    recs: list[dict[str, Any]] | None,
) -> None:
    """The PR head's check runs, completed from the decision that measured what the PR publishes (and the
    results of that batch: the verification's for a stack, `final` for several waves' stack)."""
    n = current_wave(ctx) if ctx.run.kind == "issue" else 1
    final_decision = (ctx.artifacts.get(FINAL) or {}).get("decision")
    if stacked and final_decision is not None and final_decision == measured:
        experiment = "final"
    elif stacked:
        experiment = waves.key("verify", n)
    else:
        wave = next((c.get("wave") or 1 for c in candidates if c["name"] == candidate), 1)
        experiment = waves.key("main", wave)
    target = {"sha": head_sha, "candidate": candidate, "experiment": experiment}
    results = ctx.artifacts.results(experiment)
    ctx.pipeline._checks(
        lambda: checkruns.finish(ctx.pipeline, ctx.run, target, measured, candidates, results)
    )


def _refresh_pull(ctx: StageContext, decision: dict[str, Any]) -> None:
    """Rebench of a PR: the status comment on the PR carries the new table; check runs on its head."""
    pr = ctx.forge.get_pull(ctx.run.repo, ctx.run.params["pull"])
    cands = ctx.artifacts.get(CANDIDATES)
    head = Candidate.from_dict(cands[0]) if cands else None
    if head:
        _finish_head(ctx, head.sha, decision, head.name, cands, False, None)
    pub = Publication(
        kind="rebench",
        pr_number=pr.number,
        base_sha=baseline_sha(ctx),
        head_sha=head.sha if head else pr.head_sha,
    )
    ctx.artifacts.put(PUBLICATION, pub.to_dict())


# ------------------------------------------------------------------------------------------------------------
# status comment


def _report_run(inputs: dict[str, Any]) -> dict[str, Any]:
    run = inputs["run"]
    return {**run, "issue_number": run["issue"]}


def report_links(inputs: dict[str, Any]) -> dict[str, Any]:
    return {"repo": inputs["links"]["repo_web"], "run": inputs["links"]["status_page"]}


def report_costs(inputs: dict[str, Any]) -> dict[str, Any]:
    archs = dict(inputs.get("costs") or {})
    return {
        "archs": archs,
        "llm_usd": inputs["budget"]["llm_usd"],
        "total_usd": inputs["budget"]["spent_usd"],
    }


def render_status(pipeline: Pipeline, run: Run) -> str:
    from . import report

    i = pipeline.report_inputs(run)
    failures = report.failures_from_results(i["results"]) if i["results"] else []
    if i["failure"]:
        failures = [
            {
                "title": f"Run stopped during {i['failure']['stage']}",
                "message": i["failure"]["message"],
                "log": i["failure"]["log_tail"],
            }
        ] + failures
    decision = i["decision"]
    dossier_md = (i["dossier"] or {}).get("markdown")
    waves_md = _waves_status(pipeline, run, i) if i["run"]["kind"] == "issue" else None
    extra = []
    if i["skipped"]:
        extra.append("**Hypotheses not turned into candidates:**")
        extra += [
            f"- {report.cell(s.get('title') or s.get('hypothesis'), 100)}: {report.cell(s['reason'], 200)}"
            for s in i["skipped"]
        ]
    extra += arch_lines(pipeline.store.get_artifact(run.id, ARCH_COVERAGE))
    for exp in _plan_experiments(pipeline, run):
        extra += plan_lines(pipeline.store.get_artifact(run.id, plan_key(exp)), exp)
    if run.deferred_until is not None and run.active:  # a GitHub rate limit holds the run
        extra.append(
            f"**Deferred until {iso_utc(run.deferred_until)}:** GitHub rate-limited the bot; the run resumes "
            "where it stopped when the limit resets (nothing is measured or pushed twice)."
        )
    pub = Publication.from_dict(i["publication"]) if i["publication"] else None
    pull = None
    if pub and pub.pr_url:
        pull = {"number": pub.pr_number, "url": pub.pr_url, "reason": pub.reason or ""}
    elif pub and pub.kind == "none":
        pull = {"reason": pub.reason or ""}
    if decision:
        decision = report.with_units(decision, i["project"])
    return report.status_comment(
        _report_run(i),
        i["run"]["state"],
        i["progress"][-1] if i["progress"] else None,
        budget_spent=i["budget"]["spent_usd"],
        budget_limit=i["budget"]["limit_usd"],
        dossier_md=dossier_md,
        decision=decision,
        candidates=i["candidates"],
        costs=report_costs(i) if i["results"] else None,
        links=report_links(i),
        failures=failures,
        waves_md=waves_md,
        extra=extra,
        prefix=pipeline.settings.command_prefix,
        pull=pull,
    )


def _plan_experiments(pipeline: Pipeline, run: Run) -> list[str]:
    """Experiments of this run with a fan-out plan, oldest first (the status comment shows each)."""
    from .artifacts import PLAN_PREFIX

    keys = [k for k in pipeline.store.artifact_keys(run.id) if k.startswith(PLAN_PREFIX)]
    return [k[len(PLAN_PREFIX) :] for k in keys]


def _waves_status(pipeline: Pipeline, run: Run, i: dict[str, Any]) -> str | None:
    """Earlier waves as collapsed sections (plan, table, per-function diff, what was kept), the current wave's
    heading, and why the loop stopped. None for a run still in its first wave."""
    from . import report

    recs, n = i["waves"], i["wave"]
    if not recs and n == 1:
        return None
    arts = RunArtifacts(pipeline.store, run.id)
    parts = []
    for rec in recs:
        k = rec["wave"]
        if k == n:
            continue
        plan = (arts.get(DOSSIER, k) or {}).get("markdown") if k > 1 else None
        parts.append(
            report.wave_section(rec, arts.get(DECISION, k), arts.get(CANDIDATES, k), plan, report_links(i))
        )
    current = next((r for r in recs if r["wave"] == n), None)
    parts.append(
        report.current_wave_heading(
            n, i["wave_base"], (i.get("wave_plan") or {}).get("markdown"), current, i["loop"]
        )
    )
    return "\n\n".join(p for p in parts if p)


STAGE_FUNCTIONS = {f.__name__: f for f in (research, implement, benchmark, decide, verify, review, publish)}
# phase -> stage function, from the phase table (bot/model.py names each phase's stage)
DEFAULT_STAGES = {phase: STAGE_FUNCTIONS[info.stage] for phase, info in PHASES.items() if info.stage}

__all__ = ["DEFAULT_STAGES", "render_status", "run_experiment"]
