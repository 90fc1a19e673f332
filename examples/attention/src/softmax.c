/* Row-wise softmax. */
#include "attn.h"
#include "mathfn.h"

/* The textbook form, one pass per step: the maximum (for numerical safety), the sum of the
 * exponentials, then each exponential divided by that sum. */
static void softmax_row(const float *x, float *out, size_t cols) {
    float max = x[0];
    for (size_t j = 1; j < cols; j++) {
        if (x[j] > max) {
            max = x[j];
        }
    }
    float sum = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        sum += attn_expf(x[j] - max);
    }
    for (size_t j = 0; j < cols; j++) {
        out[j] = attn_expf(x[j] - max) / sum;
    }
}

void softmax_rows(const float *x, float *out, size_t rows, size_t cols) {
    for (size_t i = 0; i < rows; i++) {
        softmax_row(x + i * cols, out + i * cols, cols);
    }
}
