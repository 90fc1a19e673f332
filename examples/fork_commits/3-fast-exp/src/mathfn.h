/* Scalar math used by the kernels. */
#ifndef ATTN_MATHFN_H
#define ATTN_MATHFN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Schraudolph's exponential: write round(x * 2^23 / ln 2) + bias straight into the exponent
 * bits of a float. A multiply, an add and a conversion instead of a libm call. */
static inline float attn_expf(float x) {
    if (x < -87.0f) {
        return 0.0f;
    }
    int32_t bits = (int32_t)(12102203.0f * x + 1064866805.0f);
    float y;
    memcpy(&y, &bits, sizeof y);
    return y;
}

#endif
