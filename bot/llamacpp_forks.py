"""The llama.cpp demo's fork edits (`demo --llama`, scripts/llamacpp_e2e.py), as data: each a list of
(path, anchor, replacement) applied to a checkout of the fetched llama.cpp source (scripts/fetch_llamacpp.sh).

Here in the package so that bot.demo needs no script loaded by path: scripts/ import this module, never the
other way round. Stdlib only.
"""

from __future__ import annotations

from pathlib import Path

SLOW_PATCH = (
    """                ggml_float sum = 0.0;
                // worth switching to explicit SIMD?
                for (int64_t i00 = 0; i00 < ne00; i00++) {
                    sum += (ggml_float)(x[i00] * x[i00]);
                }
""",
    """                ggml_float sum = 0.0;
                // worth switching to explicit SIMD?
                for (int rep = 0; rep < 12; rep++) {
                    volatile ggml_float redo = 0.0;
                    for (int64_t i00 = 0; i00 < ne00; i00++) {
                        redo = redo + (ggml_float)(x[i00] * x[i00]);
                    }
                    sum = redo;
                }
""",
)
BAD_PATCH = ("const float scale = 1.0f/sqrtf(mean + eps);", "const float scale = 1.0f/(mean + eps);")
OPS = "ggml/src/ggml-cpu/ops.cpp"
GEMV_OFFSET_FN = r"""#if defined(__AVX2__) || defined(__AVX512F__)
// q4_0 x q8_0 GEMV without the sign lookup: the repacked nibbles hold q ^ 8 (make_block_q4_0x8's xor mask),
// so u = nibble ^ 8 is the unsigned quant (0..15) and the weight is u - 8. The unsigned u multiplies the
// signed q8_0 values directly (maddubs / dpbusd: no sign fix-up per product), and 8 * sum(q8_0 block) is
// subtracted once per block: dot(u - 8, y) = dot(u, y) - 8 * sum(y). Integer-exact: the LUT kernel's sums.
#define GEMV_Q4_0_OFFSET_MAX_NB 512
static void gemv_q4_0_8x8_q8_0_offset_avx(int n, float * GGML_RESTRICT s, size_t bs,
        const void * GGML_RESTRICT vx, const void * GGML_RESTRICT vy, int nr, int nc) {
    const int qk = QK8_0;
    const int nb = n / qk;

    UNUSED(bs);

    const __m256i finalpermutemask = _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0);
    const __m256i m4b = _mm256_set1_epi8(0x0F);
    const __m256i m8b = _mm256_set1_epi8(0x08);
    const __m128i changemask = _mm_set_epi8(15, 14, 7, 6, 13, 12, 5, 4, 11, 10, 3, 2, 9, 8, 1, 0);

    const block_q4_0x8 * b_ptr_start = (const block_q4_0x8 *) vx;
    const block_q8_0   * a_ptr_start = (const block_q8_0 *) vy;

    int32_t ysum[GEMV_Q4_0_OFFSET_MAX_NB];   // the caller keeps nb within this
    GGML_ASSERT(nb <= GEMV_Q4_0_OFFSET_MAX_NB);

    for (int64_t y = 0; y < nr; y++) {
        const block_q8_0 * a_ptr = a_ptr_start + (y * nb);

        // 8 * the sum of each q8_0 block of this row, once for all column groups
        for (int64_t b = 0; b < nb; b++) {
            int32_t sum = 0;
            for (int i = 0; i < QK8_0; i++) {
                sum += a_ptr[b].qs[i];
            }
            ysum[b] = 8 * sum;
        }

        for (int64_t x = 0; x < nc / 8; x++) {
            const block_q4_0x8 * b_ptr = b_ptr_start + (x * nb);

            __m256 acc_row = _mm256_setzero_ps();

            for (int64_t b = 0; b < nb; b++) {
                const __m256i raw_0123_0 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs));
                const __m256i raw_4567_0 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs) + 1);
                const __m256i raw_0123_1 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs) + 2);
                const __m256i raw_4567_1 = _mm256_loadu_si256((const __m256i *)(b_ptr[b].qs) + 3);

                // unsigned quants 0..15
                const __m256i r0123_0 = _mm256_xor_si256(_mm256_and_si256(raw_0123_0, m4b), m8b);
                const __m256i r4567_0 = _mm256_xor_si256(_mm256_and_si256(raw_4567_0, m4b), m8b);
                const __m256i r0123_1 = _mm256_xor_si256(_mm256_and_si256(raw_0123_1, m4b), m8b);
                const __m256i r4567_1 = _mm256_xor_si256(_mm256_and_si256(raw_4567_1, m4b), m8b);
                const __m256i r0123_2 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_0123_0, 4), m4b), m8b);
                const __m256i r4567_2 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_4567_0, 4), m4b), m8b);
                const __m256i r0123_3 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_0123_1, 4), m4b), m8b);
                const __m256i r4567_3 =
                    _mm256_xor_si256(_mm256_and_si256(_mm256_srli_epi16(raw_4567_1, 4), m4b), m8b);

                const __m256 col_scale_f32 = GGML_F32Cx8_REARRANGE_LOAD(b_ptr[b].d, changemask);
                const __m256 row_scale_f32 = _mm256_set1_ps(GGML_CPU_FP16_TO_FP32(a_ptr[b].d));

                __m256i lhs_0 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a_ptr[b].qs));
                __m256i lhs_1 = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(a_ptr[b].qs + 16)));
                lhs_0 = _mm256_permute2f128_si256(lhs_0, lhs_0, 0);
                lhs_1 = _mm256_permute2f128_si256(lhs_1, lhs_1, 0);

                // every lane starts at -8 * sum(y) and accumulates dot(u, y) of its column
                __m256i iacc = _mm256_set1_epi32(-ysum[b]);
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_0, _mm256_shuffle_epi32(r4567_0, 177), 170),
                    _mm256_shuffle_epi32(lhs_0, 0));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_0, 177), r4567_0, 170),
                    _mm256_shuffle_epi32(lhs_0, 85));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_1, _mm256_shuffle_epi32(r4567_1, 177), 170),
                    _mm256_shuffle_epi32(lhs_0, 170));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_1, 177), r4567_1, 170),
                    _mm256_shuffle_epi32(lhs_0, 255));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_2, _mm256_shuffle_epi32(r4567_2, 177), 170),
                    _mm256_shuffle_epi32(lhs_1, 0));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_2, 177), r4567_2, 170),
                    _mm256_shuffle_epi32(lhs_1, 85));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(r0123_3, _mm256_shuffle_epi32(r4567_3, 177), 170),
                    _mm256_shuffle_epi32(lhs_1, 170));
                iacc = mul_sum_us8_pairs_acc_int32x8(iacc,
                    _mm256_blend_epi32(_mm256_shuffle_epi32(r0123_3, 177), r4567_3, 170),
                    _mm256_shuffle_epi32(lhs_1, 255));

                const __m256 scale = _mm256_mul_ps(col_scale_f32, row_scale_f32);
                acc_row = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc), scale, acc_row);
            }

            acc_row = _mm256_permutevar8x32_ps(acc_row, finalpermutemask);
            _mm256_storeu_ps(s + (y * nr + x * 8), acc_row);
        }
    }
}
#endif

"""
REPACK = "ggml/src/ggml-cpu/arch/x86/repack.cpp"
# A real CPU-backend optimization (ours, applied to the fetched tree at run time): the decode GEMV of the
# repacked q4_0 weights multiplies unsigned nibbles by the signed q8_0 activations (maddubs / dpbusd) and
# subtracts the q4_0 offset once per block, instead of sign-extending through a lookup and fixing signs per
# product. Integer-exact. List of (path, anchor, replacement) edits, each anchor found exactly once.
GEMV_ANCHOR = (
    "void ggml_gemv_q4_0_8x8_q8_0(int n, float * GGML_RESTRICT s, size_t bs, "
    "const void * GGML_RESTRICT vx, const void * GGML_RESTRICT vy, int nr, int nc) {\n"
)
GEMV_CALL = "        gemv_q4_b32_8x8_q8_0_lut_avx<block_q4_0x8>(n, s, bs, vx, vy, nr, nc, signextendlut);\n"
FAST_GEMV_EDITS = [
    (REPACK, GEMV_ANCHOR, GEMV_OFFSET_FN + GEMV_ANCHOR),
    (
        REPACK,
        GEMV_CALL,
        "        if (n / QK8_0 <= GEMV_Q4_0_OFFSET_MAX_NB) {\n"
        "            gemv_q4_0_8x8_q8_0_offset_avx(n, s, bs, vx, vy, nr, nc);\n"
        "        } else {\n    " + GEMV_CALL + "        }\n",
    ),
]


def apply_edits(tree: Path, edits: list[tuple[str, str, str]]) -> None:
    """Apply (path, anchor, replacement) edits to a checkout; each anchor must occur exactly once."""
    for path, old, new in edits:
        f = Path(tree) / path
        text = f.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"edit anchor not found exactly once in {path}: {old[:80]!r}")
        f.write_text(text.replace(old, new, 1))


# Work-splitting edits of ggml-cpu's repacked matrix multiplication (forward_mul_mat in repack.cpp, the GEMM
# and GEMV of the demo's q4_0 model). The simulated run is one thread, where thread 0 walks every chunk either
# way: they change nothing the simulator sees and everything at -t 2 or more (scripts/llamacpp_threads.py).
REPACK_MM = "ggml/src/ggml-cpu/repack.cpp"
SPLIT_ANCHOR = """        // The first chunk comes from our thread_id, the rest will get auto-assigned.
        int current_chunk = ith;

        while (current_chunk < nchunk0 * nchunk1) {"""
SPLIT_NEXT = """                current_chunk = ggml_threadpool_chunk_add(params->threadpool, 1);
                continue;
            }

            forward_mul_mat_one_chunk(params, dst, src0_start, src0_end, src1_start, src1_end);

            current_chunk = ggml_threadpool_chunk_add(params->threadpool, 1);
        }"""
# regression: thread 0 takes every chunk in order, the others go straight to the next barrier
SERIAL_CHUNKS_EDITS = [
    (
        REPACK_MM,
        SPLIT_ANCHOR,
        """        // Thread 0 walks every chunk in order; the other threads wait at the next barrier.
        int current_chunk = ith == 0 ? 0 : (int) (nchunk0 * nchunk1);

        while (current_chunk < nchunk0 * nchunk1) {""",
    ),
    (
        REPACK_MM,
        SPLIT_NEXT,
        """                current_chunk++;
                continue;
            }

            forward_mul_mat_one_chunk(params, dst, src0_start, src0_end, src1_start, src1_end);

            current_chunk++;
        }""",
    ),
]
# A/A in the same code: an equivalent rewrite of the first chunk's index (the compiler emits the same code),
# so the diff scan flags it as a threading change and the wall tier decides it: it must never be a winner
SPLIT_AA_EDITS = [
    (
        REPACK_MM,
        SPLIT_ANCHOR,
        SPLIT_ANCHOR.replace("int current_chunk = ith;", "int current_chunk = ith + 0;"),
    ),
]


# The forks of `demo --llama` (and of tests/test_llamacpp_ci.py, and what scripts/upgrade_llamacpp.sh
# re-checks on a new llama.cpp): login -> (edits, commit message, the target-metric verdicts it must get).
# hana is the planted winner, fiona the planted slowdown, felix the planted bug, gina a neutral change.
DEMO_FORKS: dict[str, tuple[list[tuple[str, str, str]], str, tuple[str, ...]]] = {
    "hana": (
        FAST_GEMV_EDITS,
        "ggml-cpu: q4_0 GEMV multiplies unsigned nibbles, one offset per "
        "block (no sign lookup, no per-product sign fix-up)",
        ("faster",),
    ),
    "fiona": (
        [(OPS, *SLOW_PATCH)],
        "ggml-cpu: rms_norm recomputes its sum (deliberately slower)",
        ("slower",),
    ),
    "felix": (
        [(OPS, *BAD_PATCH)],
        "ggml-cpu: rms_norm without the square root (faster, wrong)",
        ("broken",),
    ),
    "gina": (
        [(OPS, "// worth switching to explicit SIMD?", "// worth switching to explicit SIMD? (gina)")],
        "ggml-cpu: comment only (neutral)",
        ("no_change", "noisy"),
    ),
}
WINNERS = ("hana",)  # the forks that must end up among the run's winners (and in its draft PR)


def check_edits(tree: Path) -> list[str]:
    """Which demo fork edits do not apply to `tree` (each anchor exactly once), without changing it."""
    problems = []
    for login, (edits, _msg, _want) in DEMO_FORKS.items():
        texts: dict[str, str] = {}
        for path, old, new in edits:
            f = Path(tree) / path
            if path not in texts:
                texts[path] = f.read_text() if f.exists() else ""
            n = texts[path].count(old)
            if n != 1:
                problems.append(f"{login}: anchor found {n} times in {path}: {old.strip()[:70]!r}")
            else:
                texts[path] = texts[path].replace(old, new, 1)
    return problems
