/*
 * init_rng.h - the counter-based generator of initial factors, shared by host and device code.
 *
 * Each initial value is a pure function of (seed, side, row, column): a chain of SplitMix64
 * finalisers mixes the four keys into 64 bits, whose top 24 bits give a float in [0, 1) exactly
 * representable in float32, scaled to [0, 0.01) as the `implicit` library initialises. Since no
 * state is carried from one value to the next, any thread count, any row partition and the GPU
 * produce bit-identical starting factors. The float64 path starts from the same float32 values.
 */
#ifndef GPUALS_INIT_RNG_H
#define GPUALS_INIT_RNG_H

#include <stdint.h>

#ifdef __CUDACC__
#define GPUALS_HD __host__ __device__
#else
#define GPUALS_HD
#endif

/* Scale of the initial values: uniform in [0, GPUALS_INIT_SCALE). */
#define GPUALS_INIT_SCALE 0.01f

/* SplitMix64's output function (Steele, Lea & Flood 2014): a bijection on 64 bits that turns
 * consecutive inputs into well-mixed outputs. */
static inline GPUALS_HD uint64_t init_rng_mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The initial value of factor `col` of row `row` on `side` (0 users, 1 items). */
static inline GPUALS_HD float init_rng_value(uint64_t seed, int side, int64_t row, int col)
{
    uint64_t h = init_rng_mix(seed);
    h = init_rng_mix(h ^ (uint64_t)side);
    h = init_rng_mix(h ^ (uint64_t)row);
    h = init_rng_mix(h ^ (uint64_t)(uint32_t)col);
    float unit = (float)(h >> 40) * (1.0f / 16777216.0f); /* 24 bits: exact in float32 */
    return unit * GPUALS_INIT_SCALE;
}

#endif /* GPUALS_INIT_RNG_H */
