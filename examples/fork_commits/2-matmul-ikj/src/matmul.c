/* Dense matrix product. */
#include <string.h>

#include "attn.h"

/* i-k-j loop order: the inner loop walks a row of b and a row of c contiguously, and the
 * additions into c[i][*] are independent of each other (no serial dependency chain through a
 * single accumulator), so the loop pipelines and can be vectorised. */
void matmul(const float *a, const float *b, float *c, size_t m, size_t k, size_t n) {
    for (size_t i = 0; i < m; i++) {
        float *crow = c + i * n;
        memset(crow, 0, n * sizeof *crow);
        for (size_t p = 0; p < k; p++) {
            const float aip = a[i * k + p];
            const float *brow = b + p * n;
            for (size_t j = 0; j < n; j++) {
                crow[j] += aip * brow[j];
            }
        }
    }
}
