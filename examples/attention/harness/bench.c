/* Benchmark harness: one invocation = one sample. Prints `METRIC name=value` lines. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../src/attn.h"
#include "data.h"

#define N_TOKENS 512
#define HEAD_DIM 16
#define N_HEADS 8

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(void) {
    attn_head heads[N_HEADS];
    for (int h = 0; h < N_HEADS; h++) {
        heads[h] = make_head(N_TOKENS, HEAD_DIM, 1234u + (uint32_t)h, 4.0f);
    }
    float *out = malloc((size_t)N_TOKENS * HEAD_DIM * sizeof *out);
    float *scores = malloc((size_t)N_TOKENS * N_TOKENS * sizeof *scores);
    float *probs = malloc((size_t)N_TOKENS * N_TOKENS * sizeof *probs);
    if (!out || !scores || !probs) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    double checksum = 0.0;

    double t0 = now_ms();
    for (int h = 0; h < N_HEADS; h++) {
        if (attention(&heads[h], out) != 0) {
            fprintf(stderr, "bench: attention failed\n");
            return 1;
        }
        checksum += out[h];
    }
    double attn_ms = now_ms() - t0;

    /* The kernels alone, on the same sizes, to tell where the time goes. */
    rng32 r = {99u};
    for (size_t i = 0; i < (size_t)N_TOKENS * N_TOKENS; i++) {
        scores[i] = 3.0f * rng_uniform(&r);
    }
    t0 = now_ms();
    for (int h = 0; h < N_HEADS; h++) {
        softmax_rows(scores, probs, N_TOKENS, N_TOKENS);
        checksum += probs[h];
    }
    double softmax_ms = now_ms() - t0;

    t0 = now_ms();
    for (int h = 0; h < N_HEADS; h++) {
        matmul(probs, heads[h].v, out, N_TOKENS, N_TOKENS, HEAD_DIM);
        checksum += out[h];
    }
    double matmul_ms = now_ms() - t0;

    printf("METRIC attn_ms=%.4f\n", attn_ms);
    printf("METRIC softmax_ms=%.4f\n", softmax_ms);
    printf("METRIC matmul_ms=%.4f\n", matmul_ms);
    fprintf(stderr, "checksum %.6f\n", checksum);
    for (int h = 0; h < N_HEADS; h++) {
        free_head(&heads[h]);
    }
    free(out);
    free(scores);
    free(probs);
    return 0;
}
