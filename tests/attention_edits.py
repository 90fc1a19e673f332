"""The two edits of the attention example (examples/attention) the scripted models make in the end-to-end
tests: the i-k-j matmul (tests/test_e2e_agent.py, tests/test_e2e_waves.py) and the fused softmax (waves).
Each is an exact (old, new) pair of src/ text."""

MATMUL_OLD = """        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < k; p++) {
                acc += a[i * k + p] * b[p * n + j];
            }
            c[i * n + j] = acc;
        }"""
MATMUL_NEW = """        float *crow = c + i * n;
        for (size_t j = 0; j < n; j++) {
            crow[j] = 0.0f;
        }
        for (size_t p = 0; p < k; p++) {
            const float aip = a[i * k + p];
            const float *brow = b + p * n;
            for (size_t j = 0; j < n; j++) {
                crow[j] += aip * brow[j];
            }
        }"""
SOFTMAX_OLD = """    float sum = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        sum += attn_expf(x[j] - max);
    }
    for (size_t j = 0; j < cols; j++) {
        out[j] = attn_expf(x[j] - max) / sum;
    }"""
SOFTMAX_NEW = """    float sum = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        float e = attn_expf(x[j] - max);
        out[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (size_t j = 0; j < cols; j++) {
        out[j] *= inv;
    }"""
