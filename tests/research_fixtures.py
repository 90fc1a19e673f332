"""Real local git repositories (upstream, forks, a baseline clone) and a forge double over them for research
tests.

The forge double implements the few `bot.forge.Forge` methods research uses, answering from real git and
returning bot.forge's own result types; it counts calls so tests can check caching.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from bot.forge import CommitInfo, CompareResult, FileChange, IssueSummary, PullSummary

CPU_C = """\
#include "ops.h"
static int ggml_cpu_try_fuse_ops(int node) {
    // RMS_NORM + MUL fusion
    const enum ggml_op fuse_ops[] = { GGML_OP_RMS_NORM, GGML_OP_MUL };
    return ggml_can_fuse(cgraph, node, fuse_ops, 2);
}
static void ggml_compute_forward(struct ggml_tensor * t) {
    switch (t->op) {
        case GGML_OP_ADD: ggml_compute_forward_add(t); break;
        case GGML_OP_MUL: ggml_compute_forward_mul(t); break;
        case GGML_OP_RMS_NORM: ggml_compute_forward_rms_norm(t); break;
        case GGML_OP_SOFT_MAX: ggml_compute_forward_soft_max(t); break;
    }
}
"""
OPS_CPP = """\
void ggml_vec_dot_q4_0_q8_0(int n, float * s, const void * x, const void * y) {
    for (int i = 0; i < n; i++) { s[0] += 1; }
}
void ggml_compute_forward_soft_max(struct ggml_tensor * t) {
    float max = -INFINITY;
    for (int i = 0; i < 8; i++) { max = max; }
    float sum = 0.0f;
    return;
}
void ggml_compute_forward_rms_norm(struct ggml_tensor * t) {
    return;
}
"""
CUDA_CU = """\
static bool ggml_cuda_supports_op(const ggml_tensor * op) {
    switch (op->op) {
        case GGML_OP_ADD:
        case GGML_OP_MUL:
        case GGML_OP_RMS_NORM:
        case GGML_OP_SOFT_MAX:
        case GGML_OP_FLASH_ATTN_EXT:
            return true;
    }
}
static int ggml_cuda_try_fuse(ggml_cgraph * cgraph, int i) {
    if (ggml_cuda_can_fuse(cgraph, i, { GGML_OP_RMS_NORM, GGML_OP_MUL, GGML_OP_ADD }, {})) {
        return 2;
    }
    if (ggml_cuda_can_fuse(cgraph, i, { GGML_OP_RMS_NORM, GGML_OP_MUL }, {})) {
        return 1;
    }
    for (ggml_op op : { GGML_OP_MUL_MAT, GGML_OP_MUL_MAT_ID }) { }
    return 0;
}
"""
METAL_FUSION = """\
static const fusion_entry fusions[] = {
    { GGML_OP_RMS_NORM, GGML_OP_MUL, GGML_OP_ADD },
    { GGML_OP_ADD, GGML_OP_ADD },
};
"""
UTIL_C = "int util_a(void) { return 1; }\nint util_b(void) { return 2; }\nint util_c(void) { return 3; }\n"


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(cwd),
    }
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=True)
    return proc.stdout.strip()


def write(repo: Path, rel: str, text: str) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit(repo: Path, message: str, files: dict[str, str], author: str = "Test") -> str:
    for rel, text in files.items():
        write(repo, rel, text)
    git(repo, "add", "-A")
    git(
        repo,
        "-c",
        f"user.name={author}",
        "commit",
        "-q",
        "-m",
        message,
        "--author",
        f"{author} <{author.lower()}@example.com>",
    )
    return git(repo, "rev-parse", "HEAD")


class World:
    """upstream (owner/proj) with two commits, forks alice/bob/carol, and a clone of upstream's head."""

    def __init__(self, root: Path):
        self.root = root
        self.paths: dict[str, Path] = {}
        up = self._init("owner/proj")
        commit(
            up,
            "initial",
            {
                "ggml/src/ggml-cpu/ggml-cpu.c": CPU_C,
                "ggml/src/ggml-cpu/ops.cpp": OPS_CPP,
                "ggml/src/ggml-cuda/ggml-cuda.cu": CUDA_CU,
                "ggml/src/ggml-metal/ggml-metal-fusion.cpp": METAL_FUSION,
                "src/util.c": UTIL_C,
                "docs/readme.md": "# proj\n",
            },
        )
        self.fork_point = git(up, "rev-parse", "HEAD")
        self.upstream_head = commit(
            up, "util: return 20", {"src/util.c": UTIL_C.replace("return 2;", "return 20;")}
        )

        alice = self._fork("alice/proj")
        self.softmax_sha = commit(
            alice,
            "ggml-cpu: online softmax normalizer (AVX2) | @maintainer please merge",
            {
                "ggml/src/ggml-cpu/ops.cpp": OPS_CPP.replace(
                    "float sum = 0.0f;", "float sum = 0.0f; /* online */"
                )
            },
            author="Alice",
        )
        self.docs_sha = commit(alice, "docs: typo", {"docs/readme.md": "# proj!\n"}, author="Alice")
        self.conflict_sha = commit(
            alice,
            "util: return 22",
            {"src/util.c": UTIL_C.replace("return 2;", "return 22;")},
            author="Alice",
        )
        bob = self._fork("bob/proj")
        git(bob, "fetch", "-q", str(alice), "main")
        git(bob, "-c", "user.name=Bob", "-c", "user.email=bob@example.com", "cherry-pick", self.softmax_sha)
        self.bob_softmax_sha = git(bob, "rev-parse", "HEAD")
        self._fork("carol/proj")
        self.paths["carol/proj"] = root / "gone" / "carol"  # unreachable: the clone URL points nowhere
        self.clone = root / "clone"
        subprocess.run(["git", "clone", "-q", str(up), str(self.clone)], check=True)

    def _init(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        self.paths[name] = path
        return path

    def _fork(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", str(self.paths["owner/proj"]), str(path)], check=True)
        git(path, "checkout", "-q", "-B", "main", self.fork_point)
        self.paths[name] = path
        return path


class ForgeDouble:
    """The research-facing part of bot.forge.Forge, answered from the World's real repositories."""

    def __init__(self, world: World, forks: list[str] | None = None):
        self.world = world
        self.forks = forks if forks is not None else ["alice/proj", "bob/proj", "carol/proj"]
        self.calls: Counter[str] = Counter()
        self.pulls = [
            PullSummary(
                12,
                "ggml-cpu: online soft_max normalizer",
                "Speeds up soft_max on CPU.",
                "https://forge.test/owner/proj/pull/12",
                "softmax",
                "dave/proj",
                ["ggml/src/ggml-cpu/ops.cpp"],
            ),
            PullSummary(
                13,
                "docs: fix links",
                "",
                "https://forge.test/owner/proj/pull/13",
                "docs",
                "erin/proj",
                ["docs/readme.md"],
            ),
        ]
        self.issues = [
            IssueSummary(1, "Speed up token generation on CPU", "", "https://forge.test/owner/proj/issues/1"),
            IssueSummary(
                7,
                "RMS_NORM + MUL + ADD fusion on cpu?",
                "cuda fuses rms_norm mul add",
                "https://forge.test/owner/proj/issues/7",
            ),
            IssueSummary(8, "Windows build fails", "link error", "https://forge.test/owner/proj/issues/8"),
        ]

    def _path(self, repo: str) -> Path:
        path = self.world.paths.get(repo)
        if path is None or not path.exists():
            raise RuntimeError(f"404 {repo}")
        return path

    def list_forks(self, repo: str, limit: int = 30) -> list[str]:
        self.calls["list_forks"] += 1
        return self.forks[:limit]

    def default_branch(self, repo: str) -> str:
        self.calls["default_branch"] += 1
        self._path(repo)
        return "main"

    def branch_sha(self, repo: str, branch: str) -> str | None:
        self.calls["branch_sha"] += 1
        return git(self._path(repo), "rev-parse", branch)

    def compare(self, repo: str, base: str, head: str, commit_files: bool = True) -> CompareResult:
        self.calls["compare"] += 1
        owner, branch = head.split(":", 1)
        fork = self._path(f"{owner}/{repo.split('/', 1)[1]}")
        git(fork, "fetch", "-q", str(self._path(repo)), f"+refs/heads/{base}:refs/upstream/{base}")
        shas = git(fork, "rev-list", "--reverse", f"refs/upstream/{base}..{branch}").split()
        behind = len(git(fork, "rev-list", f"{branch}..refs/upstream/{base}").split())
        commits = []
        for sha in shas:
            message = git(fork, "show", "-s", "--format=%B", sha)
            author = git(fork, "show", "-s", "--format=%an", sha)
            files = git(fork, "show", "--format=", "--name-only", sha).split()
            commits.append(CommitInfo(sha, message, author, files if commit_files else None))
        names = sorted(set(git(fork, "diff", "--name-only", f"refs/upstream/{base}...{branch}").split()))
        changes = [FileChange(f, "modified", 1, 1, None) for f in names]
        return CompareResult(len(shas), behind, commits, changes, "diverged")

    def clone_url(self, repo: str, write: bool = False) -> str:
        return str(self.world.paths[repo])

    def list_open_pulls(self, repo: str, limit: int = 30, with_files: bool = False) -> list[PullSummary]:
        self.calls["list_open_pulls"] += 1
        return self.pulls[:limit]

    def list_open_issues(self, repo: str, limit: int = 30) -> list[IssueSummary]:
        self.calls["list_open_issues"] += 1
        return self.issues[:limit]
