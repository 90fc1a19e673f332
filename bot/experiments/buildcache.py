"""The local executor's shared compiler cache: filled from baselines only, read-only to every batch.

Why: each local batch builds in its own jail with its own (per-batch) ccache, so every experiment of a
llama.cpp run rebuilt the baseline cold (minutes on 2 cores, three times a run: profile, main, verify). One
ccache shared across batches would fix that, but a candidate's build runs as the same uid as the baseline's
inside its jail: a writable shared cache would let a fork's build script plant objects that later
baselines link (poisoned measurements for every later run).

So the cache is split by trust:

- the *store* (`<base_dir>/_shared-ccache/store`, a ccache `file:` remote storage) is written only by a
  **warm-only** driver run: a separate jail whose spec holds the baseline alone (no candidate commit is
  checked out or built there), which builds the baseline and, where the preset has one, its simulation
  build, with the store bound read-write (`CCACHE_REMOTE_STORAGE=file:<store>`);
- every real batch then runs with the store bound **read-only** in its jail and
  `CCACHE_REMOTE_STORAGE=file:<store>|read-only`: the baseline's build is all hits; a candidate's misses go
  to the batch's own primary cache and die with it;
- the runner (outside any jail) records which (baseline commit, arch, build settings) were warmed in
  `<base_dir>/_shared-ccache/warmed/<key>` (never bound into a jail), so the warm run happens once per
  baseline: the run's profile batch pays it, main and verify batches, later runs and rebenches of the same
  baseline find it warm.

What the baseline's code can do to the store is what it could do to its own builds anyway (it is the
repository under test). The store is bounded: over `limit_bytes` it is emptied, with its markers, before the
next warm run (ccache does not evict remote storage itself).

Opt-in per project (`build.shared_cache`, default false; the llama.cpp preset turns it on): for a project
whose build takes seconds the extra warm run costs more than it saves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot.experiments import jail, tasks

DIR_NAME = "_shared-ccache"  # under the executor's base dir (handles start with "local-": no collision)
DEFAULT_LIMIT = 8 * 1024**3
# what a baseline's compiled objects depend on, besides its commit and the machine
KEY_SECTIONS = ("preset", "build", "preset_options", "llamacpp", "simulate")


def wanted(spec: dict[str, Any]) -> bool:
    build = (spec.get("project") or {}).get("build") or {}
    return bool(build.get("shared_cache")) and build.get("ccache", True) is not False


def warm_key(spec: dict[str, Any], arch: str) -> str:
    project = spec.get("project") or {}
    ident = {
        "sha": (spec.get("baseline") or {}).get("sha"),
        "arch": arch,
        "project": {k: project.get(k) for k in KEY_SECTIONS},
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]


class SharedCache:
    def __init__(self, root: Path, limit_bytes: int = DEFAULT_LIMIT):
        self.root = Path(root)
        self.store = self.root / "store"
        self.markers = self.root / "warmed"
        self.limit_bytes = int(limit_bytes)

    def warmed(self, key: str) -> bool:
        """A marker for `key` and a store that still holds at least what it held when the marker was
        written; else stale (an emptied, deleted or shrunk store, or a marker of an older version, written
        without checking the warm build): its marker is removed and the baseline warmed again."""
        path = self.markers / key
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return False
        files = self.files()
        if not isinstance(info, dict) or files == 0 or files < int(info.get("store_files") or files + 1):
            path.unlink(missing_ok=True)
            return False
        return True

    def mark(self, key: str, info: dict[str, Any]) -> None:
        """Written only after a complete warm build (the runner checks its result): atomically, so a kill
        leaves either no marker or a whole one; it records how many entries the store held then."""
        self.markers.mkdir(parents=True, exist_ok=True)
        tmp = self.markers / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**info, "store_files": self.files()}))
        os.replace(tmp, self.markers / key)

    def files(self) -> int:
        return sum(len(files) for _d, _s, files in os.walk(self.store))

    def size(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.store):
            for name in files:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass
        return total

    def prepare_store(self, jail_plan: dict[str, Any] | None) -> None:
        """The store exists (emptied, with its markers, when over the limit), owned by whoever writes it in
        the warm run (root mode: the baseline's sandbox uid)."""
        if self.store.exists() and self.size() > self.limit_bytes:
            shutil.rmtree(self.store, ignore_errors=True)
            shutil.rmtree(self.markers, ignore_errors=True)
        self.store.mkdir(parents=True, exist_ok=True)
        self.markers.mkdir(parents=True, exist_ok=True)
        if jail_plan is not None and jail_plan.get("mode") == "root":
            uid = int(jail.sandbox_plan(jail_plan)["uid_base"])  # the baseline's sandbox uid in the warm run
            for dirpath, dirnames, filenames in os.walk(self.store):
                for name in (".", *dirnames, *filenames):
                    os.chown(os.path.join(dirpath, name), uid, uid, follow_symlinks=False)
            self.store.chmod(0o755)
            for p in (self.root, self.markers):  # root's, readable; the jail never sees the markers
                p.chmod(0o755)

    def remote(self, writable: bool) -> str:
        """The CCACHE_REMOTE_STORAGE value for the warm run (writable) or a batch (read-only)."""
        # percent-encoded: the variable separates backends by spaces (a data dir under "/srv/my bot")
        return f"file:{quote(str(self.store))}" + ("" if writable else "|read-only")


def warm_task(task: dict[str, Any], files_dir: Path, warm_dir: Path) -> dict[str, Any]:
    """A copy of an arch's task whose spec holds the baseline alone, marked warm_only (driver: fetch, prepare,
    build the baseline and its simulation build, nothing measured), in its own files dir. The bundle is
    copied, never linked: the warm jail may write its files dir."""
    if warm_dir.exists():
        shutil.rmtree(warm_dir)
    warm_dir.mkdir(parents=True)
    for src in files_dir.iterdir():
        if src.is_file() and (src.suffix == ".py" or src.name == tasks.BUNDLE_NAME):
            shutil.copy2(src, warm_dir / src.name)
    spec_name = str((task.get("envs") or {}).get("SPEC", tasks.SPEC_NAME))
    spec = json.loads((files_dir / spec_name).read_text())
    spec["candidates"] = []
    spec["warm_only"] = True
    (warm_dir / spec_name).write_text(json.dumps(spec, indent=1))
    return {**task, "workdir": str(warm_dir), "name": f"{task.get('name', 'task')}-warm"}


def warm_failure(result: dict[str, Any] | None) -> str:
    """Why a warm-only driver run did not warm the cache ('' when it did): the driver exits 0 with a result
    even when the baseline failed to build or its preset could not prepare (issue #19: a warm-up that
    stopped at the model generation in 3 s was marked warm)."""
    if not result:
        return "no result"
    if result.get("complete") is False:
        return "incomplete result"
    base = next(iter((result.get("variants") or {}).values()), None)
    if not base:
        return "no baseline in the result"
    if base.get("status") != "ok" or not (base.get("build") or {}).get("ok"):
        return f"baseline {base.get('status')}: {str(base.get('error') or '')[:200]}".rstrip(": ")
    sim = base.get("simulated_build")
    if sim is not None and not sim.get("ok"):
        return "the baseline's simulation build failed"
    if result.get("errors"):
        return f"driver error: {str(result['errors'][0])[:200]}"
    return ""


STAT_KEYS = {"remote_hit": "remote_storage_hit", "local_hit": "local_storage_hit", "miss": "cache_miss"}


def ccache_stats(ccache_dir: Path) -> dict[str, int] | None:
    """What one driver run's own ccache saw: hits from the shared store (remote_hit), from its own primary
    cache (local_hit), and compilations (miss); None without ccache or stats."""
    ccache = shutil.which("ccache")
    if not ccache or not Path(ccache_dir).is_dir():
        return None
    try:
        out = subprocess.run(
            [ccache, "--print-stats"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CCACHE_DIR": str(ccache_dir)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    raw = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    try:
        return {k: int(raw.get(v, 0)) for k, v in STAT_KEYS.items()}
    except ValueError:
        return None
