/* Seeded inputs shared by the benchmark and the check (protected: not part of src/). */
#ifndef ATTN_DATA_H
#define ATTN_DATA_H

#include <stdint.h>
#include <stdlib.h>

#include "../src/attn.h"

typedef struct {
    uint32_t state;
} rng32;

static inline float rng_uniform(rng32 *r) { /* xorshift32 -> [-1, 1) */
    uint32_t x = r->state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->state = x;
    return (float)(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

static inline float *rng_matrix(rng32 *r, size_t count, float scale) {
    float *m = malloc(count * sizeof *m);
    if (m == NULL) {
        abort();
    }
    for (size_t i = 0; i < count; i++) {
        m[i] = scale * rng_uniform(r);
    }
    return m;
}

/* q, k, v uniform in [-scale, scale); gamma in [0.5, 1.5). */
static inline attn_head make_head(size_t n, size_t d, uint32_t seed, float scale) {
    rng32 r = {seed ? seed : 1u};
    attn_head h = {n, d, NULL, NULL, NULL, NULL};
    h.q = rng_matrix(&r, n * d, scale);
    h.k = rng_matrix(&r, n * d, scale);
    h.v = rng_matrix(&r, n * d, 1.0f);
    float *g = rng_matrix(&r, d, 0.5f);
    for (size_t j = 0; j < d; j++) {
        g[j] += 1.0f;
    }
    h.gamma = g;
    return h;
}

static inline void free_head(attn_head *h) {
    free((void *)h->q);
    free((void *)h->k);
    free((void *)h->v);
    free((void *)h->gamma);
}

#endif
