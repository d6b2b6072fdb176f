/* test_api.c -- the error contract of every public function (taylornet.h,
 * API.md "Rules for every function"): NULL and wrong-type handles, NULL
 * buffers, zero and overflowing sizes, mismatched lengths, out-of-range enum
 * and parameter values, calls out of order.  For each failure the test
 * asserts the documented status, that the context received a *new* message
 * naming the function (a marker message is planted before each call, so a
 * stale message cannot pass), and that nothing the caller can see changed.
 * Where there is no context to write to (NULL or wrong-type handle) the
 * marker must survive untouched.
 *
 * Links the shared library: only the public API is used. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <limits.h>
#include <unistd.h>

static const size_t D = 4, N = 3;
static const size_t widths[] = {5, 2};

/* ---- message helpers ---------------------------------------------------- */

static char marker[512];

/* Plants a known message in ctx (from a failing call of a function other
 * than `fn`) and remembers it. */
static void mark(tn_ctx *ctx, const char *fn)
{
    if (strcmp(fn, "tn_ctx_set_threads") != 0) {
        ck_assert_int_eq(tn_ctx_set_threads(ctx, 0), TN_E_INVALID_ARG);
    } else {
        const size_t d = 1;
        tn_net *tmp = NULL;
        ck_assert_int_eq(tn_net_create(ctx, &d, 2, &tmp), TN_E_INVALID_ARG);
    }
    snprintf(marker, sizeof marker, "%s", tn_ctx_errmsg(ctx));
    ck_assert(marker[0] != '\0');
}

/* `fn` occurs in msg as a whole identifier (so "tn_net_get" is not found in
 * a message about "tn_net_get_params"). */
static int names_fn(const char *msg, const char *fn)
{
    const size_t k = strlen(fn);
    for (const char *p = strstr(msg, fn); p; p = strstr(p + 1, fn)) {
        const char c = p[k];
        const int ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_';
        if (!ident && (p == msg || p[-1] == ' ' || p[-1] == '\'' || p[-1] == '(')) return 1;
    }
    return 0;
}

static void expect_err_(tn_ctx *ctx, tn_status want, const char *fn, const char *expr,
                        tn_status got, int line)
{
    const char *m = tn_ctx_errmsg(ctx);
    ck_assert_msg(got == want, "line %d: %s -> %s, expected %s (message: %s)", line, expr,
                  tn_status_string(got), tn_status_string(want), m);
    ck_assert_msg(m != NULL && m[0] != '\0', "line %d: %s left no message", line, expr);
    ck_assert_msg(strcmp(m, marker) != 0, "line %d: %s did not record a message", line, expr);
    ck_assert_msg(names_fn(m, fn), "line %d: %s: message '%s' does not name %s", line, expr, m,
                  fn);
}

/* expr must fail with `want`, leaving a new message in ctx that names fn. */
#define EXPECT_ERR(ctx, want, fn, expr) \
    expect_err_((ctx), (want), (fn), #expr, (mark((ctx), (fn)), (expr)), __LINE__)

static void expect_silent_(tn_ctx *ctx, tn_status want, const char *expr, tn_status got,
                           int line)
{
    ck_assert_msg(got == want, "line %d: %s -> %s, expected %s", line, expr,
                  tn_status_string(got), tn_status_string(want));
    ck_assert_msg(strcmp(tn_ctx_errmsg(ctx), marker) == 0,
                  "line %d: %s wrote '%s' into a context it had no handle of", line, expr,
                  tn_ctx_errmsg(ctx));
}

/* expr (a NULL or wrong-type handle: no context to report in) must fail with
 * `want` and leave ctx's message as it was. */
#define EXPECT_SILENT(ctx, want, expr) \
    expect_silent_((ctx), (want), #expr, (mark((ctx), ""), (expr)), __LINE__)

/* ---- other helpers ------------------------------------------------------ */

static tn_ctx *new_ctx(void)
{
    tn_ctx *ctx = NULL;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

static tn_net *new_net(tn_ctx *ctx, tn_activation act, uint64_t seed)
{
    return tu_mlp(ctx, D, widths, 2, act, TN_PARAM_NTK, seed);
}

/* A net with layers but not initialized. */
static tn_net *uninit_net(tn_ctx *ctx)
{
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, widths[0]));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    TN_CK(ctx, tn_net_add_dense(net, widths[1]));
    return net;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static char *tmp_path(const char *tag)
{
    const char *dir = getenv("TN_TEST_TMPDIR");
    if (dir == NULL || dir[0] == '\0') dir = "/tmp";
    const size_t len = strlen(dir) + strlen(tag) + 64;
    char *p = malloc(len);
    snprintf(p, len, "%s/test_api_%ld_%s.tnn", dir, (long)getpid(), tag);
    return p;
}

static int file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/*=====================================================================
 * Version, status strings, freeing NULL, the context
 *===================================================================*/

START_TEST(version_matches_macros)
{
    ck_assert_uint_eq(tn_version_number(), TN_VERSION_NUMBER);
    ck_assert_uint_eq(TN_VERSION_NUMBER,
                      TN_VERSION_MAJOR * 10000 + TN_VERSION_MINOR * 100 + TN_VERSION_PATCH);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", TN_VERSION_MAJOR, TN_VERSION_MINOR, TN_VERSION_PATCH);
    ck_assert_ptr_nonnull(tn_version_string());
    ck_assert_str_eq(tn_version_string(), want);
    /* The string and the number describe the same version. */
    unsigned a, b, c;
    ck_assert_int_eq(sscanf(tn_version_string(), "%u.%u.%u", &a, &b, &c), 3);
    ck_assert_uint_eq(a * 10000 + b * 100 + c, tn_version_number());
}
END_TEST

/* Statuses are 0..K-1 with no gaps (enums are "extended, never renumbered",
 * so K grows as the API does; at least up to TN_E_MISUSE); every one has its
 * own text, everything outside has "unknown status". */
START_TEST(status_strings)
{
    enum { MAX_STATUSES = 64 };
    const char *seen[MAX_STATUSES];
    int K = 0;
    while (K < MAX_STATUSES && strcmp(tn_status_string((tn_status)K), "unknown status") != 0) {
        const char *t = tn_status_string((tn_status)K);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t[0] != '\0', "status %d has an empty string", K);
        for (int r = 0; r < K; r++)
            ck_assert_msg(strcmp(seen[r], t) != 0, "statuses %d and %d share '%s'", r, K, t);
        seen[K++] = t;
    }
    ck_assert_msg(K >= TN_E_MISUSE + 1, "only statuses 0..%d have a description", K - 1);
    ck_assert_msg(K < MAX_STATUSES, "no status is unknown");
    const int unknown[] = {-1, K, K + 1, 100, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        ck_assert_str_eq(tn_status_string((tn_status)unknown[i]), "unknown status");
}
END_TEST

START_TEST(freeing_null_is_a_no_op)
{
    tn_ctx_free(NULL);
    tn_net_free(NULL);
    tn_trainer_free(NULL);
    /* The pure getters of NULL give their documented neutral values. */
    ck_assert_uint_eq(tn_net_num_params(NULL), 0);
    ck_assert_uint_eq(tn_net_input_size(NULL), 0);
    ck_assert_uint_eq(tn_net_output_dim(NULL), 0);
    ck_assert_uint_eq(tn_trainer_num_steps(NULL), 0);
    ck_assert_int_eq(tn_ctx_get_threads(NULL), 0);
    const char *m = tn_ctx_errmsg(NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(m[0] != '\0', "tn_ctx_errmsg(NULL) should say what is wrong");
}
END_TEST

START_TEST(ctx_create_and_threads)
{
    ck_assert_int_eq(tn_ctx_create(NULL), TN_E_INVALID_ARG);
    tn_ctx *ctx = new_ctx();
    ck_assert_str_eq(tn_ctx_errmsg(ctx), "");          /* no failure yet */
    ck_assert_int_eq(tn_ctx_get_threads(ctx), 1);       /* documented default */

    const int bad[] = {0, -1, 1025, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_ctx_set_threads", tn_ctx_set_threads(ctx, bad[i]));
        ck_assert_int_eq(tn_ctx_get_threads(ctx), 1);   /* unchanged */
    }
    const int good[] = {1, 2, 1024, 7};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mark(ctx, "x");
        TN_CK(ctx, tn_ctx_set_threads(ctx, good[i]));
        ck_assert_int_eq(tn_ctx_get_threads(ctx), good[i]);
        /* Success leaves the message alone. */
        ck_assert_str_eq(tn_ctx_errmsg(ctx), marker);
    }
    ck_assert_int_eq(tn_ctx_set_threads(NULL, 2), TN_E_INVALID_ARG);
    tn_ctx_free(ctx);
}
END_TEST

/*=====================================================================
 * NULL handles and handles of the wrong type
 *===================================================================*/

START_TEST(null_handles)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 1);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0),
           *t = tu_random(P, 5, 1.0), *buf = tu_poison(P > N * O ? P : N * O);
    char *path = tmp_path("null");
    double v = 42.0;
    tn_net *nout = (tn_net *)&v;             /* garbage that must become NULL */
    tn_trainer *tout = (tn_trainer *)&v;

    /* ctx is only the witness: none of these calls can reach it. */
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_create(NULL, &D, 1, &nout));
    ck_assert_ptr_null(nout);
    nout = (tn_net *)&v;
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_load(NULL, path, &nout));
    ck_assert_ptr_null(nout);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_ctx_set_threads(NULL, 1));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_add_dense(NULL, 3));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_add_activation(NULL, TN_ACT_RELU));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_set(NULL, TN_NET_SIGMA_B, 0.5));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_get(NULL, TN_NET_SIGMA_B, &v));
    ck_assert(v == 42.0);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_init(NULL, 1));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_get_params(NULL, buf, P));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_set_params(NULL, t, P));
    nout = (tn_net *)&v;
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_clone(NULL, &nout));
    ck_assert_ptr_null(nout);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_forward(NULL, x, N, buf));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_jvp(NULL, x, N, t, buf));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_vjp(NULL, x, N, y, buf));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_net_save(NULL, path));
    ck_assert(!file_exists(path));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_trainer_create(NULL, &tout));
    ck_assert_ptr_null(tout);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_trainer_set(NULL, TN_TRAIN_LEARNING_RATE, 0.1));
    v = 42.0;
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_trainer_get(NULL, TN_TRAIN_LEARNING_RATE, &v));
    ck_assert(v == 42.0);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_trainer_step(NULL, x, y, N, &v));
    ck_assert(v == 42.0);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_trainer_loss(NULL, x, y, N, &v));
    ck_assert(v == 42.0);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_trainer_predict(NULL, x, N, buf));
    tn_taylor *xout = (tn_taylor *)&v;
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_create(NULL, 1, &xout));
    ck_assert_ptr_null(xout);
    ck_assert_int_eq(tn_taylor_order(NULL), 0);
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_rebase(NULL, t, P));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_rebase(NULL, NULL, 0));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_get_base(NULL, buf, P));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_forward(NULL, NULL, x, N, buf));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_terms(NULL, NULL, x, N, buf));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_vjp(NULL, NULL, x, N, y, buf));
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_term_norms(NULL, buf, 2));
    v = 42.0;
    EXPECT_SILENT(ctx, TN_E_INVALID_ARG, tn_taylor_divergence(NULL, &v));
    ck_assert(v == 42.0);
    tn_taylor_free(NULL);
    /* No output buffer was written. */
    ck_assert(tu_is_poison(buf, P > N * O ? P : N * O));

    free(x), free(y), free(t), free(buf), free(path);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* A context passed as a network, a network as a trainer or a context, a
 * trainer as a network: the type tag catches each, -> TN_E_MISUSE, and the
 * object passed is not written to. */
START_TEST(wrong_type_handles)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 2);
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    tn_taylor *ty = NULL;
    TN_CK(ctx, tn_taylor_create(net, 2, &ty));
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0),
           *t = tu_random(P, 5, 1.0), *buf = tu_poison(P > 3 * N * O ? P : 3 * N * O);
    const size_t buflen = P > 3 * N * O ? P : 3 * N * O;
    double *theta = tu_params(ctx, net);
    char *path = tmp_path("wrongtype");
    double v = 42.0;
    tn_net *nout = (tn_net *)&v;
    tn_trainer *tout = (tn_trainer *)&v;

    tn_net *ctx_as_net = (tn_net *)ctx, *tr_as_net = (tn_net *)tr, *ty_as_net = (tn_net *)ty;
    tn_ctx *net_as_ctx = (tn_ctx *)net;
    tn_trainer *net_as_tr = (tn_trainer *)net, *ctx_as_tr = (tn_trainer *)ctx,
               *ty_as_tr = (tn_trainer *)ty;
    tn_taylor *net_as_ty = (tn_taylor *)net, *tr_as_ty = (tn_taylor *)tr;

    EXPECT_SILENT(ctx, TN_E_MISUSE, tn_ctx_set_threads(net_as_ctx, 2));
    ck_assert_int_eq(tn_ctx_get_threads(net_as_ctx), 0);
    ck_assert_ptr_nonnull(tn_ctx_errmsg(net_as_ctx));
    EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_create(net_as_ctx, &D, 1, &nout));
    ck_assert_ptr_null(nout);
    nout = (tn_net *)&v;
    EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_load(net_as_ctx, path, &nout));
    ck_assert_ptr_null(nout);

    tn_net *const wrong_nets[] = {ctx_as_net, tr_as_net, ty_as_net};
    for (size_t k = 0; k < 3; k++) {
        tn_net *w = wrong_nets[k];
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_add_dense(w, 3));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_add_activation(w, TN_ACT_RELU));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_set(w, TN_NET_SIGMA_B, 0.5));
        v = 42.0;
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_get(w, TN_NET_SIGMA_B, &v));
        ck_assert(v == 42.0);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_init(w, 1));
        ck_assert_uint_eq(tn_net_num_params(w), 0);
        ck_assert_uint_eq(tn_net_input_size(w), 0);
        ck_assert_uint_eq(tn_net_output_dim(w), 0);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_get_params(w, buf, P));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_set_params(w, t, P));
        nout = (tn_net *)&v;
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_clone(w, &nout));
        ck_assert_ptr_null(nout);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_forward(w, x, N, buf));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_jvp(w, x, N, t, buf));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_vjp(w, x, N, y, buf));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_net_save(w, path));
        ck_assert(!file_exists(path));
        tout = (tn_trainer *)&v;
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_trainer_create(w, &tout));
        ck_assert_ptr_null(tout);
        tn_net_free(w);                     /* not a net: must be left alone */
    }

    tn_trainer *const wrong_trs[] = {net_as_tr, ctx_as_tr, ty_as_tr};
    for (size_t k = 0; k < 3; k++) {
        tn_trainer *w = wrong_trs[k];
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_trainer_set(w, TN_TRAIN_LEARNING_RATE, 0.5));
        v = 42.0;
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_trainer_get(w, TN_TRAIN_LEARNING_RATE, &v));
        ck_assert(v == 42.0);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_trainer_step(w, x, y, N, &v));
        ck_assert(v == 42.0);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_trainer_loss(w, x, y, N, &v));
        ck_assert(v == 42.0);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_trainer_predict(w, x, N, buf));
        ck_assert_uint_eq(tn_trainer_num_steps(w), 0);
        tn_trainer_free(w);                 /* not a trainer: must be left alone */
    }
    tn_taylor *const wrong_tys[] = {net_as_ty, tr_as_ty};
    for (size_t k = 0; k < 2; k++) {
        tn_taylor *w = wrong_tys[k];
        ck_assert_int_eq(tn_taylor_order(w), 0);
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_rebase(w, t, P));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_rebase(w, NULL, 0));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_get_base(w, buf, P));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_forward(w, NULL, x, N, buf));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_terms(w, NULL, x, N, buf));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_vjp(w, NULL, x, N, y, buf));
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_term_norms(w, buf, 3));
        v = 42.0;
        EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_divergence(w, &v));
        ck_assert(v == 42.0);
        tn_taylor_free(w);                  /* not an expansion: must be left alone */
    }
    tn_taylor *xout = (tn_taylor *)&v;
    EXPECT_SILENT(ctx, TN_E_MISUSE, tn_taylor_create(ctx_as_net, 1, &xout));
    ck_assert_ptr_null(xout);
    ck_assert(tu_is_poison(buf, buflen));

    /* Everything still works after the misuse: the handles were not touched. */
    ck_assert_int_eq(tn_ctx_get_threads(ctx), 1);
    double *after = tu_params(ctx, net);
    ck_assert(memcmp(after, theta, P * sizeof(double)) == 0);
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 1);
    TN_CK(ctx, tn_net_forward(net, x, N, buf));
    ck_assert_int_eq(tn_taylor_order(ty), 2);
    TN_CK(ctx, tn_taylor_forward(ty, NULL, x, N, buf));

    free(x), free(y), free(t), free(buf), free(theta), free(after), free(path);
    tn_taylor_free(ty);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* tn_net_free and tn_trainer_free leave an object that is not theirs alone
 * (previous test); tn_ctx_free must do the same.  A static block stands in
 * for "not a context" so that a wrongly freed or written handle is seen
 * without undefined behaviour in the test itself: if tn_ctx_free frees it,
 * the C library aborts (free of a non-heap pointer); if it writes its
 * "dead" tag, the block changes. */
START_TEST(ctx_free_refuses_a_non_context)
{
    static uint32_t fake[64] = {0x12345678u, 1u, 2u, 3u};
    tn_net_free((tn_net *)fake);
    tn_trainer_free((tn_trainer *)fake);
    ck_assert_uint_eq(fake[0], 0x12345678u);
    ck_assert_int_eq(tn_ctx_set_threads((tn_ctx *)fake, 2), TN_E_MISUSE);
    ck_assert_ptr_nonnull(tn_ctx_errmsg((tn_ctx *)fake));
    tn_ctx_free((tn_ctx *)fake);
    ck_assert_msg(fake[0] == 0x12345678u,
                  "tn_ctx_free wrote into an object that is not a context (tag now %#x)",
                  (unsigned)fake[0]);
}
END_TEST

/*=====================================================================
 * Required buffers, zero and overflowing sizes, lengths
 *===================================================================*/

START_TEST(null_buffers)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 3);
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0),
           *t = tu_random(P, 5, 1.0), *buf = tu_poison(P > N * O ? P : N * O);
    double *theta = tu_params(ctx, net);
    char *path = tmp_path("nullbuf");
    tn_net *nout = NULL;
    double v = 42.0;

    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_create", tn_net_create(ctx, &D, 1, NULL));
    nout = (tn_net *)&v;
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_create", tn_net_create(ctx, NULL, 1, &nout));
    ck_assert_ptr_null(nout);
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_get", tn_net_get(net, TN_NET_SIGMA_W, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_get_params", tn_net_get_params(net, NULL, P));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_set_params", tn_net_set_params(net, NULL, P));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_clone", tn_net_clone(net, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_forward", tn_net_forward(net, NULL, N, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_forward", tn_net_forward(net, x, N, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_jvp", tn_net_jvp(net, NULL, N, t, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_jvp", tn_net_jvp(net, x, N, NULL, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_jvp", tn_net_jvp(net, x, N, t, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_vjp", tn_net_vjp(net, NULL, N, y, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_vjp", tn_net_vjp(net, x, N, NULL, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_vjp", tn_net_vjp(net, x, N, y, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_save", tn_net_save(net, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_load", tn_net_load(ctx, NULL, &nout));
    ck_assert_ptr_null(nout);
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_load", tn_net_load(ctx, path, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_create", tn_trainer_create(net, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_get",
               tn_trainer_get(tr, TN_TRAIN_LEARNING_RATE, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_step", tn_trainer_step(tr, NULL, y, N, &v));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_step", tn_trainer_step(tr, x, NULL, N, &v));
    ck_assert(v == 42.0);
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_loss", tn_trainer_loss(tr, NULL, y, N, &v));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_loss", tn_trainer_loss(tr, x, NULL, N, &v));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_loss", tn_trainer_loss(tr, x, y, N, NULL));
    ck_assert(v == 42.0);
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_predict", tn_trainer_predict(tr, NULL, N, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_predict", tn_trainer_predict(tr, x, N, NULL));

    /* Nothing moved: no output written, no step taken, theta as before. */
    ck_assert(tu_is_poison(buf, P > N * O ? P : N * O));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);
    double *after = tu_params(ctx, net);
    ck_assert(memcmp(after, theta, P * sizeof(double)) == 0);
    ck_assert(!file_exists(path));
    /* The loss pointer of tn_trainer_step is optional. */
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 1);

    free(x), free(y), free(t), free(buf), free(theta), free(after), free(path);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

START_TEST(zero_and_overflowing_sizes)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 4);
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0),
           *t = tu_random(P, 5, 1.0), *buf = tu_poison(P > N * O ? P : N * O);
    double *theta = tu_params(ctx, net);
    double v = 42.0;

    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_forward", tn_net_forward(net, x, 0, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_jvp", tn_net_jvp(net, x, 0, t, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_vjp", tn_net_vjp(net, x, 0, y, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_step", tn_trainer_step(tr, x, y, 0, &v));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_loss", tn_trainer_loss(tr, x, y, 0, &v));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_predict", tn_trainer_predict(tr, x, 0, buf));
    ck_assert(v == 42.0);

    /* n x input_size overflows size_t: refused before anything is read (the
     * buffers are far too short for n, so reading them would be caught by
     * ASan/valgrind).  The header lists TN_E_INVALID_ARG for forward's bad
     * arguments and TN_E_NOMEM for "a size overflows"; either is accepted,
     * but it must be an error with a message. */
    const size_t huge = SIZE_MAX / 2;
    tn_status st;
    mark(ctx, "");
    st = tn_net_forward(net, x, huge, buf);
    ck_assert_msg(st == TN_E_INVALID_ARG || st == TN_E_NOMEM, "forward huge n -> %s",
                  tn_status_string(st));
    ck_assert(names_fn(tn_ctx_errmsg(ctx), "tn_net_forward"));
    mark(ctx, "");
    st = tn_net_vjp(net, x, huge, y, buf);
    ck_assert_msg(st == TN_E_INVALID_ARG || st == TN_E_NOMEM, "vjp huge n -> %s",
                  tn_status_string(st));
    ck_assert(names_fn(tn_ctx_errmsg(ctx), "tn_net_vjp"));
    mark(ctx, "");
    st = tn_trainer_step(tr, x, y, huge, &v);
    ck_assert_msg(st == TN_E_INVALID_ARG || st == TN_E_NOMEM, "step huge n -> %s",
                  tn_status_string(st));
    ck_assert(names_fn(tn_ctx_errmsg(ctx), "tn_trainer_step"));

    /* Network sizes: a zero dimension, ndim not 1 or 3, an overflowing
     * input size, a zero or overflowing width. */
    tn_net *nout = (tn_net *)&v;
    const size_t zero1[] = {0}, zero3[] = {2, 0, 3}, big3[] = {SIZE_MAX / 2, 3, 1};
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_create", tn_net_create(ctx, zero1, 1, &nout));
    ck_assert_ptr_null(nout);
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_create", tn_net_create(ctx, zero3, 3, &nout));
    const size_t ndims[] = {0, 2, 4, SIZE_MAX};
    for (size_t i = 0; i < 4; i++) {
        nout = (tn_net *)&v;
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_create", tn_net_create(ctx, zero3, ndims[i], &nout));
        ck_assert_ptr_null(nout);
    }
    nout = (tn_net *)&v;
    EXPECT_ERR(ctx, TN_E_NOMEM, "tn_net_create", tn_net_create(ctx, big3, 3, &nout));
    ck_assert_ptr_null(nout);

    tn_net *b = NULL;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &b));
    TN_CK(ctx, tn_net_add_dense(b, 3));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_add_dense", tn_net_add_dense(b, 0));
    EXPECT_ERR(ctx, TN_E_NOMEM, "tn_net_add_dense", tn_net_add_dense(b, SIZE_MAX / 2));
    ck_assert_uint_eq(tn_net_num_params(b), D * 3 + 3);     /* unchanged */
    ck_assert_uint_eq(tn_net_output_dim(b), 3);
    tn_net_free(b);

    ck_assert(tu_is_poison(buf, P > N * O ? P : N * O));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);
    double *after = tu_params(ctx, net);
    ck_assert(memcmp(after, theta, P * sizeof(double)) == 0);

    free(x), free(y), free(t), free(buf), free(theta), free(after);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

START_TEST(param_lengths_and_values)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_RELU, 5);
    const size_t P = tn_net_num_params(net);
    double *theta = tu_params(ctx, net), *buf = tu_poison(P + 1), *t = tu_random(P + 1, 9, 1.0);
    const size_t lens[] = {0, 1, P - 1, P + 1, SIZE_MAX};

    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        EXPECT_ERR(ctx, TN_E_SHAPE, "tn_net_get_params", tn_net_get_params(net, buf, lens[i]));
        EXPECT_ERR(ctx, TN_E_SHAPE, "tn_net_set_params", tn_net_set_params(net, t, lens[i]));
    }
    ck_assert(tu_is_poison(buf, P + 1));
    /* A value that is not finite, anywhere, is refused as a whole. */
    const double nonfinite[] = {NAN, INFINITY, -INFINITY};
    const size_t where[] = {0, P / 2, P - 1};
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++) {
            const double keep = t[where[b]];
            t[where[b]] = nonfinite[a];
            EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_set_params", tn_net_set_params(net, t, P));
            t[where[b]] = keep;
        }
    /* Theta after every failed set is bit-identical to before. */
    double *after = tu_params(ctx, net);
    ck_assert(memcmp(after, theta, P * sizeof(double)) == 0);
    /* And a valid set goes through exactly. */
    TN_CK(ctx, tn_net_set_params(net, t, P));
    TN_CK(ctx, tn_net_get_params(net, after, P));
    ck_assert(memcmp(after, t, P * sizeof(double)) == 0);

    free(theta), free(buf), free(t), free(after);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/*=====================================================================
 * Enum and parameter values out of range
 *===================================================================*/

static const tn_net_param net_params[] = {TN_NET_PARAMETERIZATION, TN_NET_SIGMA_W,
                                          TN_NET_SIGMA_B, TN_NET_LEAKY_SLOPE};

static void read_net_settings(tn_ctx *ctx, const tn_net *net, double out[4])
{
    for (size_t i = 0; i < 4; i++) TN_CK(ctx, tn_net_get(net, net_params[i], &out[i]));
}

START_TEST(net_enum_and_values)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 5));

    const int bad_act[] = {-1, TN_ACT_SOFTPLUS + 1, 100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_act / sizeof bad_act[0]; i++)
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_add_activation",
                   tn_net_add_activation(net, (tn_activation)bad_act[i]));
    ck_assert_uint_eq(tn_net_num_params(net), D * 5 + 5);
    ck_assert_uint_eq(tn_net_output_dim(net), 5);

    const struct { int p; double v; } bad[] = {
        {TN_NET_PARAMETERIZATION, -1}, {TN_NET_PARAMETERIZATION, 2},
        {TN_NET_PARAMETERIZATION, 0.5}, {TN_NET_PARAMETERIZATION, NAN},
        {TN_NET_PARAMETERIZATION, INFINITY},
        {TN_NET_SIGMA_W, 0}, {TN_NET_SIGMA_W, -1}, {TN_NET_SIGMA_W, NAN},
        {TN_NET_SIGMA_W, INFINITY}, {TN_NET_SIGMA_W, -INFINITY},
        {TN_NET_SIGMA_B, -0.1}, {TN_NET_SIGMA_B, NAN}, {TN_NET_SIGMA_B, INFINITY},
        {TN_NET_LEAKY_SLOPE, -0.01}, {TN_NET_LEAKY_SLOPE, NAN}, {TN_NET_LEAKY_SLOPE, INFINITY},
        {0, 1}, {99, 1}, {104, 1}, {200, 1}, {-1, 1},
    };
    double before[4], after[4];
    read_net_settings(ctx, net, before);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_set",
                   tn_net_set(net, (tn_net_param)bad[i].p, bad[i].v));
        read_net_settings(ctx, net, after);
        for (size_t k = 0; k < 4; k++)
            ck_assert_msg(same_bits(before[k], after[k]), "failed set %d=%g changed setting %d",
                          bad[i].p, bad[i].v, (int)net_params[k]);
    }
    const int bad_get[] = {0, 99, 104, -1};
    for (size_t i = 0; i < 4; i++) {
        double v = 42.0;
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_get",
                   tn_net_get(net, (tn_net_param)bad_get[i], &v));
        ck_assert(v == 42.0);
    }

    /* The failed calls left the net as if they never happened: the same
     * architecture built cleanly gives bit-identical theta and outputs. */
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_init(net, 77));
    const size_t w[] = {5, 2};
    tn_net *ref = tu_mlp(ctx, D, w, 2, TN_ACT_TANH, TN_PARAM_NTK, 77);
    /* tu_mlp sets the leaky slope; irrelevant for tanh, but keep both equal. */
    const size_t P = tn_net_num_params(net);
    ck_assert_uint_eq(P, tn_net_num_params(ref));
    double *a = tu_params(ctx, net), *b = tu_params(ctx, ref);
    ck_assert(memcmp(a, b, P * sizeof(double)) == 0);
    double *x = tu_random(N * D, 1, 1.0), ya[3 * 2], yb[3 * 2];
    TN_CK(ctx, tn_net_forward(net, x, N, ya));
    TN_CK(ctx, tn_net_forward(ref, x, N, yb));
    ck_assert(memcmp(ya, yb, sizeof ya) == 0);

    free(a), free(b), free(x);
    tn_net_free(ref);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

static const tn_train_param train_params[] = {
    TN_TRAIN_LOSS,       TN_TRAIN_OPTIMIZER,    TN_TRAIN_LEARNING_RATE,  TN_TRAIN_MOMENTUM,
    TN_TRAIN_BETA1,      TN_TRAIN_BETA2,        TN_TRAIN_EPSILON,        TN_TRAIN_WEIGHT_DECAY,
    TN_TRAIN_CLIP_NORM,  TN_TRAIN_ORDER,        TN_TRAIN_REEXPAND_EVERY, TN_TRAIN_OUTPUT_SCALE,
    TN_TRAIN_CENTERED};
#define N_TRAIN_PARAMS (sizeof train_params / sizeof train_params[0])

static void read_train_settings(tn_ctx *ctx, const tn_trainer *tr, double *out)
{
    for (size_t i = 0; i < N_TRAIN_PARAMS; i++)
        TN_CK(ctx, tn_trainer_get(tr, train_params[i], &out[i]));
}

START_TEST(trainer_enum_and_values)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 6);
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    /* A non-default optimizer whose defaults differ from SGD's, so a failed
     * set that silently reset the optimizer would show in lr/momentum/beta2. */
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_RMSPROP));

    const struct { int p; double v; } bad[] = {
        {TN_TRAIN_LOSS, -1}, {TN_TRAIN_LOSS, 2}, {TN_TRAIN_LOSS, 0.5}, {TN_TRAIN_LOSS, NAN},
        {TN_TRAIN_OPTIMIZER, -1}, {TN_TRAIN_OPTIMIZER, TN_OPT_ADAM + 1},
        {TN_TRAIN_OPTIMIZER, 1.5}, {TN_TRAIN_OPTIMIZER, NAN}, {TN_TRAIN_OPTIMIZER, INFINITY},
        {TN_TRAIN_LEARNING_RATE, 0}, {TN_TRAIN_LEARNING_RATE, -1e-3},
        {TN_TRAIN_LEARNING_RATE, NAN}, {TN_TRAIN_LEARNING_RATE, INFINITY},
        {TN_TRAIN_MOMENTUM, -0.1}, {TN_TRAIN_MOMENTUM, 1}, {TN_TRAIN_MOMENTUM, NAN},
        {TN_TRAIN_BETA1, -0.1}, {TN_TRAIN_BETA1, 1}, {TN_TRAIN_BETA1, NAN},
        {TN_TRAIN_BETA2, -0.1}, {TN_TRAIN_BETA2, 1}, {TN_TRAIN_BETA2, NAN},
        {TN_TRAIN_EPSILON, 0}, {TN_TRAIN_EPSILON, -1e-8}, {TN_TRAIN_EPSILON, NAN},
        {TN_TRAIN_EPSILON, INFINITY},
        {TN_TRAIN_WEIGHT_DECAY, -1e-4}, {TN_TRAIN_WEIGHT_DECAY, NAN},
        {TN_TRAIN_WEIGHT_DECAY, INFINITY},
        {TN_TRAIN_CLIP_NORM, -1}, {TN_TRAIN_CLIP_NORM, NAN}, {TN_TRAIN_CLIP_NORM, INFINITY},
        {TN_TRAIN_ORDER, -1}, {TN_TRAIN_ORDER, 1.5}, {TN_TRAIN_ORDER, 1000},
        {TN_TRAIN_ORDER, 1e300}, {TN_TRAIN_ORDER, NAN}, {TN_TRAIN_ORDER, INFINITY},
        {TN_TRAIN_REEXPAND_EVERY, -1}, {TN_TRAIN_REEXPAND_EVERY, 0.5},
        {TN_TRAIN_REEXPAND_EVERY, NAN}, {TN_TRAIN_REEXPAND_EVERY, INFINITY},
        {TN_TRAIN_REEXPAND_EVERY, 1e300},
        {TN_TRAIN_OUTPUT_SCALE, 0}, {TN_TRAIN_OUTPUT_SCALE, -1}, {TN_TRAIN_OUTPUT_SCALE, NAN},
        {TN_TRAIN_OUTPUT_SCALE, INFINITY},
        {TN_TRAIN_CENTERED, -1}, {TN_TRAIN_CENTERED, 2}, {TN_TRAIN_CENTERED, 0.5},
        {TN_TRAIN_CENTERED, NAN},
        {0, 1}, {99, 1}, {109, 1}, {202, 1}, {302, 1}, {-1, 1},
    };
    double before[N_TRAIN_PARAMS], after[N_TRAIN_PARAMS];
    read_train_settings(ctx, tr, before);
    ck_assert(before[1] == TN_OPT_RMSPROP);
    ck_assert(before[2] == 1e-2);       /* RMSProp's default learning rate */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_set",
                   tn_trainer_set(tr, (tn_train_param)bad[i].p, bad[i].v));
        read_train_settings(ctx, tr, after);
        for (size_t k = 0; k < N_TRAIN_PARAMS; k++)
            ck_assert_msg(same_bits(before[k], after[k]), "failed set %d=%g changed setting %d",
                          bad[i].p, bad[i].v, (int)train_params[k]);
    }
    /* One above the largest order the build supports. */
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_set",
               tn_trainer_set(tr, TN_TRAIN_ORDER, tn_taylor_max_order() + 1.0));
    read_train_settings(ctx, tr, after);
    ck_assert(memcmp(before, after, sizeof before) == 0);
    const int bad_get[] = {0, 99, 109, 202, 302, -1};
    for (size_t i = 0; i < sizeof bad_get / sizeof bad_get[0]; i++) {
        double v = 42.0;
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_get",
                   tn_trainer_get(tr, (tn_train_param)bad_get[i], &v));
        ck_assert(v == 42.0);
    }
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);

    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* A target that is not finite makes the loss not finite: TN_E_NUMERIC, and
 * the step leaves theta and the step count as they were. */
START_TEST(trainer_step_numeric)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 7);
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0);
    TN_CK(ctx, tn_trainer_step(tr, x, y, N, NULL));
    double *theta = tu_params(ctx, net), loss = 42.0;
    /* A target that is not finite, or a finite one whose loss overflows
     * (0.5 (1e300)^2): a loss that is not finite.  Neither moves anything.
     * (A step refuses a batch that is not finite after the gradient hook,
     * not as an argument: every rank of a data-parallel job must reach its
     * collective in every step.) */
    y[1] = NAN;
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_step", tn_trainer_step(tr, x, y, N, &loss));
    y[1] = 1e300;
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_step", tn_trainer_step(tr, x, y, N, &loss));
    ck_assert(loss == 42.0);
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 1);
    double *after = tu_params(ctx, net);
    ck_assert(memcmp(after, theta, P * sizeof(double)) == 0);
    free(x), free(y), free(theta), free(after);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* Inputs that are not finite are refused as arguments by every call that
 * evaluates something, as tn_ntk_analytic and tn_taylor_rebase always did
 * (before: tn_ntk_compute returned TN_OK with a NaN kernel, and the Taylor
 * evaluations accepted a NaN theta).  Outputs stay untouched. */
START_TEST(non_finite_inputs_are_refused)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_TANH, 5);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    const double bad[] = {NAN, INFINITY, -INFINITY};
    tn_taylor *t;
    tn_ntk *k;
    tn_trainer *tr;
    TN_CK(ctx, tn_taylor_create(net, 2, &t));
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_trainer_create(net, &tr));
    double *x = tu_random(N * D, 1, 1.0), *theta = tu_params(ctx, net), *v = tu_random(P, 2, 1.0),
           *c = tu_random(N * O, 3, 1.0), *y = tu_random(N * O, 4, 1.0);
    double *out = tu_poison(N * O), *g = tu_poison(P), *K = tu_poison(N * N * O * O),
           *terms = tu_poison(3 * N * O), loss = 42;
    for (size_t b = 0; b < 3; b++) {
        double *arrays[] = {x, theta, v, c, y};
        const size_t at[] = {N * D - 1, P / 2, 0, 1, N * O - 1};
        for (size_t a = 0; a < 5; a++) {
            const double keep = arrays[a][at[a]];
            arrays[a][at[a]] = bad[b];
            if (a == 0) {
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_forward", tn_net_forward(net, x, N, out));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_jvp", tn_net_jvp(net, x, N, v, out));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_vjp", tn_net_vjp(net, x, N, c, g));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_forward",
                           tn_taylor_forward(t, NULL, x, N, out));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_ntk_compute",
                           tn_ntk_compute(k, x, N, NULL, 0, K));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_ntk_compute",
                           tn_ntk_compute(k, y, 1, x, N, K));   /* y's first row as x1: fine */
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_ntk_analytic",
                           tn_ntk_analytic(k, x, N, NULL, 0, K, NULL));
                EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_step",   /* after the hook */
                           tn_trainer_step(tr, x, y, N, &loss));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_loss",
                           tn_trainer_loss(tr, x, y, N, &loss));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_predict",
                           tn_trainer_predict(tr, x, N, out));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_set_probe",
                           tn_trainer_set_probe(tr, x, N));
            } else if (a == 1) {
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_forward",
                           tn_taylor_forward(t, theta, x, N, out));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_terms",
                           tn_taylor_terms(t, theta, x, N, terms));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_vjp",
                           tn_taylor_vjp(t, theta, x, N, c, g));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_rebase",
                           tn_taylor_rebase(t, theta, P));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_set_params",
                           tn_net_set_params(net, theta, P));
            } else if (a == 2) {
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_jvp", tn_net_jvp(net, x, N, v, out));
            } else if (a == 3) {
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_net_vjp", tn_net_vjp(net, x, N, c, g));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_vjp",
                           tn_taylor_vjp(t, NULL, x, N, c, g));
            } else {
                EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_step", tn_trainer_step(tr, x, y, N, &loss));
                EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_trainer_loss",
                           tn_trainer_loss(tr, x, y, N, &loss));
            }
            ck_assert_msg(strstr(tn_ctx_errmsg(ctx), "not finite"), "%s", tn_ctx_errmsg(ctx));
            arrays[a][at[a]] = keep;
        }
    }
    ck_assert(tu_is_poison(out, N * O) && tu_is_poison(g, P) && tu_is_poison(K, N * N * O * O) &&
              tu_is_poison(terms, 3 * N * O) && loss == 42);
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);
    free(x), free(theta), free(v), free(c), free(y), free(out), free(g), free(K), free(terms);
    tn_trainer_free(tr);
    tn_ntk_free(k);
    tn_taylor_free(t);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* Finite inputs and finite parameters can still overflow: sigma_w = 1e307
 * under the NTK parameterization gives finite weights of about 1e307 (its
 * scale 5e306 times N(0, 1) draws), whose sums over a row overflow.  Every
 * evaluation says so (TN_E_NUMERIC) rather than returning infinities with
 * TN_OK. */
START_TEST(non_finite_results_are_refused)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
    TN_CK(ctx, tn_net_add_dense(net, 8));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_IDENTITY));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_W, 1e307));
    TN_CK(ctx, tn_net_init(net, 3));
    const size_t P = tn_net_num_params(net);
    double x[4 * 3], y[2 * 3] = {0}, out[2 * 3], loss, *g = malloc(P * sizeof(double));
    for (size_t i = 0; i < 12; i++) x[i] = 1.0 + (double)i;
    tn_taylor *t;
    tn_ntk *k;
    tn_trainer *tr;
    double K[9];
    TN_CK(ctx, tn_taylor_create(net, 1, &t));
    TN_CK(ctx, tn_ntk_create(net, &k));
    TN_CK(ctx, tn_trainer_create(net, &tr));
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_net_forward", tn_net_forward(net, x, 3, out));
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not finite"));
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_taylor_forward", tn_taylor_forward(t, NULL, x, 3, out));
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_ntk_compute", tn_ntk_compute(k, x, 3, NULL, 0, K));
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_predict", tn_trainer_predict(tr, x, 3, out));
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_loss", tn_trainer_loss(tr, x, y, 3, &loss));
    EXPECT_ERR(ctx, TN_E_NUMERIC, "tn_trainer_step", tn_trainer_step(tr, x, y, 3, &loss));
    ck_assert_uint_eq(tn_trainer_num_steps(tr), 0);
    free(g);
    tn_trainer_free(tr);
    tn_ntk_free(k);
    tn_taylor_free(t);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/*=====================================================================
 * Calls in the wrong order
 *===================================================================*/

START_TEST(init_needs_parameters)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_init", tn_net_init(net, 1));       /* no layers */
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_init", tn_net_init(net, 1));       /* no parameters */
    /* Still not initialized, and still open for layers. */
    double v = 42.0;
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_get_params", tn_net_get_params(net, &v, 0));
    TN_CK(ctx, tn_net_add_dense(net, 3));
    TN_CK(ctx, tn_net_init(net, 1));
    ck_assert_uint_eq(tn_net_num_params(net), D * 3 + 3);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

START_TEST(before_init)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = uninit_net(ctx);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    ck_assert_uint_eq(P, D * 5 + 5 + 5 * 2 + 2);   /* known before init */
    double *x = tu_random(N * D, 3, 1.0), *y = tu_random(N * O, 4, 1.0),
           *t = tu_random(P, 5, 1.0), *buf = tu_poison(P > N * O ? P : N * O);
    char *path = tmp_path("before_init");
    tn_trainer *tout = (tn_trainer *)&path;

    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_forward", tn_net_forward(net, x, N, buf));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_jvp", tn_net_jvp(net, x, N, t, buf));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_vjp", tn_net_vjp(net, x, N, y, buf));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_get_params", tn_net_get_params(net, buf, P));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_set_params", tn_net_set_params(net, t, P));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_save", tn_net_save(net, path));
    ck_assert(!file_exists(path));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_trainer_create", tn_trainer_create(net, &tout));
    ck_assert_ptr_null(tout);
    ck_assert(tu_is_poison(buf, P > N * O ? P : N * O));

    /* Settings and layers are still open; the failed set_params did not
     * initialize the net behind our back. */
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.3));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_get_params", tn_net_get_params(net, buf, P));

    free(x), free(y), free(t), free(buf), free(path);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

START_TEST(after_init)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = new_net(ctx, TN_ACT_RELU, 8);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net);
    double *theta = tu_params(ctx, net), before[4], after[4];
    read_net_settings(ctx, net, before);

    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_add_dense", tn_net_add_dense(net, 3));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_add_activation", tn_net_add_activation(net, TN_ACT_TANH));
    for (size_t i = 0; i < 4; i++) {
        /* Valid values: refused for the state, not the value. */
        const double v = net_params[i] == TN_NET_PARAMETERIZATION ? TN_PARAM_STANDARD : 0.5;
        EXPECT_ERR(ctx, TN_E_STATE, "tn_net_set", tn_net_set(net, net_params[i], v));
    }
    ck_assert_uint_eq(tn_net_num_params(net), P);
    ck_assert_uint_eq(tn_net_output_dim(net), O);
    read_net_settings(ctx, net, after);
    ck_assert(memcmp(before, after, sizeof before) == 0);
    double *now = tu_params(ctx, net);
    ck_assert(memcmp(now, theta, P * sizeof(double)) == 0);

    /* Re-init is allowed: the same seed redraws the same theta, another
     * seed another one. */
    TN_CK(ctx, tn_net_init(net, 8));
    TN_CK(ctx, tn_net_get_params(net, now, P));
    ck_assert(memcmp(now, theta, P * sizeof(double)) == 0);
    TN_CK(ctx, tn_net_init(net, 9));
    TN_CK(ctx, tn_net_get_params(net, now, P));
    ck_assert(memcmp(now, theta, P * sizeof(double)) != 0);

    free(theta), free(now);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* Clone is documented without TN_E_STATE: an unfinished net clones, and the
 * clone is independent of the original. */
START_TEST(clone_before_init_is_independent)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = uninit_net(ctx), *c = NULL;
    TN_CK(ctx, tn_net_clone(net, &c));
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(tn_net_num_params(c), tn_net_num_params(net));
    TN_CK(ctx, tn_net_add_activation(c, TN_ACT_TANH));
    TN_CK(ctx, tn_net_add_dense(c, 4));
    ck_assert_uint_eq(tn_net_output_dim(net), 2);       /* original unchanged */
    ck_assert_uint_eq(tn_net_output_dim(c), 4);
    TN_CK(ctx, tn_net_init(c, 1));
    double v;
    EXPECT_ERR(ctx, TN_E_STATE, "tn_net_get_params", tn_net_get_params(net, &v, 0));
    tn_net_free(c);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/*=====================================================================
 * Settings defaults, input shapes
 *===================================================================*/

START_TEST(net_get_defaults)
{
    tn_ctx *ctx = new_ctx();
    tn_net *net = NULL;
    double v;
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
    TN_CK(ctx, tn_net_get(net, TN_NET_PARAMETERIZATION, &v));
    ck_assert(v == TN_PARAM_NTK);
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_B, &v));
    ck_assert(v == 0.1);
    TN_CK(ctx, tn_net_get(net, TN_NET_LEAKY_SLOPE, &v));
    ck_assert(v == 0.01);
    TN_CK(ctx, tn_net_add_dense(net, 6));
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_W, &v));
    ck_assert(v == 1.0);                                /* no ReLU yet */
    /* "Resolved when read": adding a ReLU switches the default. */
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_add_dense(net, 2));
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_W, &v));
    ck_assert(v == sqrt(2.0));
    TN_CK(ctx, tn_net_init(net, 1));
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_W, &v));
    ck_assert(v == sqrt(2.0));
    tn_net_free(net);

    /* The family: leaky ReLU also gives sqrt(2); tanh and the others 1. */
    for (int act = TN_ACT_IDENTITY; act <= TN_ACT_SOFTPLUS; act++) {
        tn_net *n2 = new_net(ctx, (tn_activation)act, 2);
        TN_CK(ctx, tn_net_get(n2, TN_NET_SIGMA_W, &v));
        const double want = act == TN_ACT_RELU || act == TN_ACT_LEAKY_RELU ? sqrt(2.0) : 1.0;
        ck_assert_msg(v == want, "%s: sigma_w default %.17g", tu_act_names[act], v);
        TN_CK(ctx, tn_net_get(n2, TN_NET_SIGMA_B, &v));
        ck_assert(v == 0.1);
        TN_CK(ctx, tn_net_get(n2, TN_NET_PARAMETERIZATION, &v));
        ck_assert(v == TN_PARAM_NTK);
        tn_net_free(n2);
    }

    /* An explicit sigma_w wins over the default. */
    TN_CK(ctx, tn_net_create(ctx, &D, 1, &net));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_W, 1.7));
    TN_CK(ctx, tn_net_add_dense(net, 3));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
    TN_CK(ctx, tn_net_get(net, TN_NET_SIGMA_W, &v));
    ck_assert(v == 1.7);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

/* The default is also what init uses ("resolved ... at init"): under the
 * standard parameterization sigma_w scales the drawn weights, so a default
 * net and one with sigma_w set to the default value draw the same theta. */
START_TEST(default_sigma_w_is_used_at_init)
{
    tn_ctx *ctx = new_ctx();
    const tn_activation acts[] = {TN_ACT_RELU, TN_ACT_TANH};
    const double want[] = {sqrt(2.0), 1.0};
    for (size_t k = 0; k < 2; k++) {
        tn_net *a = NULL, *b = NULL;
        tn_net *nets[2];
        for (int e = 0; e < 2; e++) {
            tn_net *n = NULL;
            TN_CK(ctx, tn_net_create(ctx, &D, 1, &n));
            TN_CK(ctx, tn_net_set(n, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
            if (e) TN_CK(ctx, tn_net_set(n, TN_NET_SIGMA_W, want[k]));
            TN_CK(ctx, tn_net_add_dense(n, 6));
            TN_CK(ctx, tn_net_add_activation(n, acts[k]));
            TN_CK(ctx, tn_net_add_dense(n, 2));
            TN_CK(ctx, tn_net_init(n, 21));
            nets[e] = n;
        }
        a = nets[0], b = nets[1];
        const size_t P = tn_net_num_params(a);
        double *ta = tu_params(ctx, a), *tb = tu_params(ctx, b);
        ck_assert_msg(memcmp(ta, tb, P * sizeof(double)) == 0, "%s: default sigma_w not %.17g",
                      tu_act_names[acts[k]], want[k]);
        free(ta), free(tb);
        tn_net_free(a);
        tn_net_free(b);
    }
    tn_ctx_free(ctx);
}
END_TEST

/* ndim 3 {H, W, C}: dense layers see the example flattened (NHWC), so the
 * net is the same function as a {H*W*C} net drawn from the same seed. */
START_TEST(input_ndim3)
{
    tn_ctx *ctx = new_ctx();
    const size_t shape[3] = {4, 3, 2}, flat = 24, n = 5;
    tn_net *a = NULL, *b = NULL;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &a));
    TN_CK(ctx, tn_net_create(ctx, &flat, 1, &b));
    ck_assert_uint_eq(tn_net_input_size(a), flat);
    tn_net *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        TN_CK(ctx, tn_net_add_dense(both[i], 5));
        TN_CK(ctx, tn_net_add_activation(both[i], TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_dense(both[i], 3));
        TN_CK(ctx, tn_net_init(both[i], 31));
    }
    ck_assert_uint_eq(tn_net_num_params(a), flat * 5 + 5 + 5 * 3 + 3);
    ck_assert_uint_eq(tn_net_output_dim(a), 3);
    const size_t P = tn_net_num_params(a);
    double *ta = tu_params(ctx, a), *tb = tu_params(ctx, b);
    ck_assert(memcmp(ta, tb, P * sizeof(double)) == 0);
    double *x = tu_random(n * flat, 2, 1.0), ya[5 * 3], yb[5 * 3];
    TN_CK(ctx, tn_net_forward(a, x, n, ya));
    TN_CK(ctx, tn_net_forward(b, x, n, yb));
    ck_assert(memcmp(ya, yb, sizeof ya) == 0);
    /* Training through the trainer works on the image net too. */
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(a, &tr));
    double loss;
    TN_CK(ctx, tn_trainer_step(tr, x, yb, n, &loss));
    ck_assert(isfinite(loss));
    tn_trainer_free(tr);
    free(ta), free(tb), free(x);
    tn_net_free(a);
    tn_net_free(b);
    tn_ctx_free(ctx);
}
END_TEST

/*=====================================================================
 * Taylor expansion handle
 *===================================================================*/

START_TEST(taylor_arguments)
{
    tn_ctx *ctx = new_ctx();
    double v = 42.0;
    tn_taylor *ty = (tn_taylor *)&v;
    tn_net *pre = uninit_net(ctx);
    EXPECT_ERR(ctx, TN_E_STATE, "tn_taylor_create", tn_taylor_create(pre, 2, &ty));
    ck_assert_ptr_null(ty);
    tn_net_free(pre);

    tn_net *net = new_net(ctx, TN_ACT_TANH, 12);
    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net), K = 2;
    const int maxk = tn_taylor_max_order();
    ck_assert_int_eq(maxk, 32);                         /* as documented */
    const int bad_order[] = {0, -1, maxk + 1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_order / sizeof bad_order[0]; i++) {
        ty = (tn_taylor *)&v;
        EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_create",
                   tn_taylor_create(net, bad_order[i], &ty));
        ck_assert_ptr_null(ty);
    }
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_create", tn_taylor_create(net, 2, NULL));
    TN_CK(ctx, tn_taylor_create(net, maxk, &ty));       /* the maximum itself is fine */
    ck_assert_int_eq(tn_taylor_order(ty), maxk);
    tn_taylor_free(ty);
    TN_CK(ctx, tn_taylor_create(net, (int)K, &ty));
    ck_assert_int_eq(tn_taylor_order(ty), (int)K);

    const size_t buflen = (K + 1) * N * O > P + 1 ? (K + 1) * N * O : P + 1;
    double *x = tu_random(N * D, 3, 1.0), *u = tu_random(N * O, 4, 1.0),
           *t = tu_random(P + 1, 5, 1.0), *buf = tu_poison(buflen), *theta = tu_params(ctx, net);

    /* Nothing evaluated yet: no norms, no divergence indicator. */
    EXPECT_ERR(ctx, TN_E_STATE, "tn_taylor_term_norms", tn_taylor_term_norms(ty, buf, K + 1));
    EXPECT_ERR(ctx, TN_E_STATE, "tn_taylor_divergence", tn_taylor_divergence(ty, &v));
    ck_assert(v == 42.0);

    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_get_base", tn_taylor_get_base(ty, NULL, P));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_forward", tn_taylor_forward(ty, NULL, NULL, N, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_forward", tn_taylor_forward(ty, NULL, x, N, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_forward", tn_taylor_forward(ty, NULL, x, 0, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_terms", tn_taylor_terms(ty, NULL, NULL, N, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_terms", tn_taylor_terms(ty, NULL, x, N, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_terms", tn_taylor_terms(ty, NULL, x, 0, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_vjp", tn_taylor_vjp(ty, NULL, NULL, N, u, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_vjp", tn_taylor_vjp(ty, NULL, x, N, NULL, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_vjp", tn_taylor_vjp(ty, NULL, x, N, u, NULL));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_vjp", tn_taylor_vjp(ty, NULL, x, 0, u, buf));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_term_norms", tn_taylor_term_norms(ty, NULL, K + 1));
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_divergence", tn_taylor_divergence(ty, NULL));

    const size_t lens[] = {0, P - 1, P + 1};
    for (size_t i = 0; i < 3; i++) {
        EXPECT_ERR(ctx, TN_E_SHAPE, "tn_taylor_get_base", tn_taylor_get_base(ty, buf, lens[i]));
        EXPECT_ERR(ctx, TN_E_SHAPE, "tn_taylor_rebase", tn_taylor_rebase(ty, t, lens[i]));
    }
    const double keep = t[P / 2];
    t[P / 2] = NAN;
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_rebase", tn_taylor_rebase(ty, t, P));
    t[P / 2] = INFINITY;
    EXPECT_ERR(ctx, TN_E_INVALID_ARG, "tn_taylor_rebase", tn_taylor_rebase(ty, t, P));
    t[P / 2] = keep;
    ck_assert(tu_is_poison(buf, buflen));
    /* The base is still the net's parameters at creation. */
    TN_CK(ctx, tn_taylor_get_base(ty, buf, P));
    ck_assert(memcmp(buf, theta, P * sizeof(double)) == 0);

    /* After an evaluation the norms have order + 1 entries, no other length. */
    TN_CK(ctx, tn_taylor_forward(ty, t, x, N, buf));
    const size_t nlens[] = {0, K, K + 2};
    for (size_t i = 0; i < 3; i++)
        EXPECT_ERR(ctx, TN_E_SHAPE, "tn_taylor_term_norms", tn_taylor_term_norms(ty, buf, nlens[i]));
    TN_CK(ctx, tn_taylor_term_norms(ty, buf, K + 1));
    TN_CK(ctx, tn_taylor_divergence(ty, &v));
    ck_assert(v >= 0);

    free(x), free(u), free(t), free(buf), free(theta);
    tn_taylor_free(ty);
    tn_net_free(net);
    tn_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, version_matches_macros);
    tcase_add_test(tc, status_strings);
    tcase_add_test(tc, freeing_null_is_a_no_op);
    tcase_add_test(tc, ctx_create_and_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("handles");
    tcase_add_test(tc, null_handles);
    tcase_add_test(tc, wrong_type_handles);
    tcase_add_test(tc, ctx_free_refuses_a_non_context);
    suite_add_tcase(s, tc);

    tc = tcase_create("arguments");
    tcase_add_test(tc, null_buffers);
    tcase_add_test(tc, zero_and_overflowing_sizes);
    tcase_add_test(tc, param_lengths_and_values);
    tcase_add_test(tc, net_enum_and_values);
    tcase_add_test(tc, trainer_enum_and_values);
    tcase_add_test(tc, trainer_step_numeric);
    tcase_add_test(tc, non_finite_inputs_are_refused);
    tcase_add_test(tc, non_finite_results_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_add_test(tc, init_needs_parameters);
    tcase_add_test(tc, before_init);
    tcase_add_test(tc, after_init);
    tcase_add_test(tc, clone_before_init_is_independent);
    suite_add_tcase(s, tc);

    tc = tcase_create("settings and shapes");
    tcase_add_test(tc, net_get_defaults);
    tcase_add_test(tc, default_sigma_w_is_used_at_init);
    tcase_add_test(tc, input_ndim3);
    suite_add_tcase(s, tc);

    tc = tcase_create("taylor");
    tcase_add_test(tc, taylor_arguments);
    suite_add_tcase(s, tc);

    return tu_run(s);
}
