"""Profile-guided research: where the baseline's simulated cost goes, and what share a change can move.

The profile is the baseline's record from the simulated-cost tier (sky/simulate.py through the driver):
exclusive (self) estimated cycles per function, one cachegrind run. A static code map of the project's C/C++
sources (function definitions with their line ranges, and the calls in their bodies) links a change to it:

- a changed line belongs to the function whose body holds it (for a commit: `git diff -U0` against the
  baseline; for an LLM hypothesis: the functions it names, else those defined in its target files);
- a function absent from the profile was inlined: its cost is in its callers' self cost, so the profiled
  callers count (climbing a few levels);
- what a function calls is part of what a change to it can move (callees, transitively; library functions
  such as `__expf_fma` are matched to calls such as `expf(` by name).

The share a hypothesis can move at most is the union of those functions' shares; by Amdahl's law the whole
benchmark is then at most 1 / (1 - share) times faster. That bound is an upper bound (a caller's whole self
cost counts when a callee inlined into it changes), which is what ranking needs: a change on a 0.1% function
cannot reach a 2% minimum effect whatever it does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import pathglob
from ..gitutil import run
from ..text import md_cell

TOP = 10
DEPTH = 4
_SOURCE_EXT = (".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".inc")
_DEF = re.compile(
    r"^(?!\s)(?!(?:if|for|while|switch|return|else|do|case|typedef|struct|enum|union)\b)"
    r"[A-Za-z_][\w\s\*&:<>,]*?\b([A-Za-z_]\w*)\s*\("
)
# a call: `f(`, or a template instantiation `f<T>(` / `f<block<4, 8>>(` (one level of nested arguments)
_TARGS = r"<[^<>;(){}]*(?:<[^<>;(){}]*>[^<>;(){}]*)*>"
_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*(?:" + _TARGS + r")?\s*\(")
_NOT_CALLS = {
    "if",
    "for",
    "while",
    "switch",
    "return",
    "sizeof",
    "defined",
    "alignof",
    "_Alignof",
    "typeof",
    "decltype",
    "static_assert",
    "_Static_assert",
    "assert",
}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
MAX_FILES = 400
MAX_BYTES = 8_000_000


# ---------------------------------------------------------------- the profile artifact


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason, "functions": []}


def from_results(results: Mapping[str, Any] | None, arch: str | None = None) -> dict[str, Any]:
    """The `profile` artifact from a batch's results ({arch: result}): the baseline's simulated record."""
    if not results:
        return unavailable("the profiling batch produced no result")
    arch = arch if arch in results else sorted(results)[0]
    result = results.get(arch) or {}
    base = (result.get("variants") or {}).get("baseline") or {}
    rec = base.get("simulated") or {}
    if not (rec.get("ok") and rec.get("estimated_cycles")):
        info = result.get("simulation") or {}
        why = (
            info.get("reason")
            or rec.get("error")
            or base.get("error")
            or f"the baseline's status is {base.get('status', 'missing')}"
        )
        return unavailable(str(why).splitlines()[0][:300] if str(why).strip() else "not run")
    prof = profile_of(rec, arch=arch, source="baseline")
    roof = roofline_of(result)
    if roof:
        prof["roofline"] = roof
    return prof


def _baseline_median(variant: Mapping[str, Any], metric: str) -> float | None:
    vals = [float(v) for v in (variant.get("samples") or {}).get(metric) or [] if isinstance(v, (int, float))]
    vals += [
        float(p["base"][metric])
        for p in variant.get("pairs") or []
        if isinstance((p.get("base") or {}).get(metric), (int, float))
    ]
    if not vals:
        return None
    s = sorted(vals)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2


def roofline_of(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where the baseline stands on the machine's roofline (the driver's result["roofline"], sky/roofline.py).
    Decode (`tg`): bytes of weights per token x tokens/s against the triad bandwidth; prompt processing
    (`pp`): 2 FLOP per parameter per token x tokens/s against the FMA peak. None without a measurement."""
    roof = result.get("roofline") or {}
    if not roof.get("ok"):
        return None
    base = (result.get("variants") or {}).get("baseline") or {}
    out: dict[str, Any] = {
        "bandwidth_gbs": float(roof["bandwidth_gbs"]),
        "peak_gflops": float(roof["peak_gflops"]),
        "threads": roof.get("threads"),
        "model_bytes": roof.get("model_bytes"),
    }
    tg, pp = _baseline_median(base, "tg"), _baseline_median(base, "pp")
    if roof.get("bytes_per_token") and tg:
        gbs = float(roof["bytes_per_token"]) * tg / 1e9
        out["decode"] = {"tokens_s": tg, "gbs": gbs, "fraction": gbs / out["bandwidth_gbs"]}
    if roof.get("params_estimate") and pp:
        gflops = 2.0 * float(roof["params_estimate"]) * pp / 1e9
        out["prompt"] = {"tokens_s": pp, "gflops": gflops, "fraction": gflops / out["peak_gflops"]}
    return out


MEMORY_BOUND = 0.6  # decode at this fraction of the triad bandwidth or more: memory-bound
# words of a hypothesis that changes how many bytes move (so the bandwidth bound does not cap it)
_MEMORY_TERMS = re.compile(
    r"\b(bandwidth|bytes?|memory|prefetch\w*|quant\w*|compress\w*|layout|cache\w*|stream\w*|"
    r"weights?|repack\w*|fus\w+|tile|tiling|blocking|bits?|precision|dram|load|store)\b",
    re.IGNORECASE,
)


def roofline_line(profile: Mapping[str, Any] | None) -> str:
    """One line: where decode and prompt processing stand against the machine's measured roofline."""
    roof = (profile or {}).get("roofline")
    if not roof:
        return ""
    parts = []
    dec = roof.get("decode")
    if dec:
        where = (
            "above the DRAM bandwidth: the weights are served from cache, so bandwidth is not the bound here"
            if dec["fraction"] > 1.0
            else ("memory-bound" if dec["fraction"] >= MEMORY_BOUND else "not memory-bound")
        )
        parts.append(
            f"decode: {int(roof['model_bytes'] or 0) / 1e6:.1f} MB of weights per token x "
            f"{dec['tokens_s']:.1f} tokens/s = {dec['gbs']:.2f} GB/s = {100 * dec['fraction']:.0f}% of the "
            f"measured {roof['bandwidth_gbs']:.1f} GB/s ({where})"
        )
    pp = roof.get("prompt")
    if pp:
        parts.append(
            f"prompt processing: {pp['gflops']:.1f} GFLOP/s = {100 * pp['fraction']:.0f}% of the measured "
            f"{roof['peak_gflops']:.0f} GFLOP/s FMA peak"
        )
    if not parts:
        return ""
    return f"Roofline ({roof.get('threads')} threads): " + "; ".join(parts) + "."


def roofline_bound(h: Any, profile: Mapping[str, Any] | None, min_effect: float) -> None:
    """The roofline bound beside the Amdahl bound: a compute-only change (its text names nothing that moves
    fewer bytes) cannot make decode faster than the bandwidth allows: bound = 1 / the fraction of the
    bandwidth decode already uses. Sets h.roofline_max; memory-bound decode ranks the hypothesis down."""
    dec = ((profile or {}).get("roofline") or {}).get("decode")
    h.roofline_max = None
    if not dec or dec["fraction"] <= 0 or dec["fraction"] > 1.0:
        return
    bound = 1.0 / dec["fraction"]
    if _MEMORY_TERMS.search(f"{h.title} {h.rationale}"):
        return  # it may move fewer bytes: the bandwidth does not cap it
    h.roofline_max = round(bound, 6)
    if dec["fraction"] >= MEMORY_BOUND and bound < (h.amdahl_max or math.inf):
        why = (
            f"roofline: decode already moves {100 * dec['fraction']:.0f}% of the measured bandwidth and this "
            f"change only computes faster (it names nothing that moves fewer bytes): at most {bound:.2f}x"
        )
        h.rank_note = f"ranked down: {why}" if bound < 1.0 + min_effect else f"{why}; " + (h.rank_note or "")


def profile_of(rec: Mapping[str, Any], *, arch: str = "", source: str = "") -> dict[str, Any]:
    """A simulated record (variant["simulated"]) as a profile: every kept function with its share."""
    total = int(rec["estimated_cycles"])
    funcs = [
        {"name": str(f["name"]), "cycles": int(f["cycles"]), "share": int(f["cycles"]) / total}
        for f in rec.get("functions") or []
    ]
    return {
        "available": True,
        "reason": "",
        "arch": arch,
        "source": source,
        "isa": rec.get("isa") or "",
        "tool": rec.get("tool") or "cachegrind",
        "estimated_cycles": total,
        "instructions": int(rec.get("instructions") or 0),
        "seconds": float(rec.get("seconds") or 0.0),
        "functions": funcs,
    }


def base_name(name: str) -> str:
    """`ns::f<T>(int, float) const` -> `f`; C names unchanged."""
    s = name.split("(", 1)[0].strip()
    while "<" in s and ">" in s:
        t = re.sub(r"<[^<>]*>", "", s)
        if t == s:
            break
        s = t
    return s.rsplit("::", 1)[-1].strip().split()[-1] if s.strip() else name


def shares(profile: Mapping[str, Any] | None) -> dict[str, float]:
    """{base function name: share of the estimated cycles} (names merged by base name)."""
    out: dict[str, float] = {}
    for f in (profile or {}).get("functions") or []:
        b = base_name(f["name"])
        out[b] = out.get(b, 0.0) + float(f["share"])
    return out


def top(profile: Mapping[str, Any] | None, n: int = TOP) -> list[dict[str, Any]]:
    return list(((profile or {}).get("functions") or [])[:n])


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]


def _contains(seq: list[str], sub: list[str]) -> bool:
    return bool(sub) and any(seq[i : i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def op_share(op: str, profile: Mapping[str, Any] | None) -> float:
    """Share of the functions whose name holds the op's words (`RMS_NORM` -> `..._rms_norm_f32`);
    `MUL` does not count `mul_mat` functions."""
    want = _tokens(op.removeprefix("GGML_OP_"))
    total = 0.0
    for name, share in shares(profile).items():
        toks = _tokens(name)
        for i in range(len(toks) - len(want) + 1):
            if toks[i : i + len(want)] == want and not (want == ["mul"] and toks[i + 1 : i + 2] == ["mat"]):
                total += share
                break
    return total


def term_weights(profile: Mapping[str, Any] | None) -> dict[str, float]:
    """Identifier -> share, for ordering research by the hot ops (exact base names, lowercased)."""
    return {k.lower(): v for k, v in shares(profile).items()}


# ---------------------------------------------------------------- the code map


@dataclass
class Func:
    name: str
    file: str
    start: int  # 1-based line of the signature
    end: int  # 1-based line of the closing brace
    calls: set[str] = field(default_factory=set)


@dataclass
class CodeMap:
    funcs: dict[str, list[Func]] = field(default_factory=dict)
    by_file: dict[str, list[Func]] = field(default_factory=dict)

    def add(self, f: Func) -> None:
        self.funcs.setdefault(f.name, []).append(f)
        self.by_file.setdefault(f.file, []).append(f)

    def at(self, file: str, line: int) -> Func | None:
        for f in self.by_file.get(file, []):
            if f.start <= line <= f.end:
                return f
        return None

    def calls_of(self, name: str) -> set[str]:
        out: set[str] = set()
        for f in self.funcs.get(name, []):
            out |= f.calls
        return out

    def callers_of(self, name: str) -> set[str]:
        return {f.name for fs in self.funcs.values() for f in fs if name in f.calls and f.name != name}

    def where(self, name: str) -> str:
        fs = self.funcs.get(name)
        return f"{fs[0].file}:{fs[0].start}" if fs else ""


def _strip(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line without comments and string literals; whether a block comment continues."""
    out = []
    i = 0
    while i < len(line):
        if in_comment:
            j = line.find("*/", i)
            if j < 0:
                return "".join(out), True
            i, in_comment = j + 2, False
            continue
        j = line.find("/*", i)
        k = line.find("//", i)
        if k >= 0 and (j < 0 or k < j):
            out.append(line[i:k])
            break
        if j >= 0:
            out.append(line[i:j])
            i, in_comment = j + 2, True
            continue
        out.append(line[i:])
        break
    return _STRING.sub('""', "".join(out)), in_comment


def parse_source(text: str, rel: str, into: CodeMap) -> None:
    """Function definitions (signature at column 0, body in braces) and the calls in each body."""
    lines = text.splitlines()
    clean: list[str] = []
    in_comment = False
    for line in lines:
        s, in_comment = _strip(line, in_comment)
        clean.append(s if not s.lstrip().startswith("#") else "")
    i = 0
    while i < len(clean):
        m = _DEF.match(clean[i])
        if not m or clean[i].rstrip().endswith(";"):
            i += 1
            continue
        # the body's opening brace: on this line or within the next few, before any ';'
        j, opened = i, -1
        while j < len(clean) and j <= i + 8:
            seg = clean[j] if j > i else clean[j][m.end() :]
            if "{" in seg and (";" not in seg or seg.index("{") < seg.index(";")):
                opened = j
                break
            if ";" in seg:
                break
            j += 1
        if opened < 0:
            i += 1
            continue
        depth, k, body = 0, opened, []
        started = False
        while k < len(clean):
            seg = clean[k] if k > i else clean[k][m.end() :]
            depth += seg.count("{") - seg.count("}")
            started = started or "{" in seg
            body.append(seg)
            if started and depth <= 0:
                break
            k += 1
        calls = {c for seg in body for c in _CALL.findall(seg)} - _NOT_CALLS - {m.group(1)}
        into.add(Func(m.group(1), rel, i + 1, k + 1, calls))
        i = k + 1


def build_code_map(clone_dir: str | Path, globs: Iterable[str]) -> CodeMap:
    """Parse the tracked C/C++ sources under the globs (at most MAX_FILES files, MAX_BYTES in all)."""
    cmap = CodeMap()
    out = run(clone_dir, "ls-files", "-z", check=False)
    if out.returncode != 0:
        return cmap
    globs = list(globs) or ["**"]
    files = [
        f
        for f in out.stdout.decode("utf-8", "replace").split("\0")
        if f.endswith(_SOURCE_EXT) and pathglob.match(f, globs)
    ]
    budget = MAX_BYTES
    for rel in files[:MAX_FILES]:
        try:
            text = (Path(clone_dir) / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        budget -= len(text)
        if budget < 0:
            break
        parse_source(text, rel, cmap)
    return cmap


# ---------------------------------------------------------------- what a change touches


def changed_functions(clone_dir: str | Path, base: str, sha: str) -> set[str]:
    """Functions whose lines `base..sha` changes: each changed file is parsed as it is at `base`, and the
    old-side line numbers of every hunk are mapped to the function holding them; an insertion between
    functions counts for the function named in the hunk header (git's funcname context)."""
    proc = run(clone_dir, "diff", "-U0", "--no-color", "--no-ext-diff", base, sha, text=True, check=False)
    touched: set[str] = set()
    maps: dict[str, CodeMap] = {}
    current = ""
    for line in proc.stdout.splitlines():
        if line.startswith("--- "):
            current = line[6:] if line.startswith("--- a/") and line.endswith(_SOURCE_EXT) else ""
            if current and current not in maps:
                shown = run(clone_dir, "show", f"{base}:{current}", text=True, check=False)
                maps[current] = CodeMap()
                parse_source(shown.stdout, current, maps[current])
            continue
        m = _HUNK.match(line)
        if not m or not current:
            continue
        start, count = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
        if count == 0:  # a pure insertion after old line `start`: inside a body only if both sides are
            before, after = maps[current].at(current, start), maps[current].at(current, start + 1)
            if before and after and before.name == after.name:
                touched.add(before.name)
            # between two functions (a new helper): it counts through the changed caller that calls it,
            # never for the function that happens to end just above it
            continue
        hit = False
        for ln in range(start, start + count):
            f = maps[current].at(current, ln)
            if f:
                touched.add(f.name)
                hit = True
        header = _CALL.search(m.group(5) or "")
        if header and not hit and header.group(1) in maps[current].funcs:
            touched.add(header.group(1))
    return touched


def functions_in(files: Iterable[str], cmap: CodeMap) -> set[str]:
    return {f.name for rel in files for f in cmap.by_file.get(rel, [])}


# ---------------------------------------------------------------- attribution


@dataclass
class Attribution:
    hot_function: str | None
    share: float
    moved: dict[str, float]
    why: str

    @property
    def amdahl(self) -> float:
        return 1.0 / (1.0 - self.share) if self.share < 0.999 else 1000.0


def _lib_match(call: str, prof_name: str) -> bool:
    p = prof_name.lstrip("_")
    return p == call or p.startswith(call + "_") or p.startswith(call + ".")


def _moved_by(name: str, profile_shares: Mapping[str, float], cmap: CodeMap) -> dict[str, float]:
    """Profiled functions whose cost a change to `name` can move."""
    moved: dict[str, float] = {}
    if name in profile_shares:
        moved[name] = profile_shares[name]
    else:  # inlined (or never run): its cost sits in its callers' self cost
        frontier, seen = {name}, {name}
        for _ in range(DEPTH):
            nxt = set()
            for f in frontier:
                for caller in cmap.callers_of(f) - seen:
                    seen.add(caller)
                    if caller in profile_shares:
                        moved[caller] = profile_shares[caller]
                    else:
                        nxt.add(caller)
            frontier = nxt
            if not frontier:
                break
    defined = set(cmap.funcs)
    library = [p for p in profile_shares if p not in defined]
    frontier, seen = {name}, {name}
    for _ in range(DEPTH):
        nxt = set()
        for f in frontier:
            for call in cmap.calls_of(f) - seen:
                seen.add(call)
                if call in profile_shares:
                    moved[call] = profile_shares[call]
                if call in defined:
                    nxt.add(call)
                else:
                    for p in library:
                        if _lib_match(call, p):
                            moved[p] = profile_shares[p]
        frontier = nxt
        if not frontier:
            break
    return moved


def attribute(names: Iterable[str], profile: Mapping[str, Any] | None, cmap: CodeMap) -> Attribution:
    """What changing these functions can move at most, by the profile."""
    ps = shares(profile)
    names = sorted(set(names))
    moved: dict[str, float] = {}
    per: dict[str, float] = {}
    for n in names:
        m = _moved_by(n, ps, cmap)
        per[n] = sum(m.values())
        moved.update(m)
    share = min(1.0, sum(moved.values()))
    if not names:
        return Attribution(None, 0.0, {}, "no function of the code is named or changed")
    hot = max(names, key=lambda n: (per[n], n in ps, n))
    if not moved:
        return Attribution(hot, 0.0, {}, f"`{hot}` does not show in the profile (nor what it calls)")
    parts = ", ".join(f"{k} {v:.1%}" for k, v in sorted(moved.items(), key=lambda kv: -kv[1])[:4])
    inlined = "" if hot in ps else " (not in the profile: inlined; its callers count)"
    return Attribution(
        hot,
        share,
        dict(sorted(moved.items(), key=lambda kv: -kv[1])),
        f"`{hot}`{inlined} can move {share:.1%} of the estimated cycles ({parts})",
    )


def annotate(h: Any, att: Attribution | None, min_effect: float) -> None:
    """Set a hypothesis' hot function, share and Amdahl bound (h: research.model.Hypothesis)."""
    if att is None:
        h.hot_function, h.hot_share, h.amdahl_max, h.hot_functions = None, None, None, []
        h.rank_note = h.rank_note or "no simulated profile: not ranked by where the time goes"
        return
    h.hot_function = att.hot_function
    h.hot_share = round(att.share, 6)
    h.amdahl_max = round(att.amdahl, 6)
    h.hot_functions = [{"name": k, "share": round(v, 6)} for k, v in att.moved.items()][:8]
    if att.amdahl < 1.0 + min_effect:
        h.rank_note = (
            f"ranked down: {att.why}; even at zero cost the benchmark would be at most "
            f"{att.amdahl:.3f}x faster, below the {min_effect:.0%} minimum effect"
        )
    else:
        h.rank_note = f"{att.why}: at most {att.amdahl:.2f}x (Amdahl)"


# ---------------------------------------------------------------- markdown


def markdown(profile: Mapping[str, Any] | None, cmap: CodeMap | None = None, n: int = TOP) -> str:
    """The dossier's opening section."""
    lines = ["#### Where the time goes", ""]
    roof = roofline_line(profile)
    if roof:
        lines += [md_cell(roof, 600), ""]
    if not profile or not profile.get("available"):
        why = md_cell((profile or {}).get("reason") or "no profile was taken", 300)
        return "\n".join(
            lines
            + [
                f"No simulated profile of the baseline: {why}. Research continued without "
                "it: hypotheses are not ranked by where the time goes and carry no Amdahl "
                "bound.",
                "",
            ]
        )
    lines += [
        f"Simulated cost of the baseline ({md_cell(profile.get('tool'), 20)}, "
        f"{md_cell(profile.get('isa') or profile.get('arch') or '', 60)}): "
        f"{int(profile['estimated_cycles']):,} estimated cycles, {int(profile['instructions']):,} "
        "instructions. Self cost per function:",
        "",
        "| function | share | estimated cycles | defined in |",
        "|---|---:|---:|---|",
    ]
    for f in top(profile, n):
        where = cmap.where(base_name(f["name"])) if cmap else ""
        where = f"`{md_cell(where, 120)}`" if where else "library / not found"
        lines.append(
            f"| `{md_cell(f['name'], 80).replace(chr(96), '')}` | {100 * f['share']:.1f}% | "
            f"{int(f['cycles']):,} | {where} |"
        )
    rest = len(profile.get("functions") or []) - n
    if rest > 0:
        lines.append(f"| {rest} more | {100 * sum(f['share'] for f in profile['functions'][n:]):.1f}% | | |")
    return "\n".join(lines + [""])


def material(profile: Mapping[str, Any] | None, n: int = TOP) -> str:
    """The profile as plain text for a prompt."""
    if not profile or not profile.get("available"):
        return f"(no simulated profile: {(profile or {}).get('reason') or 'not taken'})"
    total = int(profile["estimated_cycles"])
    return "\n".join(
        f"{f['name']}: {100 * f['share']:.1f}% of {total:,} estimated cycles" for f in top(profile, n)
    )
