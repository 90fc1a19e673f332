"""llama.cpp preset (sky/llamacpp.py, sky/make_model.py): parsers, commands, model generation.

Fast: no llama.cpp build. The real build/validate/bench path is proven by scripts/llamacpp_e2e.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

SKY = Path(__file__).resolve().parent.parent / "sky"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"sky_{name}", SKY / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


llamacpp = _load("llamacpp")
make_model = _load("make_model")

# Shape of `llama-bench -o json` (tools/llama-bench/llama-bench.cpp, json_printer): one object per test,
# fields from test::get_fields(), then samples_ns and samples_ts.
BENCH_JSON = """[
  {
    "build_commit": "3a34808",
    "build_number": 1,
    "cpu_info": "AMD EPYC 7B13",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "/w/llamacpp/random-llama-s1-q4_0.gguf",
    "model_type": "llama ?B Q4_0",
    "model_size": 1990656,
    "model_n_params": 2687232,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": 99,
    "n_cpu_moe": 0,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": -1,
    "devices": "auto",
    "tensor_split": "0.00",
    "tensor_buft_overrides": "none",
    "load_mode": "mmap",
    "lazy_mode": "off",
    "embeddings": false,
    "no_op_offload": 0,
    "no_host": false,
    "repack": true,
    "fit_target": 0,
    "fit_min_ctx": 0,
    "n_prompt": 64,
    "n_gen": 0,
    "n_depth": 0,
    "test_time": "2026-11-25T14:50:01Z",
    "avg_ns": 4000000,
    "stddev_ns": 1000000,
    "avg_ts": 16666.666667,
    "stddev_ts": 4166.666667,
    "samples_ns": [ 3200000, 4000000, 4800000 ],
    "samples_ts": [ 20000, 16000, 13333.3 ]
  },
  {
    "build_commit": "3a34808",
    "n_threads": 2,
    "n_prompt": 0,
    "n_gen": 32,
    "n_depth": 0,
    "avg_ns": 16000000,
    "stddev_ns": 0,
    "avg_ts": 2000.0,
    "stddev_ts": 0.0,
    "samples_ns": [ 16000000, 32000000 ],
    "samples_ts": [ 2000, 1000 ]
  }
]
"""

# Tail of `llama-perplexity --kl-divergence` (tools/perplexity/perplexity.cpp, kl_divergence()).
KLD_OUTPUT = """kl_divergence: computing over 6 chunks, n_ctx=128, batch_size=128, n_seq=1
chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS\
            Same top p
   1     259.1841 ±   12.3456      -0.00012 ±    0.00009       0.00021 ±    0.00002     0.123 ±  0.012 %\
    99.213 ±  1.102 %
   2     258.0012 ±    8.7654      -0.00010 ±    0.00006       0.00019 ±    0.00001     0.118 ±  0.009 %\
    99.606 ±  0.393 %

====== Perplexity statistics ======
Mean PPL(Q)                   : 258.001200 ±   8.765400
Mean PPL(base)                : 258.027000 ±   8.766100
Cor(ln(PPL(Q)), ln(PPL(base))):  99.99%
Mean ln(PPL(Q)/PPL(base))     :  -0.000100 ±   0.000060
Mean PPL(Q)/PPL(base)         :   0.999900 ±   0.000060
Mean PPL(Q)-PPL(base)         :  -0.025800 ±   0.015500

====== KL divergence statistics ======
Mean    KLD:   0.000190 ±   0.000010
Maximum KLD:   0.002811
99.9%   KLD:   0.002400
99.0%   KLD:   0.001100
Median  KLD:   0.000150
Minimum KLD:   0.000001

====== Token probability statistics ======
Mean    Δp: -0.001 ± 0.004 %
RMS Δp    :  0.118 ±  0.009 %
Same top p: 99.606 ± 0.393 %
"""


class FakeCtx:
    """The attributes of driver.Ctx that the preset reads, with a subprocess-free run()."""

    def __init__(self, workdir: Path, project: dict, ccache_env: dict | None = None):
        self.workdir, self.project, self.threads, self.seed = workdir, project, 2, 1
        self.ccache_env = ccache_env or {}
        self.env = {"PATH": f"{workdir / 'ccache-bin'}:/usr/local/bin:/usr/bin:/bin"}
        self.state: dict = {}
        self.baseline_worktree = None
        self.logs: list[str] = []

    def log(self, msg: str) -> None:
        self.logs.append(msg)


def test_bench_json_turns_raw_samples_into_tokens_per_second():
    got = llamacpp.parse_bench_json("llama-bench noise on stdout\n" + BENCH_JSON)
    assert got["pp"] == pytest.approx([64 / 0.0032, 64 / 0.004, 64 / 0.0048])
    assert got["tg"] == pytest.approx([2000.0, 1000.0])  # 32 tokens / 16 ms, / 32 ms; not avg_ts/stddev_ts
    assert set(got) == {"pp", "tg"}


def test_bench_json_combined_prompt_and_generation_is_its_own_metric():
    entry = {"n_prompt": 16, "n_gen": 16, "samples_ns": [1_000_000_000]}
    assert llamacpp.parse_bench_json(json.dumps([entry])) == {"pg": [32.0]}


@pytest.mark.parametrize(
    "text, message",
    [
        ("error: failed to load model", "no JSON array"),
        ("[]", "no test entries"),
        ('[{"n_prompt": 64, "n_gen": 0, "samples_ns": []}]', "without samples_ns"),
        ('[{"n_prompt": 64, "n_gen": 0, "samples_ns": [0]}]', "not a positive duration"),
        ('[{"n_prompt": 64, "n_gen": 0, "samples_ns": [1,]}]', "unreadable"),
    ],
)
def test_bench_json_errors_are_explicit(text, message):
    with pytest.raises(llamacpp.PresetError, match=message):
        llamacpp.parse_bench_json(text)


def test_kld_parser_reads_mean_and_companions():
    k = llamacpp.parse_kld(KLD_OUTPUT)
    assert k == pytest.approx(
        {"mean": 0.00019, "uncertainty": 0.00001, "max": 0.002811, "same_top_p": 99.606, "ppl": 258.0012}
    )


def test_kld_parser_nan_and_missing():
    assert llamacpp.parse_kld("Mean    KLD:        nan ±        nan\n")["mean"] != 0  # nan is kept (not 0)
    with pytest.raises(llamacpp.PresetError, match="Mean    KLD"):
        llamacpp.parse_kld("perplexity: you need at least 256 tokens to evaluate perplexity\n")


def test_options_defaults_and_bad_values():
    opts = llamacpp.options({"preset_options": {"n_gen": 16, "model": None}})
    assert (opts["n_prompt"], opts["n_gen"], opts["kl_max"], opts["quant"]) == (64, 16, 0.01, "q4_0")
    for bad in (
        {"n_gen": -1},
        {"kl_max": 0},
        {"n_prompt": "64"},
        {"n_prompt": 0, "n_gen": 0},
        {"bench_reps": 0},
    ):
        with pytest.raises(llamacpp.PresetError, match="preset_options"):
            llamacpp.options({"preset_options": bad})


def _tree(tmp_path: Path, tool_dir: str) -> Path:
    wt = tmp_path / "wt"
    (wt / tool_dir).mkdir(parents=True)
    (wt / tool_dir / "CMakeLists.txt").write_text("")
    return wt


@pytest.mark.parametrize(
    "tool_dir, tool",
    [
        ("tools/completion", "llama-completion"),
        ("examples/main", "llama-cli"),
        ("examples/simple", "llama-simple"),
    ],
)
def test_generation_tool_follows_the_tree(tmp_path, tool_dir, tool):
    wt = _tree(tmp_path, tool_dir)
    assert llamacpp.generator_tool(wt) == tool
    assert llamacpp.build_targets(wt) == ["llama-bench", tool, "llama-perplexity", "llama-quantize"]
    argv = llamacpp.generation_command(wt, Path("/m.gguf"), 2, 7)
    assert argv[0] == str(wt / "build" / "bin" / tool)
    if tool != "llama-simple":
        assert argv[argv.index("--temp") + 1] == "0" and argv[argv.index("--top-k") + 1] == "1"
        assert argv[argv.index("-t") + 1] == "2" and argv[argv.index("-s") + 1] == "7"
        assert "--ignore-eos" in argv and argv[argv.index("-n") + 1] == str(llamacpp.GEN_TOKENS)
    assert ("-no-cnv" in argv) == (tool == "llama-completion")


def test_cmake_configure_and_build_commands(tmp_path):
    wt = _tree(tmp_path, "tools/completion")
    conf = llamacpp.cmake_configure_args(wt, "/usr/bin/ccache", ctest=False, generator="Ninja")
    for flag in (
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGGML_NATIVE=ON",
        "-DLLAMA_CURL=OFF",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DGGML_CCACHE=OFF",
        "-DCMAKE_C_COMPILER_LAUNCHER=/usr/bin/ccache",
    ):
        assert flag in conf
    assert conf[conf.index("-B") + 1] == str(wt / "build") and conf[conf.index("-G") + 1] == "Ninja"
    assert "-DLLAMA_BUILD_TESTS=ON" in llamacpp.cmake_configure_args(wt, None, ctest=True, generator=None)
    assert "-G" not in llamacpp.cmake_configure_args(wt, None, ctest=False, generator=None)
    b = llamacpp.cmake_build_args(wt, 8, ctest=False)
    assert b[:6] == ["cmake", "--build", str(wt / "build"), "-j", "8", "--target"]
    assert b[6:] == ["llama-bench", "llama-completion", "llama-perplexity", "llama-quantize"]
    assert "--target" not in llamacpp.cmake_build_args(wt, 8, ctest=True)


def test_build_env_swaps_masquerade_for_launcher(tmp_path):
    ctx = FakeCtx(tmp_path, {}, {"CCACHE_BIN": "/usr/bin/ccache", "CCACHE_DIR": "/c"})
    extra, ccache = llamacpp.build_env(ctx)
    assert ccache == "/usr/bin/ccache"
    assert extra["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert llamacpp.build_env(FakeCtx(tmp_path, {})) == ({}, None)


def test_bench_and_perplexity_commands(tmp_path):
    wt = tmp_path / "wt"
    opts = llamacpp.options({"preset_options": {"n_prompt": 32, "n_gen": 8, "bench_reps": 5}})
    b = llamacpp.bench_command(wt, Path("/m.gguf"), opts, 3)
    assert b == [
        str(wt / "build/bin/llama-bench"),
        "-o",
        "json",
        "-m",
        "/m.gguf",
        "-p",
        "32",
        "-n",
        "8",
        "-t",
        "3",
        "-r",
        "5",
    ]
    base = llamacpp.perplexity_command(wt, Path("/m"), Path("/c.txt"), Path("/l.kld"), 2, compare=False)
    cmp_ = llamacpp.perplexity_command(wt, Path("/m"), Path("/c.txt"), Path("/l.kld"), 2, compare=True)
    assert base[base.index("--kl-divergence-base") + 1] == "/l.kld" and "--kl-divergence" not in base
    assert cmp_[-1] == "--kl-divergence" and cmp_[cmp_.index("-c") + 1] == str(llamacpp.PPL_CTX)


def test_corpus_is_deterministic_and_long_enough_for_kld_statistics():
    a, b = llamacpp.corpus_text(1), llamacpp.corpus_text(1)
    assert a == b and a != llamacpp.corpus_text(2)
    # perplexity scores n_ctx/2 - 1 tokens per chunk; KLD statistics need >= 100 values
    assert len(a.encode()) >= llamacpp.PPL_CHUNKS * llamacpp.PPL_CTX
    assert llamacpp.PPL_CHUNKS * (llamacpp.PPL_CTX // 2 - 1) >= 100


def test_first_difference_reports_position():
    msg = llamacpp.first_difference(b"abcdef", b"abXdef")
    assert "at token/byte 2" in msg and "lengths 6 vs 6" in msg


def test_make_model_writes_readable_llama_gguf(tmp_path):
    gguf = pytest.importorskip("gguf", reason="gguf is a declared dependency ([llama] extra)")
    shape = make_model.ModelShape(n_embd=64, n_layer=2, n_head=2, n_ff=96, n_ctx=64)
    digest = make_model.write_model(tmp_path / "a.gguf", seed=3, shape=shape)
    assert digest == hashlib.sha256((tmp_path / "a.gguf").read_bytes()).hexdigest()
    assert make_model.write_model(tmp_path / "b.gguf", seed=3, shape=shape) == digest
    assert make_model.write_model(tmp_path / "c.gguf", seed=4, shape=shape) != digest
    r = gguf.GGUFReader(str(tmp_path / "a.gguf"))
    field = r.fields["general.architecture"]
    assert bytes(field.parts[field.data[0]]).decode() == "llama"
    model = r.fields["tokenizer.ggml.model"]
    assert bytes(model.parts[model.data[0]]).decode() == "llama"
    assert len(r.fields["tokenizer.ggml.tokens"].data) == 259
    assert int(r.fields["llama.block_count"].parts[-1][0]) == 2
    names = {t.name: t for t in r.tensors}
    expected = dict(make_model.tensor_shapes(shape, 259))
    assert set(names) == set(expected)
    q = names["blk.1.ffn_down.weight"]
    assert list(q.shape) == [96, 64]  # GGUF ne order: (ne0=n_ff, ne1=n_embd)
    w = names["blk.0.attn_q.weight"].data.astype("float32")
    assert 0.03 < float(w.std()) < 0.07


def test_make_model_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        make_model.write_model(tmp_path / "x.gguf", shape=make_model.ModelShape(n_embd=64, n_head=3))
    assert make_model.main([str(tmp_path / "y.gguf"), "--n-ff", "100"]) == 2
    assert not (tmp_path / "y.gguf").exists()


def test_prepare_generates_model_and_corpus_once(tmp_path):
    pytest.importorskip("gguf", reason="gguf is a declared dependency ([llama] extra)")
    ctx = FakeCtx(tmp_path, {"preset": "llama.cpp", "preset_options": {"model": None}})
    ctx.seed = 5
    llamacpp.prepare(ctx)
    model = Path(ctx.state["llamacpp_source_model"])
    assert model.name == "random-llama-e512-l8-s5-f16.gguf" and model.stat().st_size > 1_000_000
    corpus = tmp_path / "llamacpp" / "corpus.txt"
    assert corpus.read_text() == llamacpp.corpus_text(5)
    mtime = model.stat().st_mtime_ns
    llamacpp.prepare(ctx)
    assert model.stat().st_mtime_ns == mtime
    # quantizing needs the baseline's llama-quantize; without a built baseline that is a clear error
    with pytest.raises(llamacpp.PresetError, match="llama-quantize"):
        llamacpp.run_model(ctx)


def test_prepare_rejects_missing_model_file(tmp_path):
    ctx = FakeCtx(tmp_path, {"preset_options": {"model": "nope/model.gguf"}})
    with pytest.raises(llamacpp.PresetError, match="no such file"):
        llamacpp.prepare(ctx)


def test_output_completeness_markers():
    # llama-completion's stdout ends with LOG("\n\n"); the async logger may drop it at exit -> rerun
    assert llamacpp.generation_complete("llama-completion", b"abc\n\n")
    assert not llamacpp.generation_complete("llama-completion", b"abc")
    assert not llamacpp.generation_complete("llama-cli", b"")
    assert llamacpp.generation_complete("llama-simple", b"abc")
    assert llamacpp.kld_complete(KLD_OUTPUT)
    assert not llamacpp.kld_complete(KLD_OUTPUT.split("====== Token")[0])


def test_make_model_token_embeddings_dominate_residual(tmp_path):
    gguf = pytest.importorskip("gguf", reason="gguf is a declared dependency ([llama] extra)")
    shape = make_model.ModelShape(n_embd=64, n_layer=1, n_head=2, n_ff=64, n_ctx=64)
    make_model.write_model(tmp_path / "m.gguf", seed=1, shape=shape, f16=False)
    t = {x.name: x for x in gguf.GGUFReader(str(tmp_path / "m.gguf")).tensors}
    assert 0.8 < float(t["token_embd.weight"].data.std()) < 1.2
    assert str(t["output.weight"].data.dtype) == "float32"


class ScriptedCtx(FakeCtx):
    """FakeCtx whose run() replays prepared llama-perplexity outputs (the binaries are not built in CI)."""

    def __init__(self, workdir: Path, outputs: list[str], kl_max: float = 0.01):
        super().__init__(workdir, {"preset_options": {"kl_max": kl_max}})
        self.outputs, self.calls = list(outputs), []

    def run(self, cmd, cwd, timeout=0, pin=False, extra_env=None):
        self.calls.append(cmd)
        return 0, self.outputs.pop(0)


def _refs(tmp_path: Path) -> dict:
    return {"model": str(tmp_path / "m.gguf"), "kld_base": str(tmp_path / "l.kld"), "generation": ""}


def test_kld_check_retries_output_lost_by_the_async_logger(tmp_path):
    truncated = KLD_OUTPUT.split("====== Perplexity")[0]
    ctx = ScriptedCtx(tmp_path, [truncated, truncated, KLD_OUTPUT])
    check = llamacpp.check_kld(tmp_path / "wt", _refs(tmp_path), ctx)
    assert check["ok"] and len(ctx.calls) == 3
    assert "mean KLD 0.00019" in check["detail"] and "bound 0.01" in check["detail"]
    assert ctx.calls[0][-1] == "--kl-divergence" and "--kl-divergence-base" in ctx.calls[0]


def test_kld_check_rejects_divergence_over_bound_and_gives_up_on_missing_stats(tmp_path):
    broken = KLD_OUTPUT.replace("Mean    KLD:   0.000190", "Mean    KLD:   0.367940")
    check = llamacpp.check_kld(tmp_path / "wt", _refs(tmp_path), ScriptedCtx(tmp_path, [broken]))
    assert not check["ok"] and "0.36794" in check["detail"]
    truncated = KLD_OUTPUT.split("====== Perplexity")[0]
    ctx = ScriptedCtx(tmp_path, [truncated] * llamacpp.ATTEMPTS)
    check = llamacpp.check_kld(tmp_path / "wt", _refs(tmp_path), ctx)
    assert not check["ok"] and f"{llamacpp.ATTEMPTS} attempts" in check["detail"]


def test_sync_tree_rewrites_only_changed_files_and_deletes_vanished_ones(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "shared"
    (src / "ggml" / "src").mkdir(parents=True)
    (src / "build" / "bin").mkdir(parents=True)
    (src / "ggml" / "src" / "ops.cpp").write_text("int ops;\n")
    (src / "ggml" / "src" / "vec.cpp").write_text("int vec;\n")
    (src / "build" / "bin" / "stale").write_text("not a source")
    (src / ".git").write_text("gitdir: elsewhere\n")
    (src / "tool.sh").write_text("#!/bin/sh\n")
    (src / "tool.sh").chmod(0o755)
    first = llamacpp.sync_tree(src, dst)
    assert sorted(first) == ["ggml/src/ops.cpp", "ggml/src/vec.cpp", "tool.sh"]
    assert (
        not (dst / "build").exists()
        and not (dst / ".git").exists()
        and (dst / "tool.sh").stat().st_mode & 0o100
    )
    before = (dst / "ggml" / "src" / "vec.cpp").stat().st_mtime_ns
    assert llamacpp.sync_tree(src, dst) == []  # identical content: nothing touched
    (src / "ggml" / "src" / "ops.cpp").write_text("int ops2;\n")  # a one-file candidate
    (src / "tool.sh").unlink()
    assert llamacpp.sync_tree(src, dst) == ["ggml/src/ops.cpp", "tool.sh"]
    assert (dst / "ggml" / "src" / "ops.cpp").read_text() == "int ops2;\n" and not (dst / "tool.sh").exists()
    assert (dst / "ggml" / "src" / "vec.cpp").stat().st_mtime_ns == before  # unchanged file keeps its mtime


def test_variants_build_in_one_shared_tree_per_isa_and_get_their_own_binaries(tmp_path):
    ctx = FakeCtx(tmp_path / "work", {"preset": "llama.cpp"})
    ctx.workdir.mkdir()
    calls = []

    def run(cmd, cwd, timeout=0, pin=False, extra_env=None):
        calls.append(list(cmd))
        if cmd[:2] == ["cmake", "--build"]:
            bindir = Path(cmd[2]) / "bin"
            bindir.mkdir(parents=True, exist_ok=True)
            for tool in cmd[cmd.index("--target") + 1 :]:
                (bindir / tool).write_text(f"{tool} built from {(Path(cmd[2]).parent / 'src.c').read_text()}")
        else:
            (Path(cmd[cmd.index("-B") + 1])).mkdir(parents=True, exist_ok=True)
            (Path(cmd[cmd.index("-B") + 1]) / "CMakeCache.txt").write_text("")
        return 0, "ok"

    ctx.run = run
    trees = {}
    for name, code in (("baseline", "A"), ("cand", "B")):
        wt = trees[name] = tmp_path / name
        (wt / "tools" / "completion").mkdir(parents=True)
        (wt / "tools" / "completion" / "CMakeLists.txt").write_text("")
        (wt / "src.c").write_text(code)
        ok, log = llamacpp.build(wt, ctx)
        assert ok, log
        ok, log = llamacpp.simulate_build(wt, ctx)
        assert ok, log
    configures = [c for c in calls if c[:2] == ["cmake", "-S"]]
    assert len(configures) == 2  # once per ISA, not once per variant
    assert {c[c.index("-S") + 1] for c in configures} == {
        str(llamacpp.shared_tree(ctx, "build")),
        str(llamacpp.shared_tree(ctx, "build-sim")),
    }
    assert "-DGGML_NATIVE=OFF" in next(c for c in configures if c[c.index("-B") + 1].endswith("build-sim"))
    for name, code in (("baseline", "A"), ("cand", "B")):
        assert (trees[name] / "build" / "bin" / "llama-bench").read_text() == f"llama-bench built from {code}"
        assert (
            trees[name] / "build-sim" / "bin" / "llama-bench"
        ).read_text() == f"llama-bench built from {code}"
        assert not (trees[name] / "build-sim" / "bin" / "llama-quantize").exists()


def test_simulate_command_runs_every_variant_from_one_path(tmp_path):
    ctx = FakeCtx(tmp_path / "work", {"preset": "llama.cpp"})
    ctx.state["llamacpp_model"] = str(tmp_path / "m.gguf")
    argvs = []
    for name in ("baseline", "a-much-longer-candidate-name"):
        exe = tmp_path / "wt" / name / "build-sim" / "bin" / "llama-bench"
        exe.parent.mkdir(parents=True)
        exe.write_text(f"binary of {name}")
        argvs.append(llamacpp.simulate_command(tmp_path / "wt" / name, ctx))
        assert (
            Path(argvs[-1][3]).read_text() == f"binary of {name}"
        )  # this variant's binary, at the shared path
    shared = tmp_path / "work" / "llamacpp" / "simulate" / "bin"
    assert argvs[0] == argvs[1] and argvs[0][:4] == ["env", "-C", str(shared), str(shared / "llama-bench")]
    a = argvs[0]
    assert a[a.index("-t") + 1] == "1" and a[a.index("-p") + 1] == "8" and a[a.index("-n") + 1] == "8"
    assert "-DGGML_AVX512=OFF" in llamacpp.portable_isa_flags("x86_64")
    assert "-DGGML_NATIVE=OFF" in llamacpp.portable_isa_flags("aarch64")


def test_kld_check_falls_back_to_the_running_mean_when_the_logger_lost_the_summary(tmp_path):
    # real output of a busy 2-core machine: five of six chunks printed, the summary lost in all attempts
    lost = (
        KLD_OUTPUT.split("\n\n====== Perplexity statistics")[0]
        .replace("   2     258.0012", "   2     258.0012")
        .replace("kl_divergence: computing over 6 chunks", "x")
        + "\n"
    )
    rows = "\n".join(
        f"   {i}     517.2985 ±   30.8033      -0.00000 ±    0.00002       0.00042 ±    0.00001"
        f"     0.000 ±  0.000 %    100.000 ±  0.000 %"
        for i in range(1, 6)
    )
    assert llamacpp.parse_kld_chunks(lost)["chunks"] == 2
    got = llamacpp.parse_kld_chunks(rows + "\n")
    assert got == {"mean": 0.00042, "uncertainty": 0.00001, "chunks": 5}
    ctx = FakeCtx(tmp_path, {"preset": "llama.cpp", "preset_options": {"kl_max": 0.01}})
    ctx.run = lambda argv, cwd, timeout=0, pin=False, extra_env=None: (0, "header\n" + rows + "\n")
    check = llamacpp.check_kld(tmp_path, {"model": "/m", "kld_base": "/l.kld"}, ctx)
    assert check["ok"] and "running mean after chunk 5 of 6" in check["detail"]
    ctx.run = lambda argv, cwd, timeout=0, pin=False, extra_env=None: (
        0,
        "header\n" + rows.splitlines()[0] + "\n",
    )
    assert not llamacpp.check_kld(tmp_path, {"model": "/m", "kld_base": "/l.kld"}, ctx)[
        "ok"
    ]  # 1 of 6: too few
    big = rows.replace("0.00042", "0.37000")
    ctx.run = lambda argv, cwd, timeout=0, pin=False, extra_env=None: (0, "header\n" + big + "\n")
    assert not llamacpp.check_kld(tmp_path, {"model": "/m", "kld_base": "/l.kld"}, ctx)[
        "ok"
    ]  # over the bound
