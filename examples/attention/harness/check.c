/* Correctness check: compares the kernels with slow, obviously correct double-precision references.
 * Exit status 0 when everything is within tolerance, 1 otherwise (with a message per failure). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../src/attn.h"
#include "data.h"

#define REL_TOL 1e-4
#define ABS_TOL 1e-6

static int failures = 0;

static void compare(const char *what, const float *got, const double *want, size_t count) {
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)got[i] - want[i]);
        double allowed = REL_TOL * fabs(want[i]) + ABS_TOL;
        if (!(err <= allowed)) { /* also catches NaN */
            double excess = isnan(err) ? INFINITY : err / allowed;
            if (excess > worst) {
                worst = excess;
                worst_i = i;
            }
        }
    }
    if (worst > 0.0) {
        failures++;
        printf("FAIL %s: element %zu is %.9g, expected %.9g (tolerance %.1e relative)\n", what, worst_i,
               (double)got[worst_i], want[worst_i], REL_TOL);
    } else {
        printf("ok   %s (%zu values)\n", what, count);
    }
}

static void ref_softmax(const float *x, double *out, size_t rows, size_t cols) {
    for (size_t i = 0; i < rows; i++) {
        double max = x[i * cols];
        for (size_t j = 0; j < cols; j++) {
            max = fmax(max, x[i * cols + j]);
        }
        double sum = 0.0;
        for (size_t j = 0; j < cols; j++) {
            sum += exp(x[i * cols + j] - max);
        }
        for (size_t j = 0; j < cols; j++) {
            out[i * cols + j] = exp(x[i * cols + j] - max) / sum;
        }
    }
}

static void ref_rmsnorm(const float *x, const float *gamma, double *out, size_t n, size_t d) {
    for (size_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (size_t j = 0; j < d; j++) {
            ss += (double)x[i * d + j] * x[i * d + j];
        }
        double scale = 1.0 / sqrt(ss / (double)d + 1e-6);
        for (size_t j = 0; j < d; j++) {
            out[i * d + j] = x[i * d + j] * scale * gamma[j];
        }
    }
}

static void ref_attention(const attn_head *h, double *out) {
    size_t n = h->n, d = h->d;
    double *qn = malloc(n * d * sizeof *qn), *kn = malloc(n * d * sizeof *kn);
    double *p = malloc(n * sizeof *p);
    ref_rmsnorm(h->q, h->gamma, qn, n, d);
    ref_rmsnorm(h->k, h->gamma, kn, n, d);
    for (size_t i = 0; i < n; i++) {
        double max = -INFINITY, sum = 0.0;
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t c = 0; c < d; c++) {
                s += qn[i * d + c] * kn[j * d + c];
            }
            p[j] = s / sqrt((double)d);
            max = fmax(max, p[j]);
        }
        for (size_t j = 0; j < n; j++) {
            p[j] = exp(p[j] - max);
            sum += p[j];
        }
        for (size_t c = 0; c < d; c++) {
            double acc = 0.0;
            for (size_t j = 0; j < n; j++) {
                acc += p[j] / sum * h->v[j * d + c];
            }
            out[i * d + c] = acc;
        }
    }
    free(qn);
    free(kn);
    free(p);
}

static void check_softmax(const char *what, size_t rows, size_t cols, float scale, uint32_t seed) {
    rng32 r = {seed};
    float *x = rng_matrix(&r, rows * cols, scale);
    float *got = malloc(rows * cols * sizeof *got);
    double *want = malloc(rows * cols * sizeof *want);
    softmax_rows(x, got, rows, cols);
    ref_softmax(x, want, rows, cols);
    compare(what, got, want, rows * cols);
    free(x);
    free(got);
    free(want);
}

static void check_matmul(size_t m, size_t k, size_t n) {
    rng32 r = {7u};
    float *a = rng_matrix(&r, m * k, 1.0f), *b = rng_matrix(&r, k * n, 1.0f);
    float *got = malloc(m * n * sizeof *got);
    double *want = malloc(m * n * sizeof *want);
    matmul(a, b, got, m, k, n);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (size_t p = 0; p < k; p++) {
                acc += (double)a[i * k + p] * b[p * n + j];
            }
            want[i * n + j] = acc;
        }
    }
    /* float accumulation over k terms: allow k * eps relative to the sum of magnitudes */
    for (size_t i = 0; i < m * n; i++) {
        if (fabs((double)got[i] - want[i]) > 1e-5 * (double)k) {
            failures++;
            printf("FAIL matmul %zux%zux%zu: element %zu is %.9g, expected %.9g\n", m, k, n, i,
                   (double)got[i], want[i]);
            break;
        }
    }
    printf("%s matmul %zux%zux%zu\n", failures ? "...." : "ok  ", m, k, n);
    free(a);
    free(b);
    free(got);
    free(want);
}

int main(void) {
    check_softmax("softmax small rows", 16, 8, 2.0f, 3u);
    check_softmax("softmax long rows", 8, 1000, 3.0f, 5u);
    check_softmax("softmax large logits (needs the max subtraction)", 4, 64, 120.0f, 11u);
    check_matmul(33, 17, 29);
    check_matmul(64, 64, 64);

    attn_head h = make_head(96, 32, 42u, 4.0f);
    float *got = malloc(96 * 32 * sizeof *got);
    double *want = malloc(96 * 32 * sizeof *want);
    if (attention(&h, got) != 0) {
        printf("FAIL attention returned an error\n");
        return 1;
    }
    ref_attention(&h, want);
    for (size_t i = 0; i < 96 * 32; i++) { /* outputs near zero: compare against the value scale */
        if (fabs((double)got[i] - want[i]) > 1e-4) {
            failures++;
            printf("FAIL attention: element %zu is %.9g, expected %.9g (tolerance 1e-4)\n", i,
                   (double)got[i], want[i]);
            break;
        }
    }
    if (failures == 0) {
        printf("ok   attention 96x32\n");
    }
    rmsnorm_rows(h.q, h.gamma, got, 96, 32, 1e-6f);
    ref_rmsnorm(h.q, h.gamma, want, 96, 32);
    compare("rmsnorm", got, want, 96 * 32);
    free_head(&h);
    free(got);
    free(want);
    if (failures) {
        printf("check: %d failure(s)\n", failures);
        return 1;
    }
    printf("check: all passed\n");
    return 0;
}
