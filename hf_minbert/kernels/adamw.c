/* The fused AdamW update of hf_minbert.optimization.AdamW: one pass over memory per tensor, where torch's
 * foreach ops make eight. Each float32 number goes through the operations of torch.optim.AdamW's foreach
 * step in their order, each rounded to float32 (no fused multiply-add), so the two agree to a few units in the
 * last place:
 *     p <- p * decay
 *     m <- lerp(m, g, 1 - beta1)
 *     v <- v * beta2 + (1 - beta2) * g * g
 *     p <- p + (-step_size * m) / (sqrt(v) / sqrt(1 - beta2**t) + eps)
 * Built and loaded by hf_minbert.kernels (ctypes), so it needs no torch headers and compiles in a second. */
#include <math.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* One row per tensor, in the order of hf_minbert.optimization._step_hyperparameters. */
enum { DECAY, ONE_MINUS_BETA1, BETA2, ONE_MINUS_BETA2, BIAS_CORRECTION2_SQRT, EPS, NEG_STEP_SIZE, HYPERPARAMETERS };

/* Threads split the numbers of all tensors at multiples of 16 floats, one 64-byte cache line. */
#define ALIGNMENT 16

static void update(float *param, const float *grad, float *exp_avg, float *exp_avg_sq, int64_t count,
                   const float *hyper)
{
    const float decay = hyper[DECAY], weight = hyper[ONE_MINUS_BETA1], beta2 = hyper[BETA2];
    const float one_minus_beta2 = hyper[ONE_MINUS_BETA2], bias_correction2_sqrt = hyper[BIAS_CORRECTION2_SQRT];
    const float eps = hyper[EPS], neg_step_size = hyper[NEG_STEP_SIZE];
    /* torch's lerp: from the nearer end, so that weight 0 gives m and weight 1 gives g exactly */
    const int from_start = weight < 0.5f;
    const float weight_from_end = 1.0f - weight;
    for (int64_t i = 0; i < count; i++) {
        const float g = grad[i];
        const float m_old = exp_avg[i];
        const float m = from_start ? m_old + weight * (g - m_old) : g - (g - m_old) * weight_from_end;
        const float v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;
        const float denom = sqrtf(v) / bias_correction2_sqrt + eps;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        param[i] = param[i] * decay + neg_step_size * m / denom;
    }
}

/* Update `tensors` tensors: tensor k has numels[k] numbers at params[k], grads[k], exp_avgs[k] and
 * exp_avg_sqs[k], and the hyperparameters hypers[k * HYPERPARAMETERS ...] (enum above). One parallel region
 * for the whole step: each thread takes an equal share of all the numbers, across tensor boundaries. */
void minbert_adamw_step(int64_t tensors, float *const *params, const float *const *grads, float *const *exp_avgs,
                        float *const *exp_avg_sqs, const int64_t *numels, const float *hypers, int threads)
{
    int64_t total = 0;
    for (int64_t k = 0; k < tensors; k++)
        total += numels[k];
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
        int thread = 0, team = 1;
#ifdef _OPENMP
        thread = omp_get_thread_num();
        team = omp_get_num_threads();
#else
        (void)threads;
#endif
        const int64_t lines = (total + ALIGNMENT - 1) / ALIGNMENT;
        const int64_t begin = lines * thread / team * ALIGNMENT;
        int64_t end = lines * (thread + 1) / team * ALIGNMENT;
        if (end > total)
            end = total;
        int64_t offset = 0;
        for (int64_t k = 0; k < tensors && offset < end; offset += numels[k], k++) {
            const int64_t lo = begin > offset ? begin : offset;
            const int64_t hi = end < offset + numels[k] ? end : offset + numels[k];
            if (lo < hi) {
                const int64_t at = lo - offset;
                update(params[k] + at, grads[k] + at, exp_avgs[k] + at, exp_avg_sqs[k] + at, hi - lo,
                       hypers + k * HYPERPARAMETERS);
            }
        }
    }
}
