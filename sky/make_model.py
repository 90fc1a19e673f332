#!/usr/bin/env python3
"""Write a small llama-architecture GGUF with seeded random weights (for benchmarking llama.cpp).

    python3 make_model.py OUT.gguf [--seed 1] [--n-embd 256] [--n-layer 4] [--n-head 4] [--n-ff 512]
        [--ctx 512]

The vocabulary is a byte-level SentencePiece ("llama") vocabulary: <unk>, <s>, </s> and the 256 byte tokens
<0x00>..<0xFF>, so any text tokenizes (one token per byte) and generated text maps 1:1 to token ids.
Same arguments -> byte-identical file. Needs the `gguf` and `numpy` packages (the rest of sky/ is
stdlib-only).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
from pathlib import Path

import gguf
import numpy as np

ARCH = "llama"
N_SPECIAL = 3  # <unk>, <s>, </s>


@dataclasses.dataclass(frozen=True)
class ModelShape:
    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_head_kv: int = 0  # 0 -> n_head (no GQA)
    n_ff: int = 512
    n_ctx: int = 512
    std: float = 0.05  # weight matrices
    embd_std: float = 1.0  # token embeddings: token identity dominates the residual stream, so greedy
    # output follows the context instead of collapsing to one token

    def check(self) -> None:
        if min(self.n_embd, self.n_layer, self.n_head, self.n_ff, self.n_ctx) <= 0 or self.n_head_kv < 0:
            raise ValueError("all sizes must be positive")
        if self.n_embd % self.n_head or self.n_head % self.kv_heads:
            raise ValueError("n_embd must be divisible by n_head, and n_head by n_head_kv")
        if self.n_embd % 32 or self.n_ff % 32:
            raise ValueError("n_embd and n_ff must be multiples of 32 (quantization block size)")

    @property
    def kv_heads(self) -> int:
        return self.n_head_kv or self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def byte_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types of the byte-level SPM vocabulary."""
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * len(tokens)
    types = [int(gguf.TokenType.UNKNOWN), int(gguf.TokenType.CONTROL), int(gguf.TokenType.CONTROL)]
    types += [int(gguf.TokenType.BYTE)] * 256
    return tokens, scores, types


def tensor_shapes(shape: ModelShape, n_vocab: int) -> list[tuple[str, tuple[int, ...]]]:
    """(name, numpy shape) in file order; numpy shape is (rows, cols) = (ne1, ne0)."""
    e, ff, kv = shape.n_embd, shape.n_ff, shape.head_dim * shape.kv_heads
    out = [("token_embd.weight", (n_vocab, e))]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (e,)),
            (p + "attn_q.weight", (e, e)),
            (p + "attn_k.weight", (kv, e)),
            (p + "attn_v.weight", (kv, e)),
            (p + "attn_output.weight", (e, e)),
            (p + "ffn_norm.weight", (e,)),
            (p + "ffn_gate.weight", (ff, e)),
            (p + "ffn_up.weight", (ff, e)),
            (p + "ffn_down.weight", (e, ff)),
        ]
    out += [("output_norm.weight", (e,)), ("output.weight", (n_vocab, e))]
    return out


def write_model(path: Path, seed: int = 1, shape: ModelShape = ModelShape(), f16: bool = True) -> str:
    """Write the GGUF to `path` (atomically); return its sha256."""
    shape.check()
    tokens, scores, types = byte_vocab()
    rng = np.random.default_rng(seed)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), ARCH)
    w.add_name(f"autoresearch-random-llama-s{seed}")
    w.add_context_length(shape.n_ctx)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(shape.head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    for name, dims in tensor_shapes(shape, len(tokens)):
        if len(dims) == 1:  # norms: ones plus a little noise, always f32
            data = (1.0 + 0.01 * rng.standard_normal(dims)).astype(np.float32)
        else:
            std = shape.embd_std if name == "token_embd.weight" else shape.std
            data = (std * rng.standard_normal(dims)).astype(np.float16 if f16 else np.float32)
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)
    return sha256_file(path)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-embd", type=int, default=ModelShape.n_embd)
    ap.add_argument("--n-layer", type=int, default=ModelShape.n_layer)
    ap.add_argument("--n-head", type=int, default=ModelShape.n_head)
    ap.add_argument("--n-head-kv", type=int, default=0, help="default: n_head")
    ap.add_argument("--n-ff", type=int, default=ModelShape.n_ff)
    ap.add_argument("--ctx", type=int, default=ModelShape.n_ctx)
    ap.add_argument("--std", type=float, default=ModelShape.std)
    ap.add_argument("--embd-std", type=float, default=ModelShape.embd_std)
    ap.add_argument("--f32", action="store_true", help="f32 weights instead of f16")
    a = ap.parse_args(argv)
    shape = ModelShape(
        n_embd=a.n_embd,
        n_layer=a.n_layer,
        n_head=a.n_head,
        n_head_kv=a.n_head_kv,
        n_ff=a.n_ff,
        n_ctx=a.ctx,
        std=a.std,
        embd_std=a.embd_std,
    )
    try:
        digest = write_model(a.out, seed=a.seed, shape=shape, f16=not a.f32)
    except ValueError as e:
        print(f"make_model: {e}", file=sys.stderr)
        return 2
    print(f"{a.out} sha256={digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
