"""Shared by the end-to-end tests of the agent path (tests/test_e2e_agent.py, tests/test_e2e_waves.py): the
edits the scripted models make to the attention example (examples/attention), each an exact (old, new) pair
of src/ text (the i-k-j matmul; the fused softmax), and running an issue to the end of its run."""

from __future__ import annotations

import time
from typing import Any

MATMUL_OLD = """        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < k; p++) {
                acc += a[i * k + p] * b[p * n + j];
            }
            c[i * n + j] = acc;
        }"""
MATMUL_NEW = """        float *crow = c + i * n;
        for (size_t j = 0; j < n; j++) {
            crow[j] = 0.0f;
        }
        for (size_t p = 0; p < k; p++) {
            const float aip = a[i * k + p];
            const float *brow = b + p * n;
            for (size_t j = 0; j < n; j++) {
                crow[j] += aip * brow[j];
            }
        }"""
SOFTMAX_OLD = """    float sum = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        sum += attn_expf(x[j] - max);
    }
    for (size_t j = 0; j < cols; j++) {
        out[j] = attn_expf(x[j] - max) / sum;
    }"""
SOFTMAX_NEW = """    float sum = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        float e = attn_expf(x[j] - max);
        out[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (size_t j = 0; j < cols; j++) {
        out[j] *= inv;
    }"""


def run_issue(world: Any, title: str, body: str, timeout_s: float, events: int = 5) -> tuple[Any, Any, int]:
    """Open and label an issue in the demo `world` (bot started), wait until its run is over; (store, run,
    issue number). The run must have ended "done" (else its last `events` events are shown)."""
    store = world.bot.store
    number = world.open_issue(title, body)
    world.label(number)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs and not runs[0].active:
            break
        time.sleep(0.5)
    run = store.list_runs()[0]
    assert run.state == "done", (run, store.events(run.id)[-events:])
    return store, run, number
