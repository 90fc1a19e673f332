"""The jail: how the local executor runs the benchmark driver, which builds and runs untrusted candidate code.

Mechanism: bubblewrap (`bwrap`), i.e. Linux namespaces set up by a small, widely audited tool (Flatpak's),
with a fresh root that holds only what the driver needs:

- read-only: /usr and the /bin /sbin /lib* links (the toolchain, valgrind), a whitelist of /etc (alternatives,
  ld.so cache, localtime, os-release; a generated passwd/group), the bot's Python interpreter and venv (the
  llama.cpp preset needs gguf + numpy), /sys/devices/system/cpu (topology), and `extra_ro` (e.g. /opt/...);
- read-write: the batch's own files dir (spec, bundle copy, git mirror, worktrees, ccache, result.json) and
  nothing else (a warm-only run of the baseline alone also writes the shared compiler cache's store, which
  every other batch sees read-only: bot/experiments/buildcache.py); private /tmp and /dev/shm (tmpfs), a
  fresh /proc (new pid namespace), a minimal /dev;
- new pid, net (loopback only: no network), ipc, uts and cgroup namespaces; no capabilities; the process tree
  dies with the runner (`--die-with-parent`, pid namespace); `--new-session` (no terminal injection);
- an explicit environment built here (`jail_env`), never the bot's.

Two modes, chosen by the bot's own uid:
- "root" (the bot runs as root, e.g. this CI machine): bwrap runs privileged, without a user namespace (so
  a fresh /proc can be mounted even inside a container), keeps only CAP_SETUID/SETGID/SETPCAP/DAC_OVERRIDE
  (to enter the workdir and switch uid), and `setpriv` switches to the throwaway uid `JAIL_UID` (no passwd
  entry on the host, no groups, empty bounding set, no_new_privs) before anything of the candidate runs.
  Never uid 0 inside: a uid-0 process, even without capabilities, owns root's files and /proc/sys.
- "user" (the bot runs as an ordinary user, e.g. uid 10001 in deploy/'s Docker image, or the systemd
  units): bwrap creates an unprivileged user namespace (`--unshare-all --disable-userns`); the jail runs as
  the bot's uid but sees only the binds above. In Docker this needs the worker's `security_opt` from
  deploy/compose.yaml.

`probe()` starts a real jail once per process (cached) and says why isolation is unavailable; the executor
then refuses untrusted candidates unless the operator set `local_trust: all`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

JAIL_UID = 60999  # throwaway uid of root mode (no passwd entry on the host)
SANDBOX_UID_OFFSET = 2001  # the driver's sandboxes: variant i as JAIL_UID + 2001 + i (63000, 63001, ...)
HOSTNAME = "autoresearch-jail"
TOP_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = (
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "os-release",
    "debian_version",
    "nsswitch.conf",
)
OWN_MOUNTS = ("/", "/tmp", "/dev", "/proc", "/sys", "/etc")  # the jail's own: never bound from the host
ROOT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_DAC_OVERRIDE")  # cwd + setpriv; gone after
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; the Makefile does it when "
    "run as root), use `executor: skypilot`, or set `local_trust: all` (UNSAFE: candidate code "
    "then runs as the bot's user, with its files, environment and network)"
)


class JailError(RuntimeError):
    """The jail cannot be set up on this host (the message says why)."""


def mode_for_uid(euid: int | None = None) -> str:
    return "root" if (os.geteuid() if euid is None else euid) == 0 else "user"


def interpreter_paths(python: str) -> list[str]:
    """The directories a Python interpreter needs: its venv (sys.prefix) and its base installation."""
    out: list[str] = []
    exe = Path(python).absolute()
    venv = exe.parent.parent
    if (venv / "pyvenv.cfg").exists():
        out.append(str(venv))
    real = exe.resolve()
    base = real.parent.parent
    if base != Path("/"):
        out.append(str(base))
    return [p for p in dict.fromkeys(out) if not _under(p, "/usr")]


def make_plan(
    python: str = sys.executable,
    extra_ro: list[str] | tuple[str, ...] = (),
    uid: int = JAIL_UID,
    mode: str | None = None,
) -> dict[str, Any]:
    """The JSON-able jail settings of one batch (stored in batch.json; the detached runner reads them).
    JailError (one sentence naming the path) when the interpreter cannot be made visible in the jail: the
    jail then never runs, rather than `python3` falling back to another interpreter there."""
    interp = interpreter_paths(python)
    for p in interp:
        why = unbindable(p)
        if why:
            raise JailError(f"the jail cannot bind the Python interpreter's directory {p} ({why})")
    ro = [str(Path(p).absolute()) for p in [*interp, *extra_ro]]
    return {
        "mode": mode or mode_for_uid(),
        "uid": int(uid),
        "ro": list(dict.fromkeys(ro)),
        "python_bin": str(Path(python).absolute().parent),
        "python": str(Path(python).absolute()),
        "python_ro": [str(Path(p).absolute()) for p in interp],
    }


def sandbox_plan(
    plan: dict[str, Any],
    baseline_rw: list[str] | tuple[str, ...] = (),
    shared_ro: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """The driver's per-invocation sandbox settings (sky/sandbox.py) from a batch's jail plan.

    Variant i runs as uid `plan.uid + SANDBOX_UID_OFFSET + i` (root mode): never the jail's own uid, which the
    coding agent's jail uses, nor uids next to it, since the driver kills whatever runs under a variant's uid
    after each invocation.
    `baseline_rw` is bound read-write for the baseline only (the warm-only run's shared compiler cache
    store), `shared_ro` read-only for every variant (that store, in a batch)."""
    return {
        "mode": plan["mode"],
        "uid_base": int(plan["uid"]) + SANDBOX_UID_OFFSET,
        "ro": list(plan.get("ro") or []),
        "limits": dict(plan.get("limits") or {}),
        "baseline_rw": [str(Path(p).absolute()) for p in baseline_rw],
        "shared_ro": [str(Path(p).absolute()) for p in shared_ro],
    }


def unbindable(path: str) -> str:
    """Why `path` cannot be bound read-only into the jail ('' when it can): it is missing, or it is (or holds)
    one of the jail's own mounts (/, /tmp, /dev, /proc, /sys, /etc), whose host contents it hides."""
    p = Path(path)
    if not p.exists():
        return "it does not exist"
    for own in OWN_MOUNTS:
        if _under(own, str(p)) or (own not in ("/", "/tmp") and _under(str(p), own)):
            return f"it is or holds the jail's own {own}"
    return ""


def jail_env(plan: dict[str, Any], task_envs: dict[str, str] | None = None) -> dict[str, str]:
    """The complete environment inside the jail: nothing from the bot's environment."""
    path = [plan["python_bin"], "/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"]
    env = {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "USER": "autoresearch",
        "LOGNAME": "autoresearch",
        "TERM": "dumb",
    }
    env.update({str(k): str(v) for k, v in (task_envs or {}).items()})
    return env


def prepare(plan: dict[str, Any], workdir: Path, etc_dir: Path) -> None:
    """Make `workdir` writable by the jail's uid (root mode); write the jail's passwd/group into etc_dir."""
    write_etc(plan, etc_dir)
    if plan["mode"] == "root":
        os.chown(workdir, int(plan["uid"]), int(plan["uid"]))
        workdir.chmod(0o700)


def write_etc(plan: dict[str, Any], etc_dir: Path) -> None:
    """The jail's /etc/passwd and /etc/group: root, the jail's user, nobody."""
    etc_dir.mkdir(parents=True, exist_ok=True)
    uid = int(plan["uid"]) if plan["mode"] == "root" else os.getuid()
    gid = uid if plan["mode"] == "root" else os.getgid()
    (etc_dir / "passwd").write_text(
        f"root:x:0:0:root:/root:/bin/sh\n"
        f"autoresearch:x:{uid}:{gid}:autoresearch jail:/tmp:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    (etc_dir / "group").write_text(f"root:x:0:\nautoresearch:x:{gid}:\nnogroup:x:65534:\n")
    for f in (etc_dir, etc_dir / "passwd", etc_dir / "group"):
        f.chmod(0o755 if f.is_dir() else 0o644)


def lend_tree(plan: dict[str, Any], tree: Path) -> tuple[int, int] | None:
    """Root mode: hand a whole existing tree (the coding agent's worktree) to the jail's uid for one command;
    returns the owner to give it back to (`return_tree`). None in user mode (the tree is already ours)."""
    if plan["mode"] != "root":
        return None
    st = tree.stat()
    _chown_tree(tree, int(plan["uid"]), int(plan["uid"]))
    return st.st_uid, st.st_gid


def return_tree(tree: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        _chown_tree(tree, *owner)


def _chown_tree(tree: Path, uid: int, gid: int) -> None:
    os.chown(tree, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def command(
    plan: dict[str, Any],
    workdir: Path,
    etc_dir: Path,
    argv: list[str],
    rw: list[str] | tuple[str, ...] = (),
    ro: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """The bwrap command line that runs argv inside the jail with cwd = workdir (read-write), plus the
    extra directories `rw` (read-write) and `ro` (read-only): the shared compiler cache's store."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise JailError("bubblewrap (bwrap) is not installed")
    workdir = Path(workdir).absolute()
    args = [bwrap, "--die-with-parent", "--new-session", "--hostname", HOSTNAME]
    if plan["mode"] == "root":
        args += [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
        ]
        for cap in ROOT_CAPS:
            args += ["--cap-add", cap]
    elif os.geteuid() == 0:
        raise JailError("user mode needs a non-root bot: as root it would keep uid 0 in the jail")
    else:
        args += ["--unshare-all", "--unshare-user", "--disable-userns"]
    made: set[str] = {"/"}

    def parents(dest: str) -> None:
        for anc in reversed(Path(dest).parents):
            if str(anc) not in made:
                made.add(str(anc))
                args.extend(["--perms", "0755", "--dir", str(anc)])

    def bind(kind: str, src: str, dest: str | None = None) -> None:
        dest = dest or src
        parents(dest)
        args.extend([kind, src, dest])

    bind("--ro-bind", "/usr")
    for name in TOP_LINKS:
        p = Path("/") / name
        if p.is_symlink():
            args.extend(["--symlink", os.readlink(p), str(p)])
        elif p.is_dir():
            bind("--ro-bind", str(p))
    for name in ETC_FILES:
        bind("--ro-bind-try", f"/etc/{name}")
    for name in ("passwd", "group"):
        bind("--ro-bind", str(etc_dir / name), f"/etc/{name}")
    # the private /tmp (and /dev, /proc) first, every bind after it: a checkout, venv or workdir that lives
    # under /tmp is bound on top of the tmpfs, never hidden by it (bwrap applies its operations in order)
    args += [
        "--proc",
        "/proc",
        "--ro-bind",
        "/proc/sys",
        "/proc/sys",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--tmpfs",
        "/dev/shm",
    ]
    made.update(("/proc", "/proc/sys", "/dev", "/dev/shm", "/tmp"))
    for p in plan.get("ro", []):
        if _under(p, "/usr"):
            continue
        if Path(p).exists():
            bind("--ro-bind", p)
        elif p in (plan.get("python_ro") or ()):
            raise JailError(
                f"the jail cannot bind the Python interpreter's directory {p} (it does not exist)"
            )
    bind("--ro-bind-try", "/sys/devices/system/cpu")
    bind("--bind", str(workdir))
    for p in rw:
        bind("--bind", str(Path(p).absolute()))
    for p in ro:
        bind("--ro-bind", str(Path(p).absolute()))
    args += ["--chdir", str(workdir), "--"]
    if plan["mode"] == "root":
        setpriv = shutil.which("setpriv")
        if not setpriv:
            raise JailError("setpriv (util-linux) is not installed")
        uid = int(plan["uid"])
        args += [
            setpriv,
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    return args + list(argv)


@functools.lru_cache(maxsize=8)
def _probe(mode: str, python: str, uid: int) -> tuple[bool, str]:
    try:
        plan = make_plan(python, uid=uid, mode=mode)
        with tempfile.TemporaryDirectory(prefix="autoresearch-jail-probe-") as tmp:
            work, etc = Path(tmp) / "w", Path(tmp) / "etc"
            work.mkdir()
            Path(tmp).chmod(0o755)
            prepare(plan, work, etc)
            # `python3` as the driver finds it (PATH), which must be the bot's own interpreter and venv
            check = (
                "import os, socket, sys; assert os.getuid() != 0; "
                f"assert sys.prefix == {sys_prefix(python)!r}, 'python3 in the jail is ' + sys.prefix; "
                "open('ok', 'w').write('1'); "
                "s = socket.socket(); s.settimeout(2)\ntry: s.connect(('1.1.1.1', 53)); sys.exit(3)\n"
                "except OSError: pass"
            )
            argv = command(plan, work, etc, ["python3", "-c", check])
            p = subprocess.run(
                argv,
                cwd=str(work),
                env=jail_env(plan),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=60,
            )
            if p.returncode != 0 or not (work / "ok").exists():
                out = p.stdout.decode(errors="replace").strip()[-600:]
                return False, f"a test jail failed (exit {p.returncode}): {out or 'no output'}"
    except JailError as exc:
        return False, str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"a test jail could not start: {exc}"
    return True, f"bubblewrap, {mode} mode"


def probe(python: str = sys.executable, uid: int = JAIL_UID, mode: str | None = None) -> tuple[bool, str]:
    """(True, how) when a real jail starts here (no uid 0, no network, writable workdir), else (False, why)"""
    return _probe(mode or mode_for_uid(), str(Path(python).absolute()), int(uid))


@functools.lru_cache(maxsize=8)
def sys_prefix(python: str) -> str:
    """sys.prefix of an interpreter (its venv, else its installation), as it reports it."""
    if Path(python).absolute() == Path(sys.executable).absolute():
        return sys.prefix
    argv = [python, "-c", "import sys; print(sys.prefix)"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return out.stdout.strip()


def _under(path: str, root: str) -> bool:
    return Path(path) == Path(root) or Path(root) in Path(path).parents
