"""One sandbox per candidate-code invocation (stdlib only; the bot and the VM driver load this same file).

The driver (sky/driver.py) is trusted bot code. Everything that runs code from a variant's tree (each
variant's build, each validation, each benchmark invocation, each simulation run) is started by the driver
through `Sandbox.run`, which wraps it in bubblewrap so that it

- sees only that variant's own cell (its tree, read-write, or read-only for the sealed baseline; its scratch
  directory for outputs; the mounts a preset adds for it, e.g. its own CMake build tree at the one canonical
  path) plus the toolchain and shared inputs read-only; never another variant's tree or binaries, the driver,
  the spec, the mirror or the result file;
- runs in root mode under a distinct throwaway uid per variant (so RLIMIT_NPROC and "kill everything of that
  uid" are per variant), with no capabilities, no_new_privs, no network (own net namespace), its own pid,
  ipc and uts namespaces, a size-capped private /tmp, and a seccomp filter that refuses new user namespaces
  (`unshare -Ur` fails: no uid 0, no network, no mounts regained);
- never outlives its invocation: bwrap is pid 1 of a new pid namespace (`--unshare-pid`, `--die-with-parent`),
  so when the command exits or is killed every process it left is killed by the kernel; afterwards whatever
  still runs under the variant's uid is killed too;
- stays within limits: address space, processes, file size, CPU time (rlimits via `prlimit`), and a watchdog
  here for resident memory, process count, disk written into its writable dirs, output size and wall time.
  A breach kills the invocation and `Outcome.reason` says which limit ("exceeded memory limit (...)").

bwrap's arguments go through a pipe (`--args FD`), so /proc/1/cmdline inside shows no host paths.

Seal: `seal(roots)` makes a tree root-owned and read-only and returns its content digest; `signature(roots)`
is the cheap (path, size, mtime, ctime, mode, uid, inode) check the driver runs before every invocation of
the baseline; a difference is tampering.

`read_regular(path, limit)` is how trusted code reads a file a sandbox could have written: O_NOFOLLOW |
O_NONBLOCK, fstat must say regular file, at most `limit` bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import shutil
import signal
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

HOSTNAME = "autoresearch-sandbox"
UID_BASE = 63000  # root mode: variant i runs as UID_BASE + i (no passwd entry on the host; the VM default)
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
ROOT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_DAC_OVERRIDE")  # cwd + setpriv; gone after
POLL_S = 0.2
# what a failed allocation under RLIMIT_AS prints (glibc, C++, Python, Rust, Go, the shell)
ENOMEM_MARKERS = (
    b"Cannot allocate memory",
    b"std::bad_alloc",
    b"MemoryError",
    b"out of memory",
    b"Out of memory",
)


def lim_as_mb(limits: Limits) -> int:
    return limits.memory_mb * 4


class SandboxError(RuntimeError):
    """A sandbox cannot be set up here (the message says why); nothing was run."""


@dataclasses.dataclass
class Limits:
    """Per-invocation limits (project `limits`, or the executor's plan, override the defaults)."""

    memory_mb: int = 4096  # resident memory of the whole invocation (watchdog); address space: 4x (rlimit)
    processes: int = 512  # tasks (processes + threads) of the variant's uid
    file_mb: int = 4096  # largest file it may write (RLIMIT_FSIZE)
    tmp_mb: int = 1024  # its private /tmp (tmpfs size)
    disk_mb: int = 8192  # bytes it may add to its writable dirs
    cpu_s: int = 7200  # CPU seconds per process (RLIMIT_CPU)
    output_mb: int = 16  # stdout + stderr it may print

    @classmethod
    def from_dict(cls, raw: Any) -> Limits:
        out = cls()
        for f in dataclasses.fields(cls):
            value = (raw or {}).get(f.name) if isinstance(raw, dict) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                setattr(out, f.name, int(value))
        return out


@dataclasses.dataclass
class Cell:
    """One variant's view: what its invocations may see and write."""

    name: str
    uid: int
    tree: Path
    scratch: Path
    tree_writable: bool = True
    mounts: list = dataclasses.field(default_factory=list)  # [(src, dest, writable)]

    def writable_dirs(self) -> list[Path]:
        out = [self.scratch] + ([self.tree] if self.tree_writable else [])
        return out + [Path(src) for src, _dest, rw in self.mounts if rw]

    def owns(self, path: Path) -> bool:
        p = Path(path)
        roots = [self.tree, self.scratch] + [Path(dest) for _s, dest, _rw in self.mounts]
        return any(p == r or r in p.parents for r in roots)


@dataclasses.dataclass
class Outcome:
    rc: int
    output: bytes
    reason: str | None = None  # a limit breach, set when the sandbox killed it
    seconds: float = 0.0


def mode_for_uid(euid: int | None = None) -> str:
    return "root" if (os.geteuid() if euid is None else euid) == 0 else "user"


# ---------------------------------------------------------------- seccomp: no new user namespaces

CLONE_NEWUSER = 0x10000000
AUDIT = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# (clone, unshare, setns, clone3)
SYSCALLS = {"x86_64": (56, 272, 308, 435), "aarch64": (220, 97, 268, 435)}
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38


def seccomp_program(machine: str | None = None) -> bytes:
    """Classic BPF for seccomp: clone/unshare with CLONE_NEWUSER and setns -> EPERM, clone3 -> ENOSYS (libc
    falls back to clone, whose flags can be inspected), another ABI (x32, i386) -> EPERM."""
    m = (machine or platform.machine()).lower()
    if m in ("amd64",):
        m = "x86_64"
    if m in ("arm64",):
        m = "aarch64"
    if m not in AUDIT:
        raise SandboxError(f"no seccomp filter for {m}: user namespaces inside the sandbox cannot be refused")
    clone, unshare, setns, clone3 = SYSCALLS[m]
    ins: list[tuple[int, int, int, int]] = []

    def op(code: int, k: int, jt: int = 0, jf: int = 0) -> None:
        ins.append((code, jt, jf, k))

    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    op(ld, 4)  # arch
    op(jeq, AUDIT[m], 1, 0)
    op(ret, RET_ERRNO | EPERM)
    op(ld, 0)  # nr
    op(jge, 0x40000000, 0, 1)  # x32 syscall numbers
    op(ret, RET_ERRNO | EPERM)
    op(jeq, clone3, 0, 1)
    op(ret, RET_ERRNO | ENOSYS)
    op(jeq, setns, 0, 1)
    op(ret, RET_ERRNO | EPERM)
    op(jeq, clone, 1, 0)
    op(jeq, unshare, 0, 3)
    op(ld, 16)  # args[0], low 32 bits (little endian)
    op(jset, CLONE_NEWUSER, 0, 1)
    op(ret, RET_ERRNO | EPERM)
    op(ret, RET_ALLOW)
    return b"".join(struct.pack("=HBBI", *i) for i in ins)


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    """plan: {"mode": "root"|"user", "uid_base": int, "ro": [paths], "limits": {...}} (all optional)."""

    def __init__(self, plan: dict | None = None):
        plan = dict(plan or {})
        self.mode = str(plan.get("mode") or mode_for_uid())
        self.uid_base = int(plan.get("uid_base") or UID_BASE)
        self.ro = [str(Path(p)) for p in plan.get("ro") or []]
        self.limits = Limits.from_dict(plan.get("limits"))
        self.bwrap = shutil.which("bwrap")
        self.setpriv = shutil.which("setpriv")
        self.prlimit = shutil.which("prlimit")
        self.etc: Path | None = None
        missing = [n for n, p in (("bwrap", self.bwrap), ("prlimit", self.prlimit)) if not p]
        if self.mode == "root" and not self.setpriv:
            missing.append("setpriv")
        if missing:
            raise SandboxError(
                f"{', '.join(missing)} not installed (apt-get install bubblewrap util-linux): candidate code "
                "cannot be contained here"
            )
        if self.mode == "user" and os.geteuid() == 0:
            raise SandboxError("user mode needs a non-root driver: as root it keeps uid 0 in the sandbox")
        self.seccomp = seccomp_program()
        # bwrap < 0.8 (Ubuntu 22.04's 0.6) has no --size nor --disable-userns: /tmp is then a directory of the
        # cell's scratch (on disk, inside the disk watch) and the seccomp filter alone refuses user namespaces
        self.features = bwrap_features(self.bwrap)

    def uid_for(self, index: int) -> int:
        return self.uid_base + int(index) if self.mode == "root" else os.getuid()

    def give(self, cell: Cell, path: Path) -> None:
        """Root mode: hand a directory tree the driver made to the cell's uid (it writes there)."""
        if self.mode == "root":
            chown_tree(Path(path), cell.uid, cell.uid)

    def write_etc(self, where: Path) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        for name, text in (
            ("passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
            ("group", "root:x:0:\nnogroup:x:65534:\n"),
        ):
            (where / name).write_text(text)
            (where / name).chmod(0o644)
        where.chmod(0o755)
        self.etc = where
        return where

    def args(self, cell: Cell, argv: list, cwd: Path, shared_ro: list = ()) -> list[str]:
        """bwrap's arguments (not its path) for argv run in `cell` with working directory cwd."""
        a = ["--die-with-parent", "--new-session", "--hostname", HOSTNAME]
        a += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        if self.mode == "root":
            a += ["--cap-drop", "ALL"]
            for cap in ROOT_CAPS:
                a += ["--cap-add", cap]
        else:
            a += ["--unshare-user"] + (["--disable-userns"] if "--disable-userns" in self.features else [])
        made: set[str] = {"/"}

        def parents(dest: str) -> None:
            for anc in reversed(Path(dest).parents):
                if str(anc) not in made:
                    made.add(str(anc))
                    a.extend(["--perms", "0755", "--dir", str(anc)])

        def bind(kind: str, src: str, dest: str | None = None) -> None:
            dest = dest or src
            parents(dest)
            made.add(str(dest))
            a.extend([kind, str(src), str(dest)])

        # the kernel filesystems and the private /tmp first: binds below may lie under /tmp (a checkout there)
        a += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
        if "--size" in self.features:
            a += ["--perms", "1777", "--size", str(self.limits.tmp_mb << 20), "--tmpfs", "/tmp"]
            a += ["--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/dev/shm"]
        else:
            tmp = cell.scratch / ".tmp"
            tmp.mkdir(exist_ok=True)
            if self.mode == "root":
                os.chown(tmp, cell.uid, cell.uid)
            a += ["--bind", str(tmp), "/tmp", "--dir", "/dev/shm"]
        made.update(("/proc", "/proc/sys", "/dev", "/dev/shm", "/tmp"))
        bind("--ro-bind", "/usr")
        for name in TOP_LINKS:
            p = Path("/") / name
            if p.is_symlink():
                a.extend(["--symlink", os.readlink(p), str(p)])
            elif p.is_dir():
                bind("--ro-bind", str(p))
        for name in ETC_FILES:
            bind("--ro-bind-try", f"/etc/{name}")
        if self.etc is not None:
            for name in ("passwd", "group"):
                bind("--ro-bind", str(self.etc / name), f"/etc/{name}")
        for p in [*self.ro, *shared_ro]:
            if Path(p).exists() and not _under(str(p), "/usr"):
                bind("--ro-bind", str(p))
        bind("--ro-bind-try", "/sys/devices/system/cpu")
        bind("--bind" if cell.tree_writable else "--ro-bind", str(cell.tree))
        bind("--bind", str(cell.scratch))
        for src, dest, rw in cell.mounts:
            bind("--bind" if rw else "--ro-bind", str(src), str(dest))
        a += ["--chdir", str(cwd)]
        return a

    def command(
        self, cell: Cell, argv: list, cwd: Path, shared_ro: list = (), fds: tuple = (3, 4)
    ) -> tuple[list[str], bytes]:
        """(host argv, bwrap args blob): prlimit + `bwrap --args FD --seccomp FD -- ...` (fds: the pipes)."""
        lim = self.limits
        inner = []
        if self.mode == "root":
            inner = [
                self.setpriv,
                f"--reuid={cell.uid}",
                f"--regid={cell.uid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--no-new-privs",
                "--",
            ]
        nproc = lim.processes if self.mode == "root" else lim.processes + count_tasks(os.getuid())
        host = [
            self.prlimit,
            f"--as={lim_as_mb(lim) << 20}",
            f"--nproc={nproc}",
            f"--fsize={lim.file_mb << 20}",
            f"--cpu={lim.cpu_s}",
            "--core=0",
            "--",
            self.bwrap,
            "--args",
            str(fds[0]),
            "--seccomp",
            str(fds[1]),
            "--",
            *inner,
            *[str(x) for x in argv],
        ]
        blob = "\0".join(self.args(cell, argv, cwd, shared_ro)).encode() + b"\0"
        return host, blob

    def run(
        self,
        cell: Cell,
        argv: list,
        cwd: Path,
        env: dict,
        timeout: float,
        shared_ro: list = (),
        merge_stderr: bool = True,
    ) -> Outcome:
        """Run argv in the cell; wait, watching the limits; kill everything it started; return the outcome."""
        if not cell.owns(cwd):
            raise SandboxError(f"{cwd} is not inside the cell of {cell.name}")
        fds = []
        try:
            args_r, args_w = os.pipe()
            sec_r, sec_w = os.pipe()
            fds = [args_r, args_w, sec_r, sec_w]
            host, blob = self.command(cell, argv, cwd, shared_ro, (args_r, sec_r))
            if len(blob) > 60000 or len(self.seccomp) > 60000:
                raise SandboxError("sandbox arguments too long for a pipe")
            os.write(args_w, blob)
            os.write(sec_w, self.seccomp)
            os.close(args_w)
            os.close(sec_w)
            fds = [args_r, sec_r]
            start_disk = free_bytes(cell.writable_dirs())
            t0, wall0 = time.monotonic(), time.time_ns()

            p = subprocess.Popen(
                host,
                cwd="/",
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.DEVNULL,
                pass_fds=(args_r, sec_r),
            )
        finally:
            for fd in fds:
                os.close(fd)
        reader = _Reader(p.stdout, self.limits.output_mb << 20)
        reader.start()
        reason = None
        last_disk = 0.0
        try:
            while p.poll() is None:
                time.sleep(POLL_S)
                now = time.monotonic()
                if reader.overflow:
                    reason = f"exceeded output limit ({self.limits.output_mb} MiB)"
                elif now - t0 > timeout:
                    reason = f"timeout after {timeout:g}s"
                else:
                    procs = descendants(p.pid)
                    rss = sum(rss_bytes(q) for q in procs)
                    tasks = count_tasks(cell.uid) if self.mode == "root" else sum(map(threads, procs))
                    if rss > self.limits.memory_mb << 20:
                        reason = f"exceeded memory limit ({self.limits.memory_mb} MiB resident)"
                    elif tasks >= self.limits.processes - 2:
                        reason = f"exceeded process limit ({self.limits.processes} processes/threads)"
                    elif now - last_disk > 1.0:
                        last_disk = now
                        reason = self._disk_breach(cell, start_disk, wall0)
                if reason:
                    break
        finally:
            if p.poll() is None:
                kill_tree(p.pid)
            p.wait()
            if self.mode == "root":
                kill_uid(cell.uid)
            reader.join(10)
        rc = p.returncode
        if 128 < rc < 128 + 65:  # bwrap (pid 1 of the sandbox) exits 128+N when its child died of signal N
            rc = -(rc - 128)
        if reason is None:
            reason = self._disk_breach(cell, start_disk, wall0)
        if reason is None and rc == -signal.SIGXCPU:
            reason = f"exceeded CPU time limit ({self.limits.cpu_s}s per process)"
        if reason is None and rc == -signal.SIGXFSZ:
            reason = f"exceeded file size limit ({self.limits.file_mb} MiB)"
        if reason is None and rc != 0 and any(m in reader.tail() for m in ENOMEM_MARKERS):
            cap = lim_as_mb(self.limits)
            reason = f"exceeded memory limit (allocation refused at {cap} MiB address space)"
        if reason is None and reader.overflow:
            reason = f"exceeded output limit ({self.limits.output_mb} MiB)"
        if reason and rc == 0:
            rc = 124 if reason.startswith("timeout") else 137
        return Outcome(rc, reader.data(), reason, round(time.monotonic() - t0, 3))

    def _disk_breach(self, cell: Cell, start: dict, since_ns: int) -> str | None:
        """O(1) while nothing is written: the free space of the cell's filesystems; only when it fell by more
        than the limit are the cell's files written since the invocation started counted (other writers on a
        shared host then cost a walk, never a verdict)."""
        limit = self.limits.disk_mb << 20
        now = free_bytes(cell.writable_dirs())
        if all(start.get(dev, 0) - free <= limit for dev, free in now.items()):
            return None
        for d in cell.writable_dirs():
            if du(d, since_ns) > limit:
                return f"exceeded disk limit ({self.limits.disk_mb} MiB written into {d.name})"
        return None


_FEATURES: dict = {}


def bwrap_features(bwrap: str | None) -> set:
    """The options this bwrap knows (from its --help), cached per binary."""
    if not bwrap:
        return set()
    if bwrap not in _FEATURES:
        try:
            text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        _FEATURES[bwrap] = {w for w in text.split() if w.startswith("--")}
    return _FEATURES[bwrap]


class _Reader(threading.Thread):
    """Reads a pipe to EOF, keeping at most `cap` bytes (the rest is drained and counted as overflow)."""

    def __init__(self, pipe: Any, cap: int):
        super().__init__(daemon=True)
        self.pipe, self.cap, self.chunks, self.size, self.overflow = pipe, cap, [], 0, False

    def run(self) -> None:
        while True:
            try:
                chunk = self.pipe.read1(1 << 16)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            if self.size + len(chunk) > self.cap:
                self.overflow = True
                chunk = chunk[: max(0, self.cap - self.size)]
            self.size += len(chunk)
            if chunk:
                self.chunks.append(chunk)
        self.pipe.close()

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def tail(self, n: int = 4096) -> bytes:
        return b"".join(self.chunks[-4:])[-n:]


# ---------------------------------------------------------------- processes


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f:
                children.setdefault(int(f[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo.extend(children.get(q, []))
    return out


def threads(pid: int) -> int:
    f = _stat_fields(pid)
    return int(f[17]) if f else 0


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def uid_pids(uid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def count_tasks(uid: int) -> int:
    return sum(threads(p) for p in uid_pids(uid))


def kill_tree(pid: int) -> None:
    for q in reversed(descendants(pid)):
        try:
            os.kill(q, signal.SIGKILL)
        except OSError:
            pass


def kill_uid(uid: int) -> int:
    """SIGKILL every process of a throwaway uid (root mode), until none is left; returns the count."""
    if uid == 0 or uid == os.getuid():
        return 0
    killed = 0
    for _ in range(50):
        pids = uid_pids(uid)
        if not pids:
            break
        for q in pids:
            try:
                os.kill(q, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.02)
    return killed


# ---------------------------------------------------------------- files


def du(path: Path, since_ns: int = 0) -> int:
    """Bytes allocated under path (no symlinks followed), counting files modified at or after since_ns."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_mtime_ns >= since_ns:
                total += st.st_blocks * 512
    return total


def free_bytes(dirs: list) -> dict:
    """{filesystem id: bytes free} of the filesystems holding dirs."""
    out = {}
    for d in dirs:
        try:
            st = os.statvfs(d)
            out[f"{os.stat(d).st_dev}"] = st.f_bavail * st.f_frsize
        except OSError:
            continue
    return out


def chown_tree(tree: Path, uid: int, gid: int) -> None:
    os.chown(tree, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


def seal(roots: list) -> str:
    """Make each root owned by us and read-only (no write bits), then return the digest of its content."""
    me = os.getuid()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [".", *dirnames, *filenames]:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    if st.st_uid != me:
                        os.lchown(p, me, me)
                    continue
                if st.st_uid != me:
                    os.chown(p, me, me, follow_symlinks=False)
                os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o222)
    return digest(roots)


def digest(roots: list) -> str:
    h = hashlib.sha256()
    for root in roots:
        for rel, st in _walk(Path(root)):
            p = Path(root) / rel
            h.update(f"{root}\0{rel}\0{stat.S_IFMT(st.st_mode)}\0{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb", buffering=0) as f:
                    for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                        h.update(chunk)
            elif stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
    return h.hexdigest()


def signature(roots: list) -> str:
    """Cheap identity of sealed trees: every entry's (path, type, mode, uid, size, mtime, ctime, inode)."""
    h = hashlib.sha256()
    for root in roots:
        for rel, st in _walk(Path(root)):
            h.update(
                f"{root}\0{rel}\0{st.st_mode}\0{st.st_uid}\0{st.st_size}\0{st.st_mtime_ns}\0"
                f"{st.st_ctime_ns}\0{st.st_ino}\n".encode()
            )
    return h.hexdigest()


def _walk(root: Path) -> list:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]) + ([] if dirpath != str(root) else ["."]):
            p = os.path.join(dirpath, name)
            try:
                out.append((os.path.relpath(p, root), os.lstat(p)))
            except OSError:
                continue
    return out


class UnsafeFile(OSError):
    """A file trusted code wanted to read is not a regular file of acceptable size."""


def read_regular(path: Path | str, limit: int) -> bytes:
    """The content of a regular file, never following a final symlink, never blocking on a FIFO or device,
    at most `limit` bytes (UnsafeFile otherwise)."""
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno in (40,):  # ELOOP: a symlink
            raise UnsafeFile(f"{path} is a symlink") from e
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path} is not a regular file")
        if st.st_size > limit:
            raise UnsafeFile(f"{path} is {st.st_size} bytes (limit {limit})")
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UnsafeFile(f"{path} grew past {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _under(path: str, root: str) -> bool:
    return Path(path) == Path(root) or Path(root) in Path(path).parents
