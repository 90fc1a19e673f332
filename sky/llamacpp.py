"""llama.cpp preset for the bench driver (stdlib only; runs on the VM next to driver.py).

Hooks (driver.py loads this module when project["preset_hooks"] == "llamacpp", i.e. preset: llama.cpp):
    prepare(ctx)                                  model (generated or downloaded) + text corpus, once
    build(worktree, ctx) -> (ok, log)             CMake Release build of the tools we need, incremental
    validate(worktree, baseline_worktree, ctx)    greedy tokens == baseline, KL divergence < kl_max, ctest
    bench(worktree, ctx) -> {"pp": [...], "tg": [...]}   tokens/s from llama-bench's raw samples_ns

Options (project["preset_options"]): model (path/URL/null), n_prompt, n_gen, kl_max, ctest, and optionally
quant (type llama-quantize makes from the generated f16 model; default q4_0, "" or "f16" = none),
bench_reps (llama-bench -r, default 3). The spec's seed (ctx.seed) seeds model, corpus and sampling.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox  # noqa: E402  (sky/sandbox.py: reading what a sandboxed invocation wrote)

DEFAULTS: dict[str, Any] = {
    "model": None,
    "n_prompt": 64,
    "n_gen": 32,
    "kl_max": 0.01,
    "ctest": False,
    "quant": "q4_0",
    "bench_reps": 3,
}
PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time"
GEN_TOKENS = 32
PPL_CTX = 128
PPL_CHUNKS = 6
CORPUS_BYTES = 6000
# generated model: big enough that one llama-bench sample takes ~0.1 s and kernels dominate, small enough to
# generate in seconds (27.5 M parameters, 15 MB as q4_0)
MODEL_ARGS = ["--n-embd", "512", "--n-layer", "8", "--n-head", "8", "--n-ff", "1536", "--ctx", "512"]
# llama.cpp's logger writes stdout from a worker thread and is leaked at exit, so the last lines are sometimes
# lost (common/log.cpp: "may cause logs to be lost"). Runs whose output lacks its final marker are repeated.
ATTEMPTS = 5
BUILD_DIR = "build"
SIM_BUILD_DIR = "build-sim"  # the simulated tier's build: portable ISA (valgrind runs no AVX-512 / SVE)
SIM_PROMPT, SIM_GEN = 8, 8  # simulated: llama-bench -p 8 -n 8 -r 1 -t 1 (prompt eval + 8 greedy decode steps)
STAMP = ".autoresearch-configure.json"
SYNC_MANIFEST = ".autoresearch-sync.json"  # what a shared build tree holds: {path: [size, sha1, x]}
KLD_RE = re.compile(
    r"Mean\s+KLD:\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))\s*(?:±|\+/-)\s*"
    r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))",
    re.IGNORECASE,
)
MAX_KLD_RE = re.compile(r"Maximum KLD:\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))", re.IGNORECASE)
SAME_TOP_RE = re.compile(r"Same top p:\s*([-+]?\d+\.?\d*|nan)", re.IGNORECASE)
PPL_RE = re.compile(r"Mean PPL\(Q\)\s*:\s*([-+]?\d+\.?\d*|nan|inf)", re.IGNORECASE)
# a per-chunk row of --kl-divergence: chunk, PPL ± u, ln(PPL ratio) ± u, KL divergence (running mean) ± u, ...
KLD_CHUNK_RE = re.compile(r"^\s*(\d+)\s+\S+\s+±\s+\S+\s+\S+\s+±\s+\S+\s+(\S+)\s+±\s+(\S+)\s", re.MULTILINE)
WORDS = (
    "the model reads a token and writes the next one while every layer mixes attention with a small "
    "feed forward network so that cache lines stay warm and quantized weights decode fast on vector "
    "units when threads share the work of each matrix row"
).split()


class PresetError(Exception):
    """A preset step failed in a way the user must see (bad option, missing tool, unparsable output)."""


# ---------------------------------------------------------------- options and paths


def options(project: dict) -> dict:
    """project["preset_options"] merged over DEFAULTS, with types checked."""
    raw = dict(project.get("preset_options") or {})
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in raw.items() if v is not None or k == "model"})
    for key, low in (("n_prompt", 0), ("n_gen", 0), ("bench_reps", 1)):
        value = opts[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise PresetError(f"preset_options.{key} must be an integer >= {low}, got {value!r}")
    if opts["n_prompt"] == 0 and opts["n_gen"] == 0:
        raise PresetError("preset_options.n_prompt and preset_options.n_gen cannot both be 0")
    if (
        not isinstance(opts["kl_max"], (int, float))
        or isinstance(opts["kl_max"], bool)
        or opts["kl_max"] <= 0
    ):
        raise PresetError(f"preset_options.kl_max must be a positive number, got {opts['kl_max']!r}")
    opts["quant"] = str(opts.get("quant") or "").lower()
    return opts


def seed_of(ctx: Any) -> int:
    """The spec's seed (driver Ctx.seed): model weights, corpus and sampling seed."""
    return int(getattr(ctx, "seed", 1) or 1)


def state_dir(ctx: Any) -> Path:
    d = Path(ctx.workdir) / "llamacpp"
    d.mkdir(parents=True, exist_ok=True)
    return d


def sandboxed(ctx: Any) -> bool:
    """The driver runs each invocation in the variant's own sandbox (sky/sandbox.py)."""
    return getattr(ctx, "sandbox", None) is not None


def share(ctx: Any, path: Path) -> Path:
    """An input every variant's sandbox sees read-only (model, corpus, the baseline's references)."""
    ro = getattr(ctx, "shared_ro", None)
    if ro is not None and str(path) not in ro:
        ro.append(str(path))
    return path


def out_path(ctx: Any, worktree: Path, name: str) -> Path:
    """Where an invocation of this variant writes an output file: its own scratch dir when sandboxed."""
    if sandboxed(ctx):
        return Path(ctx.scratch(worktree)) / name
    return state_dir(ctx) / name


def read_out(path: Path, limit: int = 256 << 20) -> bytes:
    """An output file a variant wrote: a regular file (no symlink, FIFO, device), size-capped."""
    return sandbox.read_regular(path, limit)


def take_out(src: Path, dest: Path) -> None:
    """Move an output of the BASELINE's invocation into the driver's shared inputs (a regular file only)."""
    st = os.lstat(src)
    if not stat.S_ISREG(st.st_mode):
        raise PresetError(f"{src} is not a regular file")
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp, follow_symlinks=False)
    tmp.chmod(0o644)
    tmp.replace(dest)
    src.unlink()


def bin_path(worktree: Path, tool: str, build_dir: str = BUILD_DIR) -> Path:
    return Path(worktree) / build_dir / "bin" / tool


def generator_tool(worktree: Path) -> str:
    """The greedy text-generation binary this tree has (llama-completion, older llama-cli, or
    llama-simple)."""
    wt = Path(worktree)
    if (wt / "tools" / "completion" / "CMakeLists.txt").exists():
        return "llama-completion"
    if any((wt / d / "main" / "CMakeLists.txt").exists() for d in ("tools", "examples")):
        return "llama-cli"
    return "llama-simple"


def build_targets(worktree: Path) -> list[str]:
    return ["llama-bench", generator_tool(worktree), "llama-perplexity", "llama-quantize"]


# ---------------------------------------------------------------- build


def emulate_machine(ctx: Any) -> str:
    """The target machine of a cross build for emulated checks (spec.emulate.arch): aarch64 or x86_64."""
    return (
        "aarch64"
        if str((getattr(ctx, "emulate", None) or {}).get("arch")) in ("arm", "aarch64")
        else "x86_64"
    )


def portable_isa_flags(machine: str | None = None) -> list[str]:
    """CMake flags of the simulated build: x86-64-v3 (AVX2, FMA, F16C, no AVX-512) or armv8.2-a+dotprod (no
    SVE)."""
    m = (machine or platform.machine()).lower()
    if m in ("aarch64", "arm64"):
        return ["-DGGML_NATIVE=OFF", "-DGGML_CPU_ARM_ARCH=armv8.2-a+dotprod"]
    return [
        "-DGGML_NATIVE=OFF",
        "-DGGML_AVX=ON",
        "-DGGML_AVX2=ON",
        "-DGGML_FMA=ON",
        "-DGGML_F16C=ON",
        "-DGGML_BMI2=ON",
        "-DGGML_AVX512=OFF",
    ]


def cmake_configure_args(
    worktree: Path,
    ccache: str | None,
    ctest: bool,
    generator: str | None,
    build_dir: str = BUILD_DIR,
    isa_flags: list[str] | None = None,
) -> list[str]:
    """argv of the one-time CMake configure step (native ISA unless isa_flags are given)."""
    args = ["cmake", "-S", str(worktree), "-B", str(Path(worktree) / build_dir)]
    if generator:
        args += ["-G", generator]
    args += [
        "-DCMAKE_BUILD_TYPE=Release",
        *(isa_flags or ["-DGGML_NATIVE=ON"]),
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_BUILD_APP=OFF",
        f"-DLLAMA_BUILD_TESTS={'ON' if ctest else 'OFF'}",
        f"-DLLAMA_BUILD_EXAMPLES={'ON' if generator_tool(worktree) == 'llama-simple' else 'OFF'}",
    ]
    if ccache:  # explicit launcher; ggml's own ccache detection off so the compiler is not wrapped twice
        args += [
            "-DGGML_CCACHE=OFF",
            f"-DCMAKE_C_COMPILER_LAUNCHER={ccache}",
            f"-DCMAKE_CXX_COMPILER_LAUNCHER={ccache}",
        ]
    else:
        args += ["-DGGML_CCACHE=OFF"]
    return args


def cmake_build_args(
    worktree: Path, jobs: int, ctest: bool, build_dir: str = BUILD_DIR, targets: list[str] | None = None
) -> list[str]:
    args = ["cmake", "--build", str(Path(worktree) / build_dir), "-j", str(jobs)]
    if targets or not ctest:  # with tests: build everything (the test binaries too)
        args += ["--target", *(targets or build_targets(worktree))]
    return args


def build_env(ctx: Any) -> tuple[dict, str | None]:
    """(extra env, ccache binary): the driver's ccache masquerade dir is taken off PATH, ccache goes in as the
    CMake compiler launcher instead."""
    cc = dict(getattr(ctx, "ccache_env", {}) or {})
    ccache = cc.get("CCACHE_BIN") or None
    if not ccache:
        return {}, None
    masq = str(Path(ctx.workdir) / "ccache-bin")
    path = os.pathsep.join(
        p
        for p in ctx.env.get("PATH", os.environ.get("PATH", "")).split(os.pathsep)
        if p and os.path.normpath(p) != os.path.normpath(masq)
    )
    return {"PATH": path}, ccache


def build(worktree: Path, ctx: Any) -> tuple[bool, str]:
    """Configure once per ISA (re-configure when our flags change), then build only the needed targets."""
    opts = options(ctx.project)
    return _cmake_build(Path(worktree), ctx, BUILD_DIR, None, bool(opts["ctest"]), None)


def shared_tree(ctx: Any, build_dir: str) -> Path:
    """The one source + CMake tree per ISA in which every variant of this run is built, in turn."""
    return state_dir(ctx) / f"tree-{build_dir}"


def _digest(path: Path) -> str:
    h = hashlib.sha1()  # noqa: S324  (content identity, not security)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sync_tree(src: Path, dst: Path, skip: tuple[str, ...] = (".git", BUILD_DIR, SIM_BUILD_DIR)) -> list[str]:
    """Make dst's files equal to src's (top-level `skip` names aside): only files whose content differs are
    rewritten (a new mtime, so ninja rebuilds them and whatever includes them), files src lacks are deleted.
    A manifest of (size, sha1) per file saves reading dst. Returns the paths written or deleted."""
    dst.mkdir(parents=True, exist_ok=True)
    manifest_path = dst / SYNC_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    seen: dict = {}
    changed = []
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip and f != SYNC_MANIFEST]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            s_path = Path(dirpath) / name
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(s_path)
            if stat.S_ISLNK(st.st_mode):
                key = ["link", os.readlink(s_path)]
            elif not stat.S_ISREG(st.st_mode):
                continue  # a FIFO, socket or device: never opened (it could block, or be anything)
            else:
                key = [st.st_size, _digest(s_path), st.st_mode & 0o111]
            seen[rel] = key
            if manifest.get(rel) == key and os.path.lexists(dst / rel):
                continue
            d_path = dst / rel
            d_path.parent.mkdir(parents=True, exist_ok=True)
            if d_path.is_symlink() or d_path.is_file():
                d_path.unlink()
            elif d_path.is_dir():
                shutil.rmtree(d_path)
            if key[0] == "link":
                d_path.symlink_to(key[1])
            else:
                shutil.copyfile(s_path, d_path)
                shutil.copymode(s_path, d_path)
            changed.append(rel)
    for rel in sorted(set(manifest) - set(seen)):
        gone = dst / rel
        if gone.is_symlink() or gone.is_file():
            gone.unlink()
        changed.append(rel)
    tmp = manifest_path.with_name(SYNC_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(seen))
    tmp.replace(manifest_path)
    return changed


def _cmake_build(
    worktree: Path,
    ctx: Any,
    build_dir: str,
    isa_flags: list[str] | None,
    ctest: bool,
    targets: list[str] | None,
) -> tuple[bool, str]:
    """Build `targets` of this variant for one ISA. Without ctest, in a CMake tree per ISA at ONE path (its
    sources synced over the previous state), and the binaries are copied into <worktree>/<build_dir>/bin: a
    one-file candidate recompiles that file and relinks, with no configure and no tree of ccache lookups.

    Sandboxed (the driver's default), that tree is the variant's OWN: the baseline's is built first and
    sealed; each candidate's starts as a copy of it (mtimes kept, so only what the candidate changed
    rebuilds), is bound at the one canonical path in the candidate's sandboxes only, and dies with the
    batch: candidate code that runs at configure or build time never touches a tree another variant builds
    in. Unsandboxed, every variant shares one tree. With ctest, the worktree is built in place."""
    targets = targets or build_targets(worktree)
    logs = []
    where, host = worktree, worktree
    if not ctest:
        where = host = shared_tree(ctx, build_dir)
        t = time.monotonic()
        seeded = ""
        if sandboxed(ctx):
            host = ctx.private_dir(worktree, f"tree-{build_dir}")
            cell = ctx.cell_for(owner=worktree)
            base_cell = ctx.cell_for(owner=ctx.baseline_worktree)
            if cell is not base_cell and not (host / SYNC_MANIFEST).exists():
                base_tree = Path(ctx.workdir) / "cells" / _safe(base_cell.name) / f"tree-{build_dir}"
                base_stamp = stamp_path(ctx, base_tree, build_dir, ctx.baseline_worktree)
                if (base_tree / SYNC_MANIFEST).is_file() and base_stamp.is_file():
                    rc = subprocess.call(["cp", "-a", "--reflink=auto", f"{base_tree}/.", str(host)])
                    if rc != 0:
                        return False, f"[llamacpp] copying the baseline's build tree failed (exit {rc})"
                    shutil.copyfile(base_stamp, stamp_path(ctx, host, build_dir, worktree))
                    seeded = " (a copy of the sealed baseline's tree)"
        changed = sync_tree(worktree, host)
        if sandboxed(ctx):
            writable_for(ctx, worktree, host)
            ctx.mount(worktree, host, where, True)
        logs.append(
            f"[llamacpp] {len(changed)} files synced into the build tree {where}{seeded} in "
            f"{time.monotonic() - t:.1f}s"
            + (
                f" ({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})"
                if len(changed) <= 50
                else ""
            )
        )
    ok, text = _cmake_build_in(where, ctx, build_dir, isa_flags, ctest, targets, host=host, owner=worktree)
    logs.append(text)
    if not ok or where == worktree:
        return ok, "\n".join(logs)
    out = worktree / build_dir / "bin"
    if sandboxed(ctx):  # the variant's tree is its own now: the copy runs in its sandbox, as it
        srcs = [str(bin_path(where, tool, build_dir)) for tool in targets]
        script = 'rm -rf "$1" && mkdir -p "$1" && cp -p "${@:2}" "$1"'
        argv = ["bash", "-c", script, "_", str(out), *srcs]
        rc, text = ctx.run(argv, worktree, timeout=600, owner=worktree)
        if rc != 0:
            logs.append(f"[llamacpp] copying the binaries failed (exit {rc}): {text[-800:]}")
            return False, "\n".join(logs)
        return True, "\n".join(logs)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for tool in targets:
        shutil.copy2(bin_path(where, tool, build_dir), out / tool)
    return True, "\n".join(logs)


def stamp_path(ctx: Any, host: Path, build_dir: str, owner: Path | None) -> Path:
    """The configure stamp of a build tree: in the tree unsandboxed; sandboxed, in the driver's own state
    dir (never a file the driver writes inside a tree that variant code has written)."""
    if not sandboxed(ctx):
        return host / build_dir / STAMP
    cell = ctx.cell_for(owner=owner)
    d = state_dir(ctx) / "stamps"
    d.mkdir(exist_ok=True)
    return d / f"{_safe(cell.name)}-{build_dir}.json"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "variant"


def writable_for(ctx: Any, worktree: Path, tree: Path) -> None:
    """Root mode: a tree the driver wrote (copied, synced) handed to the variant's uid, write bits on."""
    cell = ctx.cell_for(owner=worktree)
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [".", *dirnames, *filenames]:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o200:
                os.chmod(p, stat.S_IMODE(st.st_mode) | 0o200)
    ctx.sandbox.give(cell, tree)


def _cmake_build_in(
    tree: Path,
    ctx: Any,
    build_dir: str,
    isa_flags: list[str] | None,
    ctest: bool,
    targets: list[str],
    host: Path | None = None,
    owner: Path | None = None,
) -> tuple[bool, str]:
    """Configure when needed and build, in `tree` (the path commands see); `host` is where that tree is on
    this machine (the variant's own copy, when sandboxed)."""
    host = Path(host or tree)
    kw = {"owner": owner} if sandboxed(ctx) else {}
    extra, ccache = build_env(ctx)
    generator = "Ninja" if shutil.which("ninja", path=extra.get("PATH")) else None
    if getattr(ctx, "emulate", None) and not isa_flags:  # cross build (sky/emulate.py): no -march=native
        isa_flags = portable_isa_flags(emulate_machine(ctx))
    conf = cmake_configure_args(tree, ccache, ctest, generator, build_dir, isa_flags)
    stamp = stamp_path(ctx, host, build_dir, owner)
    logs = []
    if not (host / build_dir / "CMakeCache.txt").exists() or _read(stamp) != json.dumps(conf):
        rc, out = ctx.run(conf, tree, timeout=900, extra_env=extra, **kw)
        logs.append(f"$ {shlex.join(conf)}\n{out}")
        if rc != 0:
            return False, "\n".join(logs) + f"\n[llamacpp] configure failed (exit {rc})"
        stamp.write_text(json.dumps(conf))
    cmd = cmake_build_args(tree, os.cpu_count() or 1, ctest, build_dir, targets if not ctest else None)
    rc, out = ctx.run(cmd, tree, timeout=3600, extra_env=extra, **kw)
    logs.append(f"$ {shlex.join(cmd)}\n{out}")
    if rc != 0:
        return False, "\n".join(logs) + f"\n[llamacpp] build failed (exit {rc})"
    missing = [t for t in targets if not os.path.lexists(bin_path(host, t, build_dir))]
    if missing:
        return False, "\n".join(logs) + f"\n[llamacpp] built, but missing binaries: {', '.join(missing)}"
    return True, "\n".join(logs)


# ---------------------------------------------------------------- simulated tier (driver hooks)


def simulate_isa(ctx: Any) -> str:
    import simulate  # noqa: PLC0415  (sky/simulate.py, next to this file: the ISA level simulated builds target)

    return simulate.portable_isa()


def simulate_build(worktree: Path, ctx: Any) -> tuple[bool, str]:
    """llama-bench for a portable ISA in its own build directory (ccache shared with the native build)."""
    return _cmake_build(Path(worktree), ctx, SIM_BUILD_DIR, portable_isa_flags(), False, ["llama-bench"])


def simulate_command(worktree: Path, ctx: Any) -> list[str]:
    """A short run of the same model, one thread: prompt eval of 8 tokens and 8 decode steps.

    The variant's binary is first copied to ONE directory shared by every variant
    (<workdir>/llamacpp/simulate/bin), which is also its working directory (`env -C`): ggml looks for
    backends beside its executable (/proc/self/exe) and in the working directory, so where they differ the
    costs differ. An A/A pair measured 3e-4 apart with per-variant binary paths, 3e-5 with per-variant working
    directories, 2e-7 like this."""
    exe = state_dir(ctx) / "simulate" / "bin" / "llama-bench"
    if sandboxed(ctx):  # its own directory at that one path, the copy made in its sandbox
        own = ctx.private_dir(worktree, "simulate-bin")
        ctx.mount(worktree, own, exe.parent, True)
        src = bin_path(Path(worktree), "llama-bench", SIM_BUILD_DIR)
        rc, out = ctx.run(["cp", "-p", str(src), str(exe)], worktree, timeout=300, owner=worktree)
        if rc != 0:
            raise PresetError(f"copying llama-bench for the simulation failed (exit {rc}): {out[-500:]}")
    else:
        exe.parent.mkdir(parents=True, exist_ok=True)
        tmp = exe.with_name("llama-bench.tmp")
        shutil.copy2(bin_path(Path(worktree), "llama-bench", SIM_BUILD_DIR), tmp)
        tmp.replace(exe)
    return [
        "env",
        "-C",
        str(exe.parent),
        str(exe),
        "-o",
        "json",
        "-m",
        str(run_model(ctx)),
        "-p",
        str(SIM_PROMPT),
        "-n",
        str(SIM_GEN),
        "-r",
        "1",
        "-t",
        "1",
    ]


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


# ---------------------------------------------------------------- model and corpus


def corpus_text(seed: int, n_bytes: int = CORPUS_BYTES) -> str:
    """Deterministic pseudo-English text for the perplexity / KL-divergence check."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < n_bytes:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
        sentence = " ".join(words).capitalize() + rng.choice([".", ".", ",", ";", "?"]) + " "
        out.append(sentence)
        size += len(sentence)
    return "".join(out).strip() + "\n"


def prepare(ctx: Any) -> None:
    """Obtain the f16/source model and write the corpus (quantization waits for a built baseline)."""
    opts = options(ctx.project)
    d = state_dir(ctx)
    corpus = d / "corpus.txt"
    if not corpus.exists():
        corpus.write_text(corpus_text(seed_of(ctx)))
    src = source_model(ctx, opts)
    ctx.state["llamacpp_source_model"] = str(src)
    share(ctx, corpus)
    share(ctx, src)
    ctx.log(f"llamacpp: source model {src} ({src.stat().st_size} bytes), corpus {corpus}")


def source_model(ctx: Any, opts: dict) -> Path:
    """The configured model (local path or downloaded URL), or a generated seeded random one."""
    d = state_dir(ctx)
    model = opts["model"]
    if model:
        model = str(model)
        if urllib.parse.urlparse(model).scheme in ("http", "https"):
            name = Path(urllib.parse.urlparse(model).path).name or "model.gguf"
            dest = d / "models" / name
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                ctx.log(f"llamacpp: downloading {model}")
                tmp = dest.with_name(name + ".part")
                with urllib.request.urlopen(model, timeout=600) as r, open(tmp, "wb") as f:  # noqa: S310
                    shutil.copyfileobj(r, f, 1 << 20)
                tmp.replace(dest)
            return dest
        path = Path(model).expanduser()
        if not path.is_absolute():
            path = Path(ctx.workdir) / path
        if not path.is_file():
            raise PresetError(f"preset_options.model: no such file {path}")
        return path
    dest = d / f"random-llama-e512-l8-s{seed_of(ctx)}-f16.gguf"
    if not dest.exists():
        maker = Path(__file__).with_name("make_model.py")
        cmd = [sys.executable, str(maker), str(dest), "--seed", str(seed_of(ctx)), *MODEL_ARGS]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        if p.returncode != 0:
            raise PresetError(
                f"make_model.py failed (needs the gguf and numpy packages):\n{p.stdout[-2000:]}"
            )
        ctx.log(f"llamacpp: {p.stdout.strip()}")
    return dest


def run_model(ctx: Any) -> Path:
    """The model every variant runs: the source model, quantized once with the BASELINE's llama-quantize when
    the model was generated and `quant` is set."""
    opts = options(ctx.project)
    cached = ctx.state.get("llamacpp_model")
    if cached:
        return Path(cached)
    src = Path(ctx.state.get("llamacpp_source_model") or source_model(ctx, opts))
    if opts["model"] or opts["quant"] in ("", "f16", "none"):
        ctx.state["llamacpp_model"] = str(share(ctx, src))
        return src
    dest = src.with_name(src.name.replace("-f16.gguf", f"-{opts['quant']}.gguf"))
    if not dest.exists():
        base = getattr(ctx, "baseline_worktree", None)
        tool = bin_path(base, "llama-quantize") if base else None
        if not tool or not tool.exists():
            raise PresetError("llama-quantize of the baseline is not built yet")
        if sandboxed(ctx):  # the baseline's own tool, in the baseline's sandbox, into its scratch dir
            share(ctx, src)
            tmp = out_path(ctx, base, dest.name + ".tmp")
            argv = [str(tool), str(src), str(tmp), opts["quant"].upper(), str(ctx.threads)]
            rc, out = ctx.run(argv, base, timeout=600, owner=base)
            if rc != 0 or not os.path.lexists(tmp):
                raise PresetError(f"llama-quantize {opts['quant']} failed (exit {rc}):\n{out[-2000:]}")
            take_out(tmp, dest)
        else:
            tmp = dest.with_name(dest.name + ".tmp")
            rc, out = ctx.run(
                [str(tool), str(src), str(tmp), opts["quant"].upper(), str(ctx.threads)],
                src.parent,
                timeout=600,
            )
            if rc != 0 or not tmp.exists():
                raise PresetError(f"llama-quantize {opts['quant']} failed (exit {rc}):\n{out[-2000:]}")
            tmp.replace(dest)
        ctx.log(f"llamacpp: quantized model {dest} ({dest.stat().st_size} bytes)")
    ctx.state["llamacpp_model"] = str(share(ctx, dest))
    return dest


def exercise_command(worktree: Path, ctx: Any) -> list[str]:
    """A short native run for sky/exercised.py's breakpoint counts: the measured binary and model at the
    benchmark's threads, 8 prompt tokens and 8 decode steps, once."""
    opts = dict(options(ctx.project), n_prompt=8, n_gen=8, bench_reps=1)
    return bench_command(Path(worktree), run_model(ctx), opts, ctx.threads)


# bits per weight of the quant types llama-quantize makes here (block scale included): an estimate of the
# parameter count from the file size, for the roofline's FLOP per token (2 per weight)
BITS_PER_WEIGHT = {"q4_0": 4.5, "q4_1": 5.0, "q5_0": 5.5, "q5_1": 6.0, "q8_0": 8.5, "f16": 16.0, "": 16.0}


def model_facts(ctx: Any) -> dict:
    """The measured model for the roofline (sky/roofline.py): its bytes (every weight is read once per decoded
    token) and parameters estimated from them."""
    opts = options(ctx.project)
    model = run_model(ctx)
    size = model.stat().st_size
    quant = "" if opts["model"] else opts["quant"]
    bpw = BITS_PER_WEIGHT.get(quant)
    return {
        "model_bytes": size,
        "quant": quant or "as given",
        "params_estimate": int(size * 8 / bpw) if bpw else None,
        "bytes_per_token": size,
    }


# ---------------------------------------------------------------- commands and parsers


def generation_command(worktree: Path, model: Path, threads: int, seed: int) -> list[str]:
    """Greedy decoding of PROMPT (GEN_TOKENS tokens, EOS ignored) with the tree's generation tool."""
    tool = generator_tool(worktree)
    exe = str(bin_path(worktree, tool))
    if tool == "llama-simple":
        return [exe, "-m", str(model), "-n", str(GEN_TOKENS), PROMPT]
    args = [
        exe,
        "-m",
        str(model),
        "-p",
        PROMPT,
        "-n",
        str(GEN_TOKENS),
        "-t",
        str(threads),
        "-s",
        str(seed),
        "--temp",
        "0",
        "--top-k",
        "1",
        "-c",
        "256",
        "--ignore-eos",
        "--no-warmup",
        "--no-display-prompt",
    ]
    if tool == "llama-completion":
        args.append("-no-cnv")
    return args


def perplexity_command(
    worktree: Path, model: Path, corpus: Path, base_file: Path, threads: int, compare: bool
) -> list[str]:
    """Write (compare=False) or compare against (compare=True) the baseline's logits over the corpus."""
    args = [
        str(bin_path(worktree, "llama-perplexity")),
        "-m",
        str(model),
        "-f",
        str(corpus),
        "-c",
        str(PPL_CTX),
        "-b",
        str(PPL_CTX),
        "-t",
        str(threads),
        "--chunks",
        str(PPL_CHUNKS),
        "--kl-divergence-base",
        str(base_file),
    ]
    if compare:
        args.append("--kl-divergence")
    return args


def bench_command(worktree: Path, model: Path, opts: dict, threads: int) -> list[str]:
    return [
        str(bin_path(worktree, "llama-bench")),
        "-o",
        "json",
        "-m",
        str(model),
        "-p",
        str(opts["n_prompt"]),
        "-n",
        str(opts["n_gen"]),
        "-t",
        str(threads),
        "-r",
        str(opts["bench_reps"]),
    ]


def parse_bench_json(text: str) -> dict[str, list[float]]:
    """llama-bench `-o json` -> {"pp": tok/s samples, "tg": ..., "pg": ...} from the raw `samples_ns`."""
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end < start:
        raise PresetError(f"llama-bench printed no JSON array: {text[-500:]!r}")
    try:
        entries = json.loads(text[start : end + 1])
    except json.JSONDecodeError as e:
        raise PresetError(f"llama-bench JSON unreadable: {e}") from e
    out: dict[str, list[float]] = {}
    for entry in entries:
        n_prompt, n_gen = int(entry.get("n_prompt", 0)), int(entry.get("n_gen", 0))
        samples = entry.get("samples_ns")
        if not isinstance(samples, list) or not samples:
            raise PresetError(f"llama-bench entry without samples_ns (n_prompt={n_prompt}, n_gen={n_gen})")
        metric = "pp" if n_gen == 0 else "tg" if n_prompt == 0 else "pg"
        tokens = n_prompt + n_gen
        for ns in samples:
            if not isinstance(ns, (int, float)) or ns <= 0:
                raise PresetError(f"llama-bench sample {ns!r} is not a positive duration")
            out.setdefault(metric, []).append(tokens * 1e9 / float(ns))
    if not out:
        raise PresetError("llama-bench JSON had no test entries")
    return out


def parse_kld(text: str) -> dict[str, float]:
    """llama-perplexity --kl-divergence output -> {"mean", "uncertainty", "max"?, "same_top_p"?, "ppl"?}."""
    m = KLD_RE.search(text)
    if not m:
        raise PresetError("no 'Mean    KLD:' line in llama-perplexity output (too few tokens, or it crashed)")
    res = {"mean": float(m.group(1)), "uncertainty": float(m.group(2))}
    for key, rx in (("max", MAX_KLD_RE), ("same_top_p", SAME_TOP_RE), ("ppl", PPL_RE)):
        hit = rx.search(text)
        if hit:
            res[key] = float(hit.group(1))
    return res


def first_difference(expected: bytes, got: bytes) -> str:
    n = next(
        (i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b),
        min(len(expected), len(got)),
    )
    return (
        f"first difference at token/byte {n}: expected {expected[n : n + 12]!r}, got {got[n : n + 12]!r} "
        f"(lengths {len(expected)} vs {len(got)})"
    )


# ---------------------------------------------------------------- validate


def _run_to_file(ctx: Any, argv: list[str], cwd: Path, out_file: Path, timeout: float) -> tuple[int, str]:
    """Run argv with stdout into out_file; return (rc, stderr+driver notes)."""
    cmd = f"{shlex.join(argv)} > {shlex.quote(str(out_file))}"
    return ctx.run(cmd, cwd, timeout=timeout, pin=True)


def _output(path: Path) -> bytes:
    """What an invocation wrote to `path`: b"" when missing; a symlink, FIFO or oversized file is an error."""
    if not os.path.lexists(path):
        return b""
    try:
        return read_out(path)
    except OSError as e:
        raise PresetError(f"output file unusable: {e}") from e


def generation_complete(tool: str, output: bytes) -> bool:
    """llama-completion/llama-cli end their stdout with a blank line; llama-simple prints synchronously."""
    return tool == "llama-simple" or output.endswith(b"\n\n")


def kld_complete(text: str) -> bool:
    return "Same top p:" in text


def generate(ctx: Any, worktree: Path, model: Path, out_file: Path) -> tuple[int, str, int]:
    """Greedy generation into out_file, repeated while the logger lost the tail; (rc, log, attempts)."""
    seed = seed_of(ctx)
    tool = generator_tool(worktree)
    for attempt in range(1, ATTEMPTS + 1):
        rc, log = _run_to_file(
            ctx, generation_command(worktree, model, ctx.threads, seed), worktree, out_file, 600
        )
        if rc != 0 or generation_complete(tool, _output(out_file)):
            return rc, log, attempt
    return rc, log, ATTEMPTS


def run_kld(ctx: Any, argv: list[str], cwd: Path) -> tuple[int, str, int]:
    """llama-perplexity --kl-divergence, repeated while the logger lost the summary; when every attempt lost
    it, the output with the most per-chunk rows."""
    best = ""
    for attempt in range(1, ATTEMPTS + 1):
        rc, out = ctx.run(argv, cwd, timeout=1200, pin=True)
        if rc != 0 or kld_complete(out):
            return rc, out, attempt
        if len(KLD_CHUNK_RE.findall(out)) >= len(KLD_CHUNK_RE.findall(best)):
            best = out
    return rc, best, ATTEMPTS


def parse_kld_chunks(text: str) -> dict[str, float] | None:
    """The running mean KLD of the last per-chunk row ({"mean", "uncertainty", "chunks"}), or None."""
    rows = KLD_CHUNK_RE.findall(text)
    if not rows:
        return None
    chunk, kld, unc = rows[-1]
    try:
        return {"mean": float(kld), "uncertainty": float(unc), "chunks": int(chunk)}
    except ValueError:
        return None


def references(baseline_worktree: Path, ctx: Any) -> dict:
    """Baseline greedy output and logits file, computed once per (baseline sha, model) and cached in
    workdir."""
    model = run_model(ctx)
    head = getattr(ctx, "baseline_sha", "") or _head(baseline_worktree)
    key = hashlib.sha256(f"{head}|{model}|{ctx.threads}|{GEN_TOKENS}".encode()).hexdigest()[:16]
    cached = ctx.state.get("llamacpp_refs")
    if cached and cached["key"] == key:
        return cached
    d = state_dir(ctx) / f"ref-{key}"
    d.mkdir(exist_ok=True)
    gen, kld_base = d / "generation.txt", d / "logits.kld"
    box = sandboxed(ctx)
    if not gen.exists():
        tmp = out_path(ctx, baseline_worktree, "generation.tmp") if box else d / "generation.tmp"
        rc, out, attempts = generate(ctx, baseline_worktree, model, tmp)
        if rc != 0 or not generation_complete(generator_tool(baseline_worktree), _output(tmp)):
            raise PresetError(f"baseline generation failed (exit {rc}, {attempts} attempts): {out[-1500:]}")
        take_out(tmp, gen) if box else tmp.replace(gen)
    if not kld_base.exists():
        tmp = out_path(ctx, baseline_worktree, "logits.tmp") if box else d / "logits.tmp"
        argv = perplexity_command(
            baseline_worktree, model, state_dir(ctx) / "corpus.txt", tmp, ctx.threads, False
        )
        kw = {"owner": baseline_worktree} if box else {}
        rc, out = ctx.run(argv, baseline_worktree, timeout=1200, pin=True, **kw)
        if rc != 0 or not os.path.lexists(tmp):
            raise PresetError(f"baseline llama-perplexity failed (exit {rc}): {out[-1500:]}")
        take_out(tmp, kld_base) if box else tmp.replace(kld_base)
    share(ctx, d)
    refs = {"key": key, "generation": str(gen), "kld_base": str(kld_base), "model": str(model)}
    ctx.state["llamacpp_refs"] = refs
    return refs


def _head(worktree: Path) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=str(worktree),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(worktree)


def check_generation(worktree: Path, refs: dict, ctx: Any) -> dict:
    model = Path(refs["model"])
    out_file = out_path(ctx, worktree, f"gen-{hashlib.sha256(str(worktree).encode()).hexdigest()[:10]}.txt")
    rc, log, attempts = generate(ctx, worktree, model, out_file)
    name = "greedy_tokens"
    if rc != 0:
        return {"name": name, "ok": False, "detail": f"generation exited {rc}: {log[-800:]}"}
    expected, got = Path(refs["generation"]).read_bytes(), _output(out_file)
    if expected == got:
        digest = hashlib.sha256(got).hexdigest()[:12]
        return {
            "name": name,
            "ok": True,
            "detail": f"{GEN_TOKENS} greedy tokens identical to baseline ({len(got)} bytes, sha256 {digest})",
        }
    return {
        "name": name,
        "ok": False,
        "detail": "greedy output differs from baseline: "
        + first_difference(expected, got)
        + (f" ({attempts} attempts)" if attempts > 1 else ""),
    }


def check_kld(worktree: Path, refs: dict, ctx: Any) -> dict:
    kl_max = float(options(ctx.project)["kl_max"])
    argv = perplexity_command(
        worktree,
        Path(refs["model"]),
        state_dir(ctx) / "corpus.txt",
        Path(refs["kld_base"]),
        ctx.threads,
        True,
    )
    rc, out, attempts = run_kld(ctx, argv, worktree)
    name = "kl_divergence"
    if rc != 0:
        return {"name": name, "ok": False, "detail": f"llama-perplexity exited {rc}: {out[-800:]}"}
    try:
        k = parse_kld(out)
    except PresetError as e:
        # llama.cpp's logger thread can lose the last lines at exit (a busy machine, every attempt): the
        # per-chunk rows carry the running mean, which decides when at least half the chunks were printed
        rows = parse_kld_chunks(out)
        if rows is None or rows["chunks"] < (PPL_CHUNKS + 1) // 2:
            return {"name": name, "ok": False, "detail": f"{e} ({attempts} attempts): {out[-800:]}"}
        ok = math.isfinite(rows["mean"]) and rows["mean"] < kl_max
        return {
            "name": name,
            "ok": ok,
            "detail": f"mean KLD {rows['mean']:.6g} ± {rows['uncertainty']:.2g} vs bound {kl_max:g} (running "
            f"mean after chunk {rows['chunks']} of {PPL_CHUNKS}: the summary was lost by llama.cpp's "
            f"logger in {attempts} attempts)",
        }
    ok = math.isfinite(k["mean"]) and k["mean"] < kl_max
    extra = "".join(f", {key} {k[key]:.6g}" for key in ("max", "same_top_p", "ppl") if key in k)
    return {
        "name": name,
        "ok": ok,
        "detail": f"mean KLD {k['mean']:.6g} ± {k['uncertainty']:.2g} vs bound {kl_max:g}{extra}",
    }


def check_ctest(worktree: Path, ctx: Any) -> dict:
    cmd = [
        "ctest",
        "--test-dir",
        str(Path(worktree) / BUILD_DIR),
        "-L",
        "main",
        "--output-on-failure",
        "-j",
        str(ctx.threads),
    ]
    rc, out = ctx.run(cmd, worktree, timeout=3600)
    summary = next((ln.strip() for ln in out.splitlines() if "tests passed" in ln), out[-300:])
    return {"name": "ctest", "ok": rc == 0, "detail": summary if rc == 0 else out[-1500:]}


def validate(worktree: Path, baseline_worktree: Path, ctx: Any) -> list[dict]:
    """Token-exact greedy generation and mean KL divergence vs the baseline (+ ctest when enabled)."""
    refs = references(Path(baseline_worktree), ctx)
    checks = [check_generation(Path(worktree), refs, ctx), check_kld(Path(worktree), refs, ctx)]
    if options(ctx.project)["ctest"]:
        checks.append(check_ctest(Path(worktree), ctx))
    return checks


# ---------------------------------------------------------------- bench


def bench(worktree: Path, ctx: Any) -> dict[str, list[float]]:
    """One llama-bench invocation -> tokens/s samples per metric ("pp", "tg")."""
    opts = options(ctx.project)
    model = run_model(ctx)
    out_file = out_path(
        ctx, worktree, f"bench-{hashlib.sha256(str(worktree).encode()).hexdigest()[:10]}.json"
    )
    rc, log = _run_to_file(
        ctx, bench_command(Path(worktree), model, opts, ctx.threads), Path(worktree), out_file, 1800
    )
    if rc != 0:
        raise PresetError(f"llama-bench exited {rc}: {log[-1500:]}")
    return parse_bench_json(_output(out_file).decode(errors="replace"))
