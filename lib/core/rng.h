/*
 * rng.h -- the portable random generator behind tn_net_init.
 *
 * xoshiro256** (Blackman & Vigna 2018) seeded by four outputs of splitmix64
 * of the user's 64-bit seed; uniforms take the top 53 bits; normals come
 * from Marsaglia's polar method, both values of each pair used in order.
 * The logarithm it needs is computed here from +, -, *, / and frexp/ldexp
 * only (tni_portable_log), which IEEE-754 makes exact or correctly rounded,
 * so a seed gives bit-identical parameters on every conforming platform
 * (compiled without FMA contraction: -ffp-contract=off).
 */
#ifndef TNI_RNG_H
#define TNI_RNG_H

#include <stdint.h>

typedef struct tni_rng {
    uint64_t s[4];
    double spare;       /* second value of the last polar pair */
    int has_spare;
} tni_rng;

void tni_rng_seed(tni_rng *r, uint64_t seed);
uint64_t tni_rng_next(tni_rng *r);
double tni_rng_uniform(tni_rng *r);        /* [0, 1), 53 random bits */
double tni_rng_normal(tni_rng *r);         /* N(0, 1) */
double tni_portable_log(double x);         /* x > 0 finite; ~1 ulp */

#endif
