"""Backend gap scan on a synthetic ggml tree (and, when AUTORESEARCH_LLAMA_TREE is set, on a real one)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from research_fixtures import CPU_C, CUDA_CU, METAL_FUSION, OPS_CPP, write

from bot.research.backends import cpu_target_files, scan_tree


def _tree(root: Path, cpu: bool = True) -> Path:
    if cpu:
        write(root, "ggml/src/ggml-cpu/ggml-cpu.c", CPU_C)
        write(root, "ggml/src/ggml-cpu/ops.cpp", OPS_CPP)
    write(root, "ggml/src/ggml-cuda/ggml-cuda.cu", CUDA_CU)
    write(root, "ggml/src/ggml-metal/ggml-metal-fusion.cpp", METAL_FUSION)
    write(root, "ggml/src/ggml-vulkan/README.md", "no sources here")
    return root


def test_fusions_and_ops_missing_in_cpu(tmp_path: Path) -> None:
    scan, note = scan_tree(_tree(tmp_path))
    assert note.status == "ok" and "3 backends" in note.detail
    assert set(scan.fusions["cpu"]) == {"RMS_NORM+MUL"}
    gaps = {(g.kind, g.name): g for g in scan.gaps}
    assert set(gaps) == {
        ("fusion", "RMS_NORM+MUL+ADD"),
        ("fusion", "ADD+ADD"),
        ("op", "GGML_OP_FLASH_ATTN_EXT"),
    }
    top = scan.gaps[0]  # the fusion most backends have comes first
    assert (top.name, top.present_in, top.missing_in) == ("RMS_NORM+MUL+ADD", ["cuda", "metal"], "cpu")
    assert [e.text() for e in top.evidence] == [
        "ggml/src/ggml-cuda/ggml-cuda.cu:12",
        "ggml/src/ggml-metal/ggml-metal-fusion.cpp:2",
    ]
    # a brace list of ops that is not a fusion (a loop over op kinds) is not reported
    assert not any("MUL_MAT" in g.name for g in scan.gaps)
    evidence_line = (tmp_path / "ggml/src/ggml-cuda/ggml-cuda.cu").read_text().splitlines()[11]
    assert "GGML_OP_RMS_NORM, GGML_OP_MUL, GGML_OP_ADD" in evidence_line


def test_partial_tree_without_cpu_backend_is_skipped(tmp_path: Path) -> None:
    scan, note = scan_tree(_tree(tmp_path, cpu=False))
    assert note.status == "skipped" and "ggml-cpu is missing" in note.detail and scan.gaps == []


def test_tree_without_ggml_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    scan, note = scan_tree(tmp_path)
    assert note.status == "skipped" and scan.backends == []


def test_cpu_target_files_are_existing_files(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert cpu_target_files(tmp_path) == ["ggml/src/ggml-cpu/ggml-cpu.c", "ggml/src/ggml-cpu/ops.cpp"]
    shutil.rmtree(tmp_path / "ggml")
    assert cpu_target_files(tmp_path) == ["ggml/src/ggml-cpu/"]


@pytest.mark.skipif(
    not os.environ.get("AUTORESEARCH_LLAMA_TREE"), reason="set AUTORESEARCH_LLAMA_TREE to a llama.cpp tree"
)
def test_real_llama_cpp_tree() -> None:
    scan, note = scan_tree(os.environ["AUTORESEARCH_LLAMA_TREE"])
    assert note.status == "ok" and "cpu" in scan.backends and "cuda" in scan.backends
    assert len(scan.ops["cpu"]) > 50
    assert any(g.kind == "fusion" and "cuda" in g.present_in for g in scan.gaps)
