/* test_series.c -- the activation recurrences of kernel/series.c against the
 * generic Faa di Bruno rule, whose scaled derivatives a_m = phi^(m)(z0)/m!
 * are computed here independently of the recurrences:
 *   tanh:     phi^(m) = P_m(tanh z),  P_0(T) = T,  P_{m+1} = P_m'(T) (1 - T^2)
 *   sigmoid:  phi^(m) = Q_m(s),       Q_0(s) = s,  Q_{m+1} = Q_m'(s) (s - s^2)
 *   softplus: phi^(m) = sigmoid^(m-1)
 *   erf:      phi^(m) = (2/sqrt pi) (-1)^(m-1) H_{m-1}(z) e^{-z^2}   (physicists' Hermite)
 *   GELU:     phi = z Phi(z): phi^(m) = z Phi^(m) + m Phi^(m-1),
 *             Phi^(j) = (-1)^(j-1) He_{j-1}(z) density(z)              (probabilists' Hermite)
 * Both must give the same coefficients y_j of phi(z(t)) and c_j of
 * phi'(z(t)) (the latter through the table of phi', b_m = (m+1) a_{m+1}).
 * Agreement is to rounding of the two evaluation orders: 1e-11 relative to
 * the largest coefficient for degree 8 with coefficients of size ~1. */
#include "testutil.h"
#include "kernel/series.h"
#include "kernel/vmath.h"

#include <float.h>

#define PI 3.14159265358979323846
#define DEG 8
#define MAXP (DEG + 3)

static double factorial(int m)
{
    double f = 1;
    for (int i = 2; i <= m; i++) f *= i;
    return f;
}

/* Evaluates the polynomial p (coefficients of degree 0..MAXP-1) at v. */
static double poly_eval(const double *p, double v)
{
    double s = 0;
    for (int i = MAXP - 1; i >= 0; i--) s = s * v + p[i];
    return s;
}

/* q = p'(v) * (a v + b v^2) as polynomials: the derivative chain for tanh
 * (a = 1 at degree 0: 1 - T^2, i.e. r = {1, 0, -1}) and sigmoid (r = {0, 1, -1}). */
static void chain(const double *p, const double *r, double *q)
{
    double dp[MAXP] = {0};
    for (int i = 1; i < MAXP; i++) dp[i - 1] = i * p[i];
    for (int i = 0; i < MAXP; i++) q[i] = 0;
    for (int i = 0; i < MAXP; i++)
        for (int j = 0; j < 3 && i + j < MAXP; j++) q[i + j] += dp[i] * r[j];
}

/* Derivatives phi^(m)(v), m = 0..deg, of tanh or the sigmoid from the
 * polynomial chain. */
static void chain_derivs(double v, double fv, const double *r, int deg, double *d)
{
    double p[MAXP] = {0}, q[MAXP];
    p[1] = 1;   /* P_0(T) = T */
    for (int m = 0; m <= deg; m++) {
        d[m] = poly_eval(p, fv);
        chain(p, r, q);
        memcpy(p, q, sizeof p);
    }
    (void)v;
}

static void hermite_phys(double z, int n, double *H)   /* H_0..H_n */
{
    H[0] = 1;
    if (n >= 1) H[1] = 2 * z;
    for (int k = 1; k < n; k++) H[k + 1] = 2 * z * H[k] - 2 * k * H[k - 1];
}

static void hermite_prob(double z, int n, double *He)  /* He_0..He_n */
{
    He[0] = 1;
    if (n >= 1) He[1] = z;
    for (int k = 1; k < n; k++) He[k + 1] = z * He[k] - k * He[k - 1];
}

/* phi^(m)(z0), m = 0..deg, for every smooth activation. */
static void derivatives(tn_activation act, double z0, int deg, double *d)
{
    const double one_m_t2[3] = {1, 0, -1}, s_m_s2[3] = {0, 1, -1};
    switch (act) {
    case TN_ACT_TANH:
        chain_derivs(z0, tanh(z0), one_m_t2, deg, d);
        break;
    case TN_ACT_SIGMOID:
        chain_derivs(z0, 1 / (1 + exp(-z0)), s_m_s2, deg, d);
        break;
    case TN_ACT_SOFTPLUS: {
        double s[DEG + 4];
        chain_derivs(z0, 1 / (1 + exp(-z0)), s_m_s2, deg, s);
        d[0] = log1p(exp(z0));
        for (int m = 1; m <= deg; m++) d[m] = s[m - 1];
        break;
    }
    case TN_ACT_ERF: {
        double H[DEG + 4];
        hermite_phys(z0, deg, H);
        d[0] = erf(z0);
        for (int m = 1; m <= deg; m++)
            d[m] = 2 / sqrt(PI) * ((m - 1) % 2 ? -1 : 1) * H[m - 1] * exp(-z0 * z0);
        break;
    }
    case TN_ACT_GELU: {
        double He[DEG + 4], Phi[DEG + 4];
        hermite_prob(z0, deg, He);
        Phi[0] = 0.5 * erfc(-z0 / sqrt(2.0));
        for (int j = 1; j <= deg; j++)
            Phi[j] = ((j - 1) % 2 ? -1 : 1) * He[j - 1] * exp(-0.5 * z0 * z0) / sqrt(2 * PI);
        d[0] = z0 * Phi[0];
        for (int m = 1; m <= deg; m++) d[m] = z0 * Phi[m] + m * Phi[m - 1];
        break;
    }
    default:
        for (int m = 0; m <= deg; m++) d[m] = NAN;
    }
}

typedef struct which {
    tn_activation act;
    int of_derivative;   /* 1: the table of phi' (for the c series) */
} which;

static void scaled_table(double z0, size_t deg, double *a, void *user)
{
    const which *w = user;
    double d[DEG + 4];
    derivatives(w->act, z0, (int)deg + 1, d);
    for (size_t m = 0; m <= deg; m++)
        a[m] = w->of_derivative ? d[m + 1] / factorial((int)m) : d[m] / factorial((int)m);
}

static const tn_activation smooth[] = {TN_ACT_TANH, TN_ACT_SIGMOID, TN_ACT_ERF, TN_ACT_GELU,
                                       TN_ACT_SOFTPLUS};

START_TEST(recurrences_match_faa_di_bruno)
{
    const tn_activation act = smooth[_i];
    enum { COUNT = 100 };   /* more than one chunk of the recurrence kernel */
    double z[(DEG + 1) * COUNT], zf[(DEG + 1) * COUNT], c[(DEG + 1) * COUNT], cf[(DEG + 1) * COUNT];
    uint64_t seed = 5 + (uint64_t)_i;
    for (size_t i = 0; i < (DEG + 1) * COUNT; i++) z[i] = tu_uniform(&seed) * (i < COUNT ? 3 : 1);
    memcpy(zf, z, sizeof z);
    memcpy(cf, z, sizeof z);
    double *scratch = malloc(tni_act_scratch_size(DEG) * sizeof(double));
    double fdb_scratch[3 * (DEG + 1)];
    tni_act_series(act, 0.0, DEG, COUNT, z, COUNT, c, COUNT, scratch, 0);
    which wy = {act, 0}, wc = {act, 1};
    tni_series_faa_di_bruno(scaled_table, &wy, DEG, COUNT, zf, COUNT, fdb_scratch);
    tni_series_faa_di_bruno(scaled_table, &wc, DEG, COUNT, cf, COUNT, fdb_scratch);
    for (int j = 0; j <= DEG; j++) {
        const double ey = tu_rel_err(z + j * COUNT, zf + j * COUNT, COUNT, 1e-2);
        const double ec = tu_rel_err(c + j * COUNT, cf + j * COUNT, COUNT, 1e-2);
        ck_assert_msg(ey < 1e-11 && ec < 1e-11, "%s order %d: y error %.3g, c error %.3g",
                      tu_act_names[act], j, ey, ec);
    }
    free(scratch);
}
END_TEST

/* The reverse kernel applies the transposed Toeplitz matrix: compare with
 * the explicit sum g_i = sum_{j >= i} c_{j-i} g_j. */
START_TEST(reverse_is_transposed_toeplitz)
{
    enum { COUNT = 7 };
    double g[(DEG + 1) * COUNT], c[(DEG + 1) * COUNT], want[(DEG + 1) * COUNT];
    uint64_t seed = 77;
    for (size_t i = 0; i < (DEG + 1) * COUNT; i++) g[i] = tu_uniform(&seed), c[i] = tu_uniform(&seed);
    for (int i = 0; i <= DEG; i++)
        for (int e = 0; e < COUNT; e++) {
            double s = 0;
            for (int j = i; j <= DEG; j++) s += c[(j - i) * COUNT + e] * g[j * COUNT + e];
            want[i * COUNT + e] = s;
        }
    tni_act_series_reverse(0, 1, DEG, DEG, COUNT, g, COUNT, c, COUNT);
    for (int i = 1; i <= DEG; i++)
        for (int e = 0; e < COUNT; e++)
            ck_assert_double_eq_tol(g[i * COUNT + e], want[i * COUNT + e], 1e-14);
}
END_TEST

/* Distance from got to the exact value ref in units of the last place of
 * ref rounded to double (the smallest subnormal below DBL_MIN). */
static double ulps(double got, long double ref)
{
    const double r = fabs((double)ref);
    const double ulp = r < DBL_MIN ? 0x1p-1074 : nextafter(r, INFINITY) - r;
    return (double)(fabsl((long double)got - ref) / ulp);
}

/* vmath.h's tanh and sech^2 against long double references (64-bit
 * significands: their own error is 2^-11 of a double ulp) at 2 10^5
 * arguments: log-spaced from 1e-300 to 800 (tiny, subnormal-scale and
 * saturated arguments), and evenly spaced on [-25, 25], where the
 * reduction switches k and tanh leaves 1.  The sech^2 reference is
 * 4 e / (1 + e)^2 with e = exp(-2|x|), which no argument overflows.  Bounds,
 * from the error budget:
 * p = expm1(r) carries up to 1 ulp from Horner's rule; m = 2^k p + (2^k - 1)
 * rounds once more, and where 2^k p nearly cancels 2^k - 1 (k = -1, a near
 * 0.2) p's error counts up to twice in m's last place; 2 + m and the
 * quotient round once each: tanh within 3 ulp.  For sech^2, count in units
 * of 2^-53 relative (one ulp where a result lies just below a power of 2):
 * e = 2^k (1 + p) is within 1.5 of them, 1 + e rounds once and its square
 * doubles that and rounds again, and the quotient rounds once: 5.5 in all,
 * so sech^2 within 6 ulp.  Where long double is no wider than double
 * (valgrind computes it so) the references carry double's own errors: libm's
 * tanhl within 1 ulp, the sech^2 formula's five roundings within 4; the
 * bounds grow by as much. */
START_TEST(tanh_and_sech2_are_accurate)
{
    volatile long double one = 1.0L, tiny = 0x1p-60L;
    const int extended = (one + tiny) - one != 0.0L;
    const double bound_t = extended ? 3.0 : 4.0, bound_s = extended ? 6.0 : 10.0;
    double worst_t = 0, worst_s = 0;
    for (int i = 0; i < 200000; i++) {
        const double x = i < 100000 ? (i % 2 ? -1 : 1) * pow(10.0, -300.0 + 302.903 * i / 100000.0)
                                    : -25.0 + 50.0 * (i - 100000) / 100000.0;
        double t, s;
        tni_tanh_sech2(x, &t, &s);
        const long double e = expl(-2.0L * fabsl((long double)x));
        const double et = ulps(t, tanhl((long double)x));
        const double es = ulps(s, 4.0L * e / ((1.0L + e) * (1.0L + e)));
        if (et > worst_t) worst_t = et;
        if (es > worst_s) worst_s = es;
        if (et > bound_t || es > bound_s)
            ck_abort_msg("x = %.17g: tanh %.17g (%.2f ulp), sech^2 %.17g (%.2f ulp)", x, t, et, s, es);
    }
    printf("tanh within %.2f ulp, sech^2 within %.2f ulp\n", worst_t, worst_s);

    /* The edges: signed zeros, infinities, NaN, the clamp at 400. */
    const double edge[] = {0.0, -0.0, INFINITY, -INFINITY, 400.0, nextafter(400.0, 1e3), 0x1p-1074};
    const double want_t[] = {0.0, -0.0, 1.0, -1.0, 1.0, 1.0, 0x1p-1074};
    const double want_s[] = {1.0, 1.0, 0.0, 0.0, 4.0 * exp(-800.0), 0.0, 1.0};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        double t, s;
        tni_tanh_sech2(edge[i], &t, &s);
        ck_assert_msg(t == want_t[i] && signbit(t) == signbit(want_t[i]) && s == want_s[i],
                      "x = %g: tanh %g, sech^2 %g", edge[i], t, s);
    }
    double t, s;
    tni_tanh_sech2(NAN, &t, &s);
    ck_assert(isnan(t) && isnan(s));
}
END_TEST

/* The library evaluates them in its vector clones (AVX-512, AVX2 or SSE2,
 * whichever this CPU runs); this test file is compiled for plain x86-64
 * scalar code.  Both must give the same bits: that is what lets a run
 * resume bit for bit on another machine. */
START_TEST(vectorized_tanh_matches_scalar_bits)
{
    enum { N = 4099 };   /* not a multiple of any vector width: tails too */
    double *z = malloc(N * sizeof(double)), *c = malloc(N * sizeof(double));
    uint64_t seed = 5;
    for (int i = 0; i < N; i++) z[i] = 30.0 * (tu_uniform(&seed) - 0.5) * pow(10.0, -(i % 7));
    double *x = malloc(N * sizeof(double));
    memcpy(x, z, N * sizeof(double));
    tni_act_series(TN_ACT_TANH, 0.0, 0, N, z, N, c, N, NULL, 0);
    for (int i = 0; i < N; i++) {
        double t, s;
        tni_tanh_sech2(x[i], &t, &s);
        ck_assert_msg(memcmp(&t, &z[i], sizeof t) == 0 && memcmp(&s, &c[i], sizeof s) == 0,
                      "x = %.17g: vector %.17g %.17g, scalar %.17g %.17g", x[i], z[i], c[i], t, s);
    }
    free(x), free(z), free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("series");
    TCase *tc = tcase_create("recurrences");
    tcase_add_loop_test(tc, recurrences_match_faa_di_bruno, 0, 5);
    tcase_add_test(tc, reverse_is_transposed_toeplitz);
    tcase_add_test(tc, tanh_and_sech2_are_accurate);
    tcase_add_test(tc, vectorized_tanh_matches_scalar_bits);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
