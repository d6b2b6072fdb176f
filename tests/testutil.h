/*
 * testutil.h -- helpers shared by the Check suites: a context per test,
 * small networks, seeded data, parameters, poisoned buffers, relative
 * comparisons, temporary files, checksummed file fields.
 */
#ifndef TN_TESTUTIL_H
#define TN_TESTUTIL_H

/* POSIX for mkdtemp and getpid; before any system header of the test. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taylornet.h"

/* A status check that prints the context message when it fails. */
#define TN_CK(ctx, expr)                                                                   \
    do {                                                                                   \
        tn_status st_ = (expr);                                                            \
        ck_assert_msg(st_ == TN_OK, "%s -> %s: %s", #expr, tn_status_string(st_),          \
                      tn_ctx_errmsg(ctx));                                                 \
    } while (0)

/* One context per test, `ctx`, made before each test and freed after it:
 * a suite whose tests share a context this way writes TU_CONTEXT_PER_TEST
 * once and registers tcase_add_checked_fixture(tc, setup, teardown). */
#define TU_CONTEXT_PER_TEST                                                                \
    static tn_ctx *ctx;                                                                    \
    static void setup(void)                                                                \
    {                                                                                      \
        ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);                                      \
    }                                                                                      \
    static void teardown(void)                                                             \
    {                                                                                      \
        tn_ctx_free(ctx);                                                                  \
    }

/* Deterministic values in [-1, 1) (splitmix64), independent of the library. */
static inline double tu_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}

static inline double *tu_random(size_t n, uint64_t seed, double scale)
{
    double *v = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) v[i] = scale * tu_uniform(&seed);
    return v;
}

/* max_i |a_i - b_i| / max(max_i |b_i|, floor): an error relative to the
 * size of the reference, not per element (elements near zero would
 * otherwise dominate). */
static inline double tu_rel_err(const double *a, const double *b, size_t n, double floor_)
{
    double err = 0.0, mag = floor_;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs(a[i] - b[i]);
        if (!(d <= err)) err = d;          /* NaN propagates as a failure */
        if (fabs(b[i]) > mag) mag = fabs(b[i]);
    }
    return err / mag;
}

static inline double tu_dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* An MLP d -> widths[0] -> act -> ... -> widths[L-1] (no activation after
 * the last dense layer). */
static inline tn_net *tu_mlp(tn_ctx *ctx, size_t d, const size_t *widths, size_t L,
                             tn_activation act, int param, uint64_t seed)
{
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
    for (size_t l = 0; l < L; l++) {
        TN_CK(ctx, tn_net_add_dense(net, widths[l]));
        if (l + 1 < L) TN_CK(ctx, tn_net_add_activation(net, act));
    }
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, param));
    TN_CK(ctx, tn_net_set(net, TN_NET_LEAKY_SLOPE, 0.1));
    TN_CK(ctx, tn_net_init(net, seed));
    return net;
}

/* A copy of the network's parameters theta (to be freed). */
static inline double *tu_params(tn_ctx *ctx, const tn_net *net)
{
    const size_t P = tn_net_num_params(net);
    double *theta = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, theta, P));
    return theta;
}

/* A buffer of n doubles filled with a recognizable bit pattern (to be
 * freed), so that a write into it by a call that failed is seen. */
static inline double *tu_poison(size_t n)
{
    double *v = malloc(n * sizeof(double));
    memset(v, 0xa5, n * sizeof(double));
    return v;
}

/* 1 when v[0..n) still holds tu_poison's pattern, every byte of it. */
static inline int tu_is_poison(const double *v, size_t n)
{
    const unsigned char *b = (const unsigned char *)v;
    for (size_t i = 0; i < n * sizeof(double); i++)
        if (b[i] != 0xa5) return 0;
    return 1;
}

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), bit by bit: written
 * independently of the library's table, for the tests that damage files
 * and seal them again. */
static inline uint32_t tu_crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* Little-endian 32-bit fields of the library's files. */
static inline uint32_t tu_get_u32(const unsigned char *b, size_t off)
{
    return (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 |
           (uint32_t)b[off + 3] << 24;
}

static inline void tu_put_u32(unsigned char *b, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t tu_get_u64(const unsigned char *b, size_t off)
{
    return (uint64_t)tu_get_u32(b, off) | (uint64_t)tu_get_u32(b, off + 4) << 32;
}

static inline void tu_put_u64(unsigned char *b, size_t off, uint64_t v)
{
    tu_put_u32(b, off, (uint32_t)v);
    tu_put_u32(b, off + 4, (uint32_t)(v >> 32));
}

/* The offsets of the first max tagged sections (u32 tag, u64 length,
 * payload) of a checkpoint of len bytes: they follow the 8-byte magic and
 * the u32 version, and end before the u32 checksum.  Returns their count. */
static inline size_t tu_sections(const unsigned char *b, size_t len, size_t *off, size_t max)
{
    size_t n = 0, o = 12;
    while (o + 12 <= len - 4 && n < max) {
        off[n++] = o;
        o += 12 + (size_t)tu_get_u64(b, o + 4);
    }
    return n;
}

/* Rewrites the CRC-32 that ends a file of len bytes (the library's network
 * and checkpoint files), so that a deliberate change gets past the
 * checksum to the check it is aimed at. */
static inline void tu_reseal(unsigned char *b, size_t len)
{
    tu_put_u32(b, len - 4, tu_crc32(b, len - 4));
}

/* Runs a suite (forking per test, as Check does by default) and gives the
 * exit status of the program. */
static inline int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* A fresh directory under $TN_TEST_TMPDIR (set by meson) or /tmp, named
 * after the test program; the caller frees the string. */
static inline char *tu_make_dir(const char *who)
{
    const char *base = getenv("TN_TEST_TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    const size_t len = strlen(base) + strlen(who) + 64;
    char *dir = malloc(len);
    snprintf(dir, len, "%s/%s_%ld_XXXXXX", base, who, (long)getpid());
    ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    return dir;
}

/* dir/name, to be freed. */
static inline char *tu_join(const char *dir, const char *name)
{
    const size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* The whole file, to be freed; *len its size. */
static inline unsigned char *tu_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    const long n = ftell(f);
    ck_assert(n >= 0);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *const tu_act_names[] = {"identity", "relu", "leaky_relu", "tanh",
                                           "sigmoid", "erf", "gelu", "softplus"};

#endif
