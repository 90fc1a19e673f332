/* Row-wise softmax. */
#include "attn.h"
#include "mathfn.h"

/* Fused softmax: after the maximum, one pass computes each exponential once, stores it in the
 * output and accumulates the sum; the last pass multiplies by the reciprocal of the sum instead
 * of dividing. Half the exponentials of the textbook form and no division per element. */
static void softmax_row(const float *x, float *out, size_t cols) {
    float max = x[0];
    for (size_t j = 1; j < cols; j++) {
        if (x[j] > max) {
            max = x[j];
        }
    }
    float sum = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        float e = attn_expf(x[j] - max);
        out[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (size_t j = 0; j < cols; j++) {
        out[j] *= inv;
    }
}

void softmax_rows(const float *x, float *out, size_t rows, size_t cols) {
    for (size_t i = 0; i < rows; i++) {
        softmax_row(x + i * cols, out + i * cols, cols);
    }
}
