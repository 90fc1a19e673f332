"""llama.cpp / ggml preset: ops and fusions other backends have that the CPU backend lacks, read from the
tree.

Lexical and evidence-based: an op counts as handled by a backend when one of its sources has `case GGML_OP_X`
(or the unary / GLU enums); a fusion is an op sequence written as a brace list (`{ GGML_OP_RMS_NORM,
GGML_OP_MUL }`) on a line that names a fusion/pattern, or anywhere in a file named *fusion*. Every finding
carries file:line evidence so a reader can check it. Works on partial trees; missing pieces become notes.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .model import SourceNote

BACKENDS_DIR = "ggml/src"
CPU_BACKEND = "cpu"
_EXTS = {
    ".c",
    ".cc",
    ".cpp",
    ".h",
    ".hpp",
    ".cu",
    ".cuh",
    ".m",
    ".mm",
    ".metal",
    ".comp",
    ".wgsl",
    ".cl",
    ".inc",
}
_CASE = re.compile(r"\bcase\s+(GGML_(?:UNARY_|GLU_)?OP_[A-Z0-9_]+)\s*:")
_OP_LIST = re.compile(r"\{\s*(GGML_OP_[A-Z0-9_]+(?:\s*,\s*GGML_OP_[A-Z0-9_]+)+)\s*,?\s*\}")
_FUSION_LINE = re.compile(r"fus|pattern", re.I)
_FUSED_FN = re.compile(r"^[A-Za-z_][\w\s\*:<>,&]*?\b(\w*fuse\w*)\s*\(", re.I)
_MAX_FILE_BYTES = 3_000_000


@dataclass
class Evidence:
    backend: str
    file: str
    line: int

    def text(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class BackendGap:
    kind: str  # "fusion" | "op"
    name: str  # "RMS_NORM+MUL" or "GGML_OP_FOO"
    present_in: list[str]
    missing_in: str
    evidence: list[Evidence]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BackendScan:
    backends: list[str]
    ops: dict[str, dict[str, Evidence]] = field(default_factory=dict)  # backend -> op -> first evidence
    fusions: dict[str, dict[str, Evidence]] = field(default_factory=dict)  # backend -> "A+B" -> evidence
    fused_functions: dict[str, list[Evidence]] = field(default_factory=dict)  # backend -> defs named *fuse*
    gaps: list[BackendGap] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backends": self.backends,
            "ops": {b: sorted(o) for b, o in self.ops.items()},
            "fusions": {b: sorted(f) for b, f in self.fusions.items()},
            "gaps": [g.to_dict() for g in self.gaps],
        }


def fusion_key(op_list: str) -> str:
    """'GGML_OP_RMS_NORM, GGML_OP_MUL' -> 'RMS_NORM+MUL'."""
    return "+".join(o.strip().removeprefix("GGML_OP_") for o in op_list.split(","))


def backend_dirs(root: Path) -> dict[str, Path]:
    """{name: dir} for ggml/src/ggml-<name> directories (blas, cuda, metal, vulkan, cpu, ...)."""
    base = root / BACKENDS_DIR
    if not base.is_dir():
        return {}
    return {
        p.name.removeprefix("ggml-"): p
        for p in sorted(base.iterdir())
        if p.is_dir() and p.name.startswith("ggml-")
    }


def _scan_file(path: Path, rel: str, backend: str, scan: BackendScan) -> None:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            return
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    ops = scan.ops.setdefault(backend, {})
    fusions = scan.fusions.setdefault(backend, {})
    fusion_file = "fus" in path.name.lower()
    for lineno, line in enumerate(text.splitlines(), 1):
        for op in _CASE.findall(line):
            ops.setdefault(op, Evidence(backend, rel, lineno))
        if "GGML_OP_" in line and (fusion_file or _FUSION_LINE.search(line)):
            for m in _OP_LIST.finditer(line):
                fusions.setdefault(fusion_key(m.group(1)), Evidence(backend, rel, lineno))
        m = _FUSED_FN.match(line)
        if m and not line.rstrip().endswith(";"):
            scan.fused_functions.setdefault(backend, []).append(
                Evidence(backend, f"{rel}#{m.group(1)}", lineno)
            )


def scan_tree(root: str | Path) -> tuple[BackendScan, SourceNote]:
    """Scan every backend under ggml/src; gaps are things >= 1 other backend has and the CPU backend lacks."""
    root = Path(root)
    dirs = backend_dirs(root)
    if not dirs:
        return BackendScan([]), SourceNote(
            "backends", "skipped", f"no {BACKENDS_DIR}/ggml-* directories in the tree"
        )
    if CPU_BACKEND not in dirs:
        scan = BackendScan(sorted(dirs))
        return scan, SourceNote(
            "backends", "skipped", f"{BACKENDS_DIR}/ggml-cpu is missing; nothing to compare against"
        )
    scan = BackendScan(sorted(dirs))
    for name, d in dirs.items():
        for path in sorted(d.rglob("*")):
            if path.is_file() and path.suffix in _EXTS:
                _scan_file(path, path.relative_to(root).as_posix(), name, scan)
    scan.gaps = find_gaps(scan)
    others = [b for b in scan.backends if b != CPU_BACKEND]
    n_f = sum(1 for g in scan.gaps if g.kind == "fusion")
    n_o = len(scan.gaps) - n_f
    detail = (
        f"scanned {len(others)} backends ({', '.join(others) or 'none'}) against cpu: "
        f"{len(scan.fusions.get(CPU_BACKEND, {}))} cpu fusions; {n_f} fusions and {n_o} ops missing in cpu"
    )
    return scan, SourceNote("backends", "ok", detail)


def find_gaps(scan: BackendScan) -> list[BackendGap]:
    """Fusions and ops seen in other backends but not in cpu, most widely implemented first."""
    cpu_ops = set(scan.ops.get(CPU_BACKEND, {}))
    cpu_fusions = set(scan.fusions.get(CPU_BACKEND, {}))
    gaps: dict[tuple[str, str], BackendGap] = {}
    for backend in scan.backends:
        if backend == CPU_BACKEND:
            continue
        for key, ev in scan.fusions.get(backend, {}).items():
            if key not in cpu_fusions:
                gap = gaps.setdefault(("fusion", key), BackendGap("fusion", key, [], CPU_BACKEND, []))
                gap.present_in.append(backend)
                gap.evidence.append(ev)
        for op, ev in scan.ops.get(backend, {}).items():
            if op not in cpu_ops:
                gap = gaps.setdefault(("op", op), BackendGap("op", op, [], CPU_BACKEND, []))
                gap.present_in.append(backend)
                gap.evidence.append(ev)
    return sorted(
        gaps.values(), key=lambda g: (g.kind != "fusion", -generality(g), -len(g.present_in), g.name)
    )


# ops every transformer decoder step runs; a fusion made only of these helps token generation on most models
TRANSFORMER_OPS = {
    "ADD",
    "MUL",
    "SCALE",
    "RMS_NORM",
    "NORM",
    "MUL_MAT",
    "ROPE",
    "SOFT_MAX",
    "UNARY",
    "GLU",
    "GET_ROWS",
    "SET_ROWS",
    "VIEW",
    "RESHAPE",
    "CPY",
    "CONT",
    "PERMUTE",
    "TRANSPOSE",
    "FLASH_ATTN_EXT",
}


def generality(gap: BackendGap) -> int:
    """1 when every op of the gap is a common transformer op (not model-specific like SSM_CONV)."""
    ops = gap.name.removeprefix("GGML_OP_").split("+")
    return int(all(op in TRANSFORMER_OPS for op in ops))


def cpu_target_files(root: str | Path) -> list[str]:
    """Where a CPU fusion would be written (the files that exist among the usual ones)."""
    candidates = ["ggml/src/ggml-cpu/ggml-cpu.c", "ggml/src/ggml-cpu/ops.cpp", "ggml/src/ggml-cpu/ops.h"]
    return [c for c in candidates if (Path(root) / c).is_file()] or ["ggml/src/ggml-cpu/"]
