/* One attention head built from the kernels. */
#include <math.h>
#include <stdlib.h>

#include "attn.h"

static void transpose(const float *x, float *out, size_t rows, size_t cols) {
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++) {
            out[j * rows + i] = x[i * cols + j];
        }
    }
}

int attention(const attn_head *h, float *out) {
    size_t n = h->n, d = h->d;
    float *qn = malloc(n * d * sizeof *qn);
    float *kn = malloc(n * d * sizeof *kn);
    float *kt = malloc(n * d * sizeof *kt);
    float *scores = malloc(n * n * sizeof *scores);
    float *probs = malloc(n * n * sizeof *probs);
    int rc = -1;
    if (qn && kn && kt && scores && probs) {
        rmsnorm_rows(h->q, h->gamma, qn, n, d, 1e-6f);
        rmsnorm_rows(h->k, h->gamma, kn, n, d, 1e-6f);
        transpose(kn, kt, n, d);
        matmul(qn, kt, scores, n, d, n);
        float inv_sqrt_d = 1.0f / sqrtf((float)d);
        for (size_t i = 0; i < n * n; i++) {
            scores[i] *= inv_sqrt_d;
        }
        softmax_rows(scores, probs, n, n);
        matmul(probs, h->v, out, n, n, d);
        rc = 0;
    }
    free(qn);
    free(kn);
    free(kt);
    free(scores);
    free(probs);
    return rc;
}
