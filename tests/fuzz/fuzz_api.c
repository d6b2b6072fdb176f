/* fuzz_api.c -- the public API driven by fuzzed shapes, settings and values.
 *
 * The input is read as a little program: an input shape, a sequence of
 * layer builders (dense, activation, conv2d, pooling, flatten, branch and
 * sum, any arguments), network settings, then a trainer with fuzzed
 * settings taking a few steps on fuzzed batches, a Taylor expansion
 * evaluated at a fuzzed theta, an empirical NTK, and a predictor and GP
 * built from fuzzed kernels.  Values are drawn from a table of awkward
 * doubles (0, -0, subnormals, 1e308, NaN, infinities) and from raw bytes.
 * Sizes are kept small so that every input runs in milliseconds.
 *
 * Invariants beyond the sanitizers' (fuzz_common.h): every status is valid
 * and a failure leaves a message; a successful call hands back finite
 * numbers; a refused step, set_params or rebase leaves the parameters
 * bit-identical; every handle freed returns the context's memory to what it
 * was. */
#include "fuzz_common.h"

typedef struct bytes {
    const uint8_t *p;
    size_t left;
} bytes;

static unsigned u8(bytes *b)
{
    if (b->left == 0) return 0;
    b->left--;
    return *b->p++;
}

static unsigned below(bytes *b, unsigned n)
{
    return n ? u8(b) % n : 0;
}

static double value(bytes *b)
{
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300, 4.9e-324,
                                     1e300, -1e300, 1.7976931348623157e308, 1e-8, 3.0, 1e6,
                                     NAN, INFINITY, -INFINITY};
    const unsigned k = u8(b);
    if (k < 2 * sizeof special / sizeof special[0]) return special[k % (sizeof special / sizeof special[0])];
    /* Otherwise a moderate value from two more bytes. */
    const int v = (int)(u8(b) << 8 | u8(b)) - 32768;
    return (double)v / 4096.0;
}

static double *values(bytes *b, size_t n)
{
    double *v = malloc((n ? n : 1) * sizeof(double));
    if (v == NULL) abort();
    for (size_t i = 0; i < n; i++) v[i] = value(b);
    return v;
}

/* A network from the bytes, initialized; NULL when a builder or the init
 * refused (which is fine: the refusal was checked). */
static tn_net *build(tn_ctx *ctx, bytes *b)
{
    size_t shape[3];
    const size_t ndim = below(b, 2) ? 3 : 1;
    for (size_t i = 0; i < ndim; i++) shape[i] = below(b, 5) + (ndim == 3 ? 1 : 1);
    tn_net *net = NULL;
    if (FUZZ_CALL(ctx, tn_net_create(ctx, shape, ndim, &net)) != TN_OK) return NULL;
    const unsigned layers = 1 + below(b, 7);
    for (unsigned l = 0; l < layers; l++) {
        switch (below(b, 9)) {
        case 0:
        case 1: FUZZ_CALL(ctx, tn_net_add_dense(net, below(b, 6))); break;
        case 2: FUZZ_CALL(ctx, tn_net_add_activation(net, (tn_activation)(below(b, 10) - 1))); break;
        case 3:
            FUZZ_CALL(ctx, tn_net_add_conv2d(net, below(b, 4), below(b, 4), below(b, 4),
                                             below(b, 3), (tn_padding)below(b, 3)));
            break;
        case 4:
            FUZZ_CALL(ctx, tn_net_add_avg_pool2d(net, below(b, 3), below(b, 3), below(b, 3),
                                                 (tn_padding)below(b, 2)));
            break;
        case 5: FUZZ_CALL(ctx, tn_net_add_global_avg_pool(net)); break;
        case 6: FUZZ_CALL(ctx, tn_net_add_flatten(net)); break;
        case 7: {
            size_t cur = 0;
            if (FUZZ_CALL(ctx, tn_net_current(net, &cur)) == TN_OK)
                FUZZ_CALL(ctx, tn_net_branch(net, below(b, (unsigned)cur + 2)));
            break;
        }
        default: {
            size_t cur = 0;
            if (FUZZ_CALL(ctx, tn_net_current(net, &cur)) == TN_OK)
                FUZZ_CALL(ctx, tn_net_add_sum(net, below(b, (unsigned)cur + 2)));
            break;
        }
        }
    }
    if (below(b, 2)) FUZZ_CALL(ctx, tn_net_add_dense(net, 1 + below(b, 3)));
    const unsigned settings = below(b, 4);
    for (unsigned s = 0; s < settings; s++)
        FUZZ_CALL(ctx, tn_net_set(net, (tn_net_param)(99 + below(b, 6)), value(b)));
    if (FUZZ_CALL(ctx, tn_net_init(net, u8(b))) != TN_OK) {
        tn_net_free(net);
        return NULL;
    }
    return net;
}

static void check_params_unchanged(tn_net *net, const double *before, size_t P, const char *what)
{
    double *now = malloc(P * sizeof(double));
    if (now == NULL || tn_net_get_params(net, now, P) != TN_OK) abort();
    FUZZ_REQUIRE(memcmp(now, before, P * sizeof(double)) == 0, "a refused %s changed theta", what);
    free(now);
}

static void train(tn_ctx *ctx, tn_net *net, bytes *b, size_t n, const double *x)
{
    const size_t O = tn_net_output_dim(net), P = tn_net_num_params(net);
    tn_trainer *tr = NULL;
    if (FUZZ_CALL(ctx, tn_trainer_create(net, &tr)) != TN_OK) return;
    const unsigned settings = below(b, 8);
    for (unsigned s = 0; s < settings; s++) {
        static const int params[] = {100, 101, 102, 103, 104, 105, 106, 107, 108, 200,
                                     201, 300, 301, 400, 401, 402, 403, 404, 405, 999};
        const int p = params[below(b, sizeof params / sizeof params[0])];
        const double v = p == 200 ? (double)below(b, 4) : p == 101 ? (double)below(b, 6)
                         : p == 401 ? (double)below(b, 2) : p == 405 ? (double)below(b, 5)
                                                            : value(b);
        FUZZ_CALL(ctx, tn_trainer_set(tr, (tn_train_param)p, v));
    }
    if (below(b, 3) == 0) FUZZ_CALL(ctx, tn_trainer_set_probe(tr, x, n));
    double *before = malloc(P * sizeof(double));
    if (before == NULL) abort();
    const unsigned steps = below(b, 4);
    for (unsigned s = 0; s < steps; s++) {
        double *y = values(b, n * O), loss = 0;
        if (tn_net_get_params(net, before, P) != TN_OK) abort();
        const uint64_t count = tn_trainer_num_steps(tr);
        if (FUZZ_CALL(ctx, tn_trainer_step(tr, x, y, n, &loss)) == TN_OK) {
            FUZZ_REQUIRE(isfinite(loss), "step loss %g", loss);
            FUZZ_REQUIRE(tn_trainer_num_steps(tr) == count + 1, "step count");
            double *theta = malloc(P * sizeof(double));
            if (theta == NULL || tn_net_get_params(net, theta, P) != TN_OK) abort();
            fuzz_require_finite(theta, P, "theta after a step");
            free(theta);
        } else {
            FUZZ_REQUIRE(tn_trainer_num_steps(tr) == count, "a refused step counted");
            check_params_unchanged(net, before, P, "step");
        }
        double *out = malloc(n * O * sizeof(double));
        if (out == NULL) abort();
        if (FUZZ_CALL(ctx, tn_trainer_predict(tr, x, n, out)) == TN_OK)
            fuzz_require_finite(out, n * O, "prediction");
        if (FUZZ_CALL(ctx, tn_trainer_loss(tr, x, y, n, &loss)) == TN_OK)
            FUZZ_REQUIRE(isfinite(loss), "loss %g", loss);
        free(out);
        free(y);
    }
    for (int s = 0; s <= TN_STAT_UNITS_EVER_SWITCHED; s++) {
        double v;
        if (FUZZ_CALL(ctx, tn_trainer_stat(tr, (tn_train_stat)s, &v)) == TN_OK)
            FUZZ_REQUIRE(isfinite(v), "statistic %d = %g", s, v);
    }
    /* The regret of whatever was recorded (TN_TRAIN_RECORD_TAYLOR above). */
    double regret, optimum;
    if (FUZZ_CALL(ctx, tn_trainer_regret(tr, &regret, &optimum)) == TN_OK)
        FUZZ_REQUIRE(isfinite(regret) && isfinite(optimum), "regret %g, optimum %g", regret,
                     optimum);
    free(before);
    tn_trainer_free(tr);
}

static void taylor(tn_ctx *ctx, tn_net *net, bytes *b, size_t n, const double *x)
{
    const size_t O = tn_net_output_dim(net), P = tn_net_num_params(net);
    tn_taylor *t = NULL;
    if (FUZZ_CALL(ctx, tn_taylor_create(net, (int)below(b, 5), &t)) != TN_OK) return;
    const int k = tn_taylor_order(t);
    double *theta = values(b, P), *y = malloc(n * O * (size_t)(k + 1) * sizeof(double));
    if (y == NULL) abort();
    if (below(b, 2)) {
        double *base = malloc(P * sizeof(double));
        if (base == NULL || tn_taylor_get_base(t, base, P) != TN_OK) abort();
        if (FUZZ_CALL(ctx, tn_taylor_rebase(t, theta, P)) != TN_OK) {
            double *now = malloc(P * sizeof(double));
            if (now == NULL || tn_taylor_get_base(t, now, P) != TN_OK) abort();
            FUZZ_REQUIRE(memcmp(now, base, P * sizeof(double)) == 0, "a refused rebase moved theta0");
            free(now);
        }
        free(base);
    }
    if (FUZZ_CALL(ctx, tn_taylor_forward(t, below(b, 2) ? theta : NULL, x, n, y)) == TN_OK)
        fuzz_require_finite(y, n * O, "f_k");
    if (FUZZ_CALL(ctx, tn_taylor_terms(t, theta, x, n, y)) == TN_OK)
        fuzz_require_finite(y, n * O * (size_t)(k + 1), "terms");
    double r;
    if (FUZZ_CALL(ctx, tn_taylor_divergence(t, &r)) == TN_OK)
        FUZZ_REQUIRE(!isnan(r), "divergence NaN");
    free(theta);
    free(y);
    tn_taylor_free(t);
}

static void kernels(tn_ctx *ctx, tn_net *net, bytes *b, size_t n, const double *x)
{
    const size_t O = tn_net_output_dim(net);
    tn_ntk *k = NULL;
    if (FUZZ_CALL(ctx, tn_ntk_create(net, &k)) != TN_OK) return;
    FUZZ_CALL(ctx, tn_ntk_set(k, (tn_ntk_param)(100 + below(b, 3)), (double)below(b, 4)));
    const size_t side = n * O;
    double *K = malloc(side * side * sizeof(double));
    if (K == NULL) abort();
    if (FUZZ_CALL(ctx, tn_ntk_compute(k, x, n, NULL, 0, K)) == TN_OK) {
        double method = 0, full = 0;
        tn_ntk_get(k, TN_NTK_OUTPUTS, &full);
        tn_ntk_get(k, TN_NTK_METHOD, &method);
        const size_t m = full == TN_NTK_FULL ? side : n;
        fuzz_require_finite(K, m * m, "K");
    }
    double *nngp = malloc(n * n * sizeof(double)), *ntk = malloc(n * n * sizeof(double));
    if (nngp == NULL || ntk == NULL) abort();
    if (FUZZ_CALL(ctx, tn_ntk_analytic(k, x, n, NULL, 0, nngp, ntk)) == TN_OK) {
        fuzz_require_finite(nngp, n * n, "nngp");
        fuzz_require_finite(ntk, n * n, "ntk");
    }
    /* Monte Carlo kernels over 1 to 3 fresh initializations; the net's own
     * parameters stay as they are. */
    const size_t P = tn_net_num_params(net);
    double *before = malloc(P * sizeof(double)), *mc = malloc(side * side * sizeof(double));
    if (before == NULL || mc == NULL || tn_net_get_params(net, before, P) != TN_OK) abort();
    const int with_nngp = (int)below(b, 2);
    if (FUZZ_CALL(ctx, tn_ntk_monte_carlo(k, u8(b), 1 + below(b, 3), x, n, NULL, 0,
                                          with_nngp ? mc : NULL, K)) == TN_OK) {
        double full = 0;
        tn_ntk_get(k, TN_NTK_OUTPUTS, &full);
        const size_t m = full == TN_NTK_FULL ? side : n;
        fuzz_require_finite(K, m * m, "Monte Carlo ntk");
        if (with_nngp) fuzz_require_finite(mc, m * m, "Monte Carlo nngp");
    }
    check_params_unchanged(net, before, P, "tn_ntk_monte_carlo");
    free(before), free(mc);
    free(nngp), free(ntk), free(K);
    tn_ntk_free(k);
}

/* Predictor and GP on a fuzzed kernel (symmetrized, so the checks past
 * symmetry are reached) with fuzzed settings and times. */
static void inference(tn_ctx *ctx, bytes *b)
{
    const size_t n = 1 + below(b, 4), O = 1 + below(b, 2), nt = 1 + below(b, 3);
    double *K = values(b, n * n), *y = values(b, n * O), *f0 = values(b, n * O),
           *Kt = values(b, nt * n), *f0t = values(b, nt * O), *Ktt = values(b, nt * nt);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++) K[j * n + i] = K[i * n + j];
    for (size_t i = 0; i < nt; i++)
        for (size_t j = 0; j < i; j++) Ktt[j * nt + i] = Ktt[i * nt + j];
    double ftr[8], fte[6], mean[6], cov[9], v;
    tn_predictor *p = NULL;
    if (FUZZ_CALL(ctx, tn_predictor_create(ctx, K, n, O, 0, y, &p)) == TN_OK) {
        const unsigned sets = below(b, 3);
        for (unsigned s = 0; s < sets; s++)
            FUZZ_CALL(ctx, tn_predictor_set(p, (tn_predictor_param)(100 + below(b, 3)), value(b)));
        if (FUZZ_CALL(ctx, tn_predictor_lambda_max(p, &v)) == TN_OK)
            FUZZ_REQUIRE(isfinite(v) && v >= 0, "lambda_max %g", v);
        const double t = below(b, 4) == 0 ? INFINITY : (double)below(b, 50);
        if (FUZZ_CALL(ctx, tn_predictor_predict(p, t, f0, ftr, Kt, f0t, nt, fte)) == TN_OK) {
            fuzz_require_finite(ftr, n * O, "f_train_t");
            fuzz_require_finite(fte, nt * O, "f_test_t");
        }
        tn_predictor_free(p);
    }
    tn_gp *g = NULL;
    if (FUZZ_CALL(ctx, tn_gp_create(ctx, K, below(b, 2) ? K : NULL, n, O, y, &g)) == TN_OK) {
        if (below(b, 2)) FUZZ_CALL(ctx, tn_gp_set(g, TN_GP_DIAG_REG, value(b)));
        if (FUZZ_CALL(ctx, tn_gp_nngp_posterior(g, Kt, Ktt, nt, mean, cov)) == TN_OK) {
            fuzz_require_finite(mean, nt * O, "mean");
            fuzz_require_finite(cov, nt * nt, "cov");
            for (size_t a = 0; a < nt; a++)
                FUZZ_REQUIRE(cov[a * nt + a] >= 0, "negative variance %g", cov[a * nt + a]);
        }
        const double t = below(b, 3) == 0 ? INFINITY : (double)below(b, 20);
        if (FUZZ_CALL(ctx, tn_gp_ntk_posterior(g, t, Kt, Kt, Ktt, nt, mean, cov)) == TN_OK) {
            fuzz_require_finite(mean, nt * O, "mean");
            for (size_t a = 0; a < nt; a++)
                FUZZ_REQUIRE(cov[a * nt + a] >= 0, "negative NTK-GP variance %g", cov[a * nt + a]);
        }
        tn_gp_free(g);
    }
    free(K), free(y), free(f0), free(Kt), free(f0t), free(Ktt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tn_ctx *ctx = fuzz_ctx();
    size_t mem0 = 0;
    tn_ctx_get_memory(ctx, &mem0, NULL);
    bytes b = {data, size};
    const unsigned what = u8(&b);
    if (what & 1u) inference(ctx, &b);
    tn_net *net = build(ctx, &b);
    if (net != NULL) {
        const size_t d = tn_net_input_size(net), P = tn_net_num_params(net);
        const size_t n = 1 + below(&b, 3);
        double *x = values(&b, n * d);
        double y[64];
        if (tn_net_output_dim(net) * n <= 64 && FUZZ_CALL(ctx, tn_net_forward(net, x, n, y)) == TN_OK)
            fuzz_require_finite(y, n * tn_net_output_dim(net), "forward");
        if (below(&b, 2)) {
            double *theta = values(&b, P), *before = malloc(P * sizeof(double));
            if (before == NULL || tn_net_get_params(net, before, P) != TN_OK) abort();
            if (FUZZ_CALL(ctx, tn_net_set_params(net, theta, P)) != TN_OK)
                check_params_unchanged(net, before, P, "set_params");
            free(theta), free(before);
        }
        if (what & 2u) train(ctx, net, &b, n, x);
        if (what & 4u) taylor(ctx, net, &b, n, x);
        if (what & 8u) kernels(ctx, net, &b, n, x);
        free(x);
        tn_net_free(net);
    }
    size_t mem1 = 0;
    tn_ctx_get_memory(ctx, &mem1, NULL);
    FUZZ_REQUIRE(mem1 == mem0, "%zu bytes still in use after every handle was freed",
                 mem1 - mem0);
    return 0;
}
