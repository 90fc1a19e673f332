#!/usr/bin/env python3
"""Build the demo's git history: an upstream repository and competing forks with commits ahead.

    python examples/make_fork.py /tmp/demo-git      # prints the history as JSON

Layout produced under the output directory:
  upstream/  the examples/attention project, branch main, one commit "initial"
  fork/      a clone of upstream, branch "perf" with four commits ahead (examples/fork_commits/1-4)
  fork2/     a clone of upstream, branch "softmax-reciprocal" with one commit (5-...), which touches the
             same lines as the fork's fused softmax: it cannot be stacked with it.
Every commit touches src/ only and applies cleanly on upstream alone. Authors, dates and messages are
fixed, so the commit ids are the same on every machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
PROJECT = EXAMPLES / "attention"
COMMITS = EXAMPLES / "fork_commits"
BUILD_OUTPUTS = {"bench", "check"}

# fork name -> (branch, commit directories in order, author)
FORKS: dict[str, tuple[str, list[str], str]] = {
    "fork": ("perf", ["1-fused-softmax", "2-matmul-ikj", "3-fast-exp", "4-rmsnorm-tidy"], "Ada Fork"),
    "fork2": ("softmax-reciprocal", ["5-softmax-reciprocal"], "Grace Fork"),
}
# What a careful measurement should find (checked by the figures script, not assumed by the bot).
EXPECTED = {
    "1-fused-softmax": "faster",
    "2-matmul-ikj": "faster",
    "3-fast-exp": "broken",
    "4-rmsnorm-tidy": "no change",
    "5-softmax-reciprocal": "conflicts with 1-fused-softmax",
}


@dataclass(frozen=True)
class ForkCommit:
    """One commit ahead of upstream in a fork."""

    slug: str
    fork: str
    branch: str
    sha: str
    title: str
    message: str
    files: list[str]
    expected: str


@dataclass(frozen=True)
class ForkHistory:
    """Where the repositories are and what they contain."""

    upstream: Path
    base_sha: str
    forks: dict[str, Path]
    commits: list[ForkCommit] = field(default_factory=list)

    def commit(self, slug: str) -> ForkCommit:
        for c in self.commits:
            if c.slug == slug:
                return c
        raise KeyError(slug)

    def to_dict(self) -> dict:
        return {
            "upstream": str(self.upstream),
            "base_sha": self.base_sha,
            "forks": {k: str(v) for k, v in self.forks.items()},
            "commits": [asdict(c) for c in self.commits],
        }


def _git(repo: Path, *args: str, when: int = 0, author: str = "Upstream Maintainer") -> str:
    email = author.lower().replace(" ", ".") + "@example.org"
    date = f"2026-01-{1 + when:02d}T12:00:00+00:00"
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": author,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
    }
    cmd = ["git", "-c", "init.defaultBranch=main", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false"]
    done = subprocess.run(cmd + list(args), cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def _copy_project(dest: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        root = Path(directory) == PROJECT
        return {n for n in names if (root and n in BUILD_OUTPUTS) or n.endswith(".o")}

    shutil.copytree(PROJECT, dest, ignore=ignore)
    for path in dest.rglob("*"):
        if path.is_file():
            path.chmod(0o644)


def _apply(repo: Path, slug: str) -> list[str]:
    """Copy the commit's replacement files into repo; return their relative paths."""
    source = COMMITS / slug
    files = sorted(
        p.relative_to(source) for p in source.rglob("*") if p.is_file() and p.name != "message.txt"
    )
    for rel in files:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, repo / rel)
        (repo / rel).chmod(0o644)
    return [str(r) for r in files]


def build(out: Path) -> ForkHistory:
    """Create upstream/, fork/ and fork2/ under out (which must not exist or be empty)."""
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    upstream = out / "upstream"
    _copy_project(upstream)
    _git(upstream, "init", "-q")
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-q", "-m", "initial")
    base = _git(upstream, "rev-parse", "HEAD")

    forks: dict[str, Path] = {}
    commits: list[ForkCommit] = []
    when = 1
    for fork, (branch, slugs, author) in FORKS.items():
        repo = out / fork
        _git(out, "clone", "-q", str(upstream), str(repo))
        _git(repo, "checkout", "-q", "-b", branch)
        for slug in slugs:
            files = _apply(repo, slug)
            message = (COMMITS / slug / "message.txt").read_text()
            _git(repo, "add", "--", *files)
            _git(repo, "commit", "-q", "-F", str(COMMITS / slug / "message.txt"), when=when, author=author)
            when += 1
            sha = _git(repo, "rev-parse", "HEAD")
            title = message.splitlines()[0]
            commits.append(ForkCommit(slug, fork, branch, sha, title, message, files, EXPECTED[slug]))
        forks[fork] = repo
    return ForkHistory(upstream=upstream, base_sha=base, forks=forks, commits=commits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to create (must be absent or empty)")
    args = parser.parse_args(argv)
    try:
        history = build(args.out)
    except (FileExistsError, RuntimeError) as exc:
        print(f"make_fork: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(history.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
