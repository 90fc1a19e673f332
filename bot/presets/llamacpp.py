"""The llama.cpp preset: the driver's hooks in sky/llamacpp.py build llama-bench (and the tools validation
needs), check greedy tokens and KL divergence against the baseline, and report tg/pp tokens per second."""

from __future__ import annotations

from typing import Any

from .schema import Option

NAME = "llama.cpp"
# The driver's llama.cpp hooks (sky/llamacpp.py) build, validate and bench; these are for display/agent use.
DEFAULTS: dict[str, Any] = {
    "build": {
        "commands": [
            "cmake -B build -DCMAKE_BUILD_TYPE=Release",
            "cmake --build build -j --target llama-bench",
        ],
        # a cold llama.cpp build takes minutes: the local executor keeps a compiler cache filled from
        # baselines only (bot/experiments/executors.py, "shared compiler cache")
        "shared_cache": True,
    },
    "validate": {"commands": [], "compare_output": None},
    "benchmark": {
        "command": "llama-bench (preset)",
        "metrics": [
            {"name": "tg", "unit": "t/s", "higher_is_better": True},
            {"name": "pp", "unit": "t/s", "higher_is_better": True},
        ],
        "target": "tg",
        "repetitions": 3,
        "rounds": 10,
        "warmup": 1,
        "threads": 4,
    },
    "paths": {
        "allowed": ["ggml/src/ggml-cpu/**", "ggml/src/*.c", "ggml/src/*.cpp", "src/**"],
        "protected": [
            "tools/llama-bench/**",
            "tools/perplexity/**",
            "tools/completion/**",
            "tools/quantize/**",
            "tests/**",
            "scripts/**",
            "CMakeLists.txt",
        ],
        "hot": ["ggml/src/ggml-cpu/**"],
    },
}
# sky/llamacpp.py DEFAULTS mirrors these defaults (it runs on the VM without the bot)
OPTIONS: dict[str, Option] = {
    "model": Option(str, None, nullable=True, help="path or URL of a GGUF; null: a generated seeded model"),
    "n_prompt": Option(int, 64, minimum=1),
    "n_gen": Option(int, 32, minimum=1),
    "kl_max": Option(float, 0.01, minimum=0.0, maximum=100.0),
    "ctest": Option(bool, False),
    "quant": Option(str, "q4_0", nullable=True, help="quantize the generated model (f16 or empty: no)"),
    "bench_reps": Option(int, 3, minimum=1, help="llama-bench -r per invocation"),
}
HOOKS: str | None = "llamacpp"  # sky/llamacpp.py, shipped next to driver.py
REQUIRED: tuple[str, ...] = ()
LEGACY_SECTION: str | None = "llamacpp"  # the deprecated name of this preset's preset_options section
VM_PACKAGES: tuple[str, ...] = ("gguf", "numpy")  # sky/make_model.py generates the model with them
