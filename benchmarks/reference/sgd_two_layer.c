/* Reference kernel: online SGD of an ensemble of two-layer networks, a plain compiled loop.
 *
 * The same arithmetic as jaxlimit's engine on its throughput problem (tanh, squared loss,
 * width scaling s = N^-gamma, rate = alpha N^-(2-2 gamma)): one member at a time, its
 * weights in cache, members spread over OpenMP threads. Sample indices come from a
 * per-member xorshift stream (the reference measures speed only, not jaxlimit's stream).
 * Built at benchmark time by benchmarks/ensemble_throughput.py; never part of the package.
 */
#include <math.h>
#include <stdint.h>

static inline float fast_tanh(float x) {
    /* tanh via exp, vectorisable under -ffast-math */
    float e = expf(-2.0f * fabsf(x));
    float t = (1.0f - e) / (1.0f + e);
    return copysignf(t, x);
}

void sgd_ensemble(int members, int width, int dim, int points, long steps, float gamma_, float alpha,
                  const float *x /* points x dim */, const float *y /* points */,
                  float *c /* members x width */, float *wt /* members x dim x width */,
                  float *out /* members */) {
    const float s = powf((float)width, -gamma_);
    const float rate = alpha * powf((float)width, -(2.0f - 2.0f * gamma_)) * s;
#pragma omp parallel for schedule(static)
    for (int e = 0; e < members; ++e) {
        float *ce = c + (long)e * width;
        float *we = wt + (long)e * dim * width;
        float u[8192], a[8192];
        uint64_t state = 0x9E3779B97F4A7C15ull ^ (uint64_t)(e + 1);
        for (long k = 0; k < steps; ++k) {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            int j = (int)(state % (uint64_t)points);
            const float *xj = x + (long)j * dim;
            for (int i = 0; i < width; ++i) u[i] = 0.0f;
            for (int q = 0; q < dim; ++q) {
                const float xq = xj[q];
                const float *wq = we + (long)q * width;
                for (int i = 0; i < width; ++i) u[i] += xq * wq[i];
            }
            float h = 0.0f;
            for (int i = 0; i < width; ++i) { a[i] = fast_tanh(u[i]); h += ce[i] * a[i]; }
            const float g = rate * (y[j] - s * h);
            for (int i = 0; i < width; ++i) {
                const float da = 1.0f - a[i] * a[i];
                u[i] = g * ce[i] * da;       /* reuse u for the w-update coefficient */
                ce[i] += g * a[i];
            }
            for (int q = 0; q < dim; ++q) {
                const float xq = xj[q];
                float *wq = we + (long)q * width;
                for (int i = 0; i < width; ++i) wq[i] += xq * u[i];
            }
        }
        float h = 0.0f;
        for (int i = 0; i < width; ++i) h += ce[i];
        out[e] = h;
    }
}
