/* rng.c -- xoshiro256**, splitmix64 seeding, polar-method normals (rng.h). */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void tni_rng_seed(tni_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

uint64_t tni_rng_next(tni_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tni_rng_uniform(tni_rng *r)
{
    return (double)(tni_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ln x = e ln 2 + 2 atanh((m - 1) / (m + 1)) with x = m 2^e, m in
 * [sqrt(1/2), sqrt(2)), so |u| <= 0.1716 and the odd series in u^2 <= 0.0295
 * reaches double precision in 13 terms.  ln 2 is split so e*ln2_hi is exact. */
double tni_portable_log(double x)
{
    int e;
    double m = frexp(x, &e);                  /* x = m 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m = ldexp(m, 1);
        e -= 1;
    }
    const double u = (m - 1.0) / (m + 1.0);
    const double u2 = u * u;
    double p = 1.0 / 27.0;
    for (int k = 25; k >= 1; k -= 2) p = p * u2 + 1.0 / (double)k;
    const double ln2_hi = 6.93147180369123816490e-01;   /* 32 significant bits */
    const double ln2_lo = 1.90821492927058770002e-10;
    return (double)e * ln2_hi + ((double)e * ln2_lo + 2.0 * u * p);
}

double tni_rng_normal(tni_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * tni_rng_uniform(r) - 1.0;
        v = 2.0 * tni_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = sqrt(-2.0 * tni_portable_log(s) / s);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}
