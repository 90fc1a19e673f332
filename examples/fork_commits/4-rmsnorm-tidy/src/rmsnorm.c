/* Row-wise RMS normalisation. */
#include <math.h>
#include <string.h>

#include "attn.h"

/* 1 / sqrt(mean(row^2) + eps) */
static float inv_rms(const float *row, size_t d, float eps) {
    float sumsq = 0.0f;
    for (size_t j = 0; j < d; j++) {
        sumsq += row[j] * row[j];
    }
    return 1.0f / sqrtf(sumsq / (float)d + eps);
}

void rmsnorm_rows(const float *x, const float *gamma, float *out, size_t n, size_t d, float eps) {
    for (size_t i = 0; i < n; i++) {
        const float *row = x + i * d;
        float *dst = out + i * d;
        memcpy(dst, row, d * sizeof *dst);
        const float scale = inv_rms(dst, d, eps);
        for (size_t j = 0; j < d; j++) {
            dst[j] = dst[j] * scale * gamma[j];
        }
    }
}
