/* Scalar math used by the kernels. */
#ifndef ATTN_MATHFN_H
#define ATTN_MATHFN_H

#include <math.h>

static inline float attn_expf(float x) {
    return expf(x);
}

#endif
