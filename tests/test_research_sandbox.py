"""Research against the real sandbox forge: GitHubForge (PyGithub over HTTP) + git smart HTTP fetches."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from research_fixtures import CPU_C, CUDA_CU, OPS_CPP
from sandbox_helpers import Admin

from bot.forge import GitHubForge, RetryPolicy, TokenAuth
from bot.research import ResearchOptions, build_dossier
from bot.research.arxiv import ArxivOptions
from bot.research.forks import ForkOptions
from bot.sandbox import Sandbox

FAST = RetryPolicy(
    total=2,
    backoff_factor=0.05,
    backoff_max_s=0.2,
    max_wait_s=2,
    secondary_rate_wait_s=1,
    connection_attempts=2,
)
PROJECT = {
    "preset": "llama.cpp",
    "architectures": ["x86", "arm"],
    "paths": {"hot": ["ggml/src/ggml-cpu/**"], "allowed": ["ggml/**"], "protected": [".github/**"]},
    "research": {"arxiv": True, "max_forks": 5, "related": []},
}


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Fork Dev",
        "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "Fork Dev",
        "GIT_COMMITTER_EMAIL": "dev@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=True, timeout=60
    ).stdout.strip()


@pytest.fixture(scope="module")
def sandbox_world(
    sandbox: Sandbox, sandbox_admin: Admin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("research-sb")
    seed = tmp / "seed"
    for rel, text in {
        "ggml/src/ggml-cpu/ggml-cpu.c": CPU_C,
        "ggml/src/ggml-cpu/ops.cpp": OPS_CPP,
        "ggml/src/ggml-cuda/ggml-cuda.cu": CUDA_CU,
        "README.md": "# proj\n",
    }.items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(text)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "initial")
    sb = sandbox
    tokens = {u: sandbox_admin.user(u) for u in ("owner", "forker")}
    repo = sandbox_admin.repo("owner", "proj", seed)
    fork = sandbox_admin.fork(repo, "forker")
    work = tmp / "fork-work"
    url = f"{sb.url}/{fork}.git".replace("://", f"://forker:{tokens['forker']}@")
    git(tmp, "clone", "-q", url, str(work))
    (work / "ggml/src/ggml-cpu/ops.cpp").write_text(
        OPS_CPP.replace("float sum = 0.0f;", "float sum = 0.0f; // fast")
    )
    git(work, "commit", "-qam", "ggml-cpu: faster soft_max on NEON")
    sha = git(work, "rev-parse", "HEAD")
    git(work, "push", "-q", "origin", "main")
    forge = GitHubForge(TokenAuth(tokens["owner"]), base_url=sb.api_url, min_interval_s=0, retry=FAST)
    clone = tmp / "clone"
    git(tmp, "clone", "-q", forge.clone_url(repo), str(clone))
    yield {"sb": sb, "forge": forge, "repo": repo, "fork": fork, "sha": sha, "clone": clone, "tmp": tmp}


def test_dossier_through_github_forge_and_sandbox(arxiv, sandbox_world: dict[str, Any]) -> None:
    w = sandbox_world
    options = ResearchOptions(
        arxiv=ArxivOptions(base_url=arxiv.url, delay_seconds=0, retry_wait_s=0),
        forks=ForkOptions(retry_wait_s=0),
        retry_wait_s=0,
    )
    d = build_dossier(
        {"number": 99, "title": "Speed up token generation on CPU", "body": ""},
        PROJECT,
        w["clone"],
        w["forge"],
        None,
        w["tmp"] / "cache",
        w["repo"],
        options,
    )
    fork_h = next(h for h in d.hypotheses if h.kind == "fork_commit")
    assert fork_h.fork["repo"] == w["fork"] and fork_h.fork["sha"] == w["sha"]
    assert fork_h.target_files == ["ggml/src/ggml-cpu/ops.cpp"]
    assert "targets this architecture" in fork_h.expected_effect["arm"]
    assert "likely neutral" in fork_h.expected_effect["x86"]
    port = fork_h.fork["port_sha"]
    assert "// fast" in git(w["clone"], "show", f"{port}:ggml/src/ggml-cpu/ops.cpp")
    src = next(s for s in d.sources if s.kind == "fork_commit")
    assert src.url == f"{w['sb'].url}/{w['fork']}/commit/{w['sha']}"
    assert any(h.kind == "backend_gap" for h in d.hypotheses)
    assert {n.source: n.status for n in d.notes}["forks"] == "ok"
