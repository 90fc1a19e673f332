/* Attention kernels: the code under optimisation (src/ is what candidates may change). */
#ifndef ATTN_H
#define ATTN_H

#include <stddef.h>

/* One attention head: n tokens, head dimension d. All matrices are row-major floats. */
typedef struct {
    size_t n;
    size_t d;
    const float *q;     /* n x d queries */
    const float *k;     /* n x d keys */
    const float *v;     /* n x d values */
    const float *gamma; /* d RMS-norm weights, applied to q and k */
} attn_head;

/* softmax of each of the `rows` rows of x (row length `cols`), written to out. */
void softmax_rows(const float *x, float *out, size_t rows, size_t cols);

/* RMS norm of each row of x (n x d) scaled by gamma, written to out. */
void rmsnorm_rows(const float *x, const float *gamma, float *out, size_t n, size_t d, float eps);

/* c (m x n) = a (m x k) * b (k x n). */
void matmul(const float *a, const float *b, float *c, size_t m, size_t k, size_t n);

/* out (n x d) = softmax(norm(q) norm(k)^T / sqrt(d)) v. Returns 0 on success, -1 if out of memory. */
int attention(const attn_head *head, float *out);

#endif
