/*
 * test_compare.c -- checks of compare's machinery (examples/support:
 * side_by_side.c and report.c), the code compare and the sweeps run, on a
 * tiny synthetic problem:
 *   - summary.csv's header is exactly the agreed column list, curves.csv's
 *     is CMP_CURVES_HEADER, and both have one row per model / curve point;
 *   - re-linearizing every step (K = 1) is full training: fs_distance below
 *     1e-8 (at the end and at every curve point);
 *   - the metrics match hand computations from the parameters
 *     (tn_net_get_params, through compare's results): a forward pass of the
 *     MLP written out here gives the test outputs, the accuracy, the
 *     training loss, the parameter distance and -- from the signs of the
 *     probe's pre-activations at theta0 and at the trained theta -- the
 *     fraction of ReLU units that switched, which compare takes from the
 *     library's diagnostics (TN_STAT_PATTERN_CHANGE_INIT); the diagnostics'
 *     loss reached after the last step is recomputed on its batch;
 *   - the results do not depend on how many models run at once;
 *   - a model that diverges is reported as such, with NaN metrics, while
 *     the others finish.
 * Runs in a private temporary directory under $TMPDIR.
 */
#include "testutil.h"

#include "support/report.h"
#include "support/side_by_side.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* |a - b| <= tol max(|a|, |b|), or both NaN. */
static int close_rel(double a, double b, double tol)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    const double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= tol * m || a == b;
}

/*---------------------------------------------------------------------
 * The MLP of ex_build_net, by hand: standard parameterization, layers
 * dense(d -> w), ReLU, ..., dense(w -> O); theta holds per layer the
 * weights (out x in, row-major) then the bias.
 *-------------------------------------------------------------------*/

typedef struct hand_net {
    size_t d, w, hidden, O;
} hand_net;

/* out (O) = f(theta; x); when mask is not NULL, the signs (z > 0) of every
 * hidden pre-activation are appended there, layer by layer. */
static void hand_forward(const hand_net *h, const double *theta, const double *x, double *out,
                         unsigned char *mask)
{
    double a[1024], z[1024];
    if (h->d > 1024 || h->w > 1024 || h->O > 1024) ex_die("hand_forward: layer too wide");
    size_t n_in = h->d;
    memcpy(a, x, n_in * sizeof(double));
    const double *p = theta;
    for (size_t l = 0; l <= h->hidden; l++) {
        const size_t n_out = l == h->hidden ? h->O : h->w;
        const double *W = p, *b = p + n_out * n_in;
        for (size_t i = 0; i < n_out; i++) {
            double s = b[i];
            for (size_t j = 0; j < n_in; j++) s += W[i * n_in + j] * a[j];
            z[i] = s;
        }
        p = b + n_out;
        if (l == h->hidden) {
            memcpy(out, z, n_out * sizeof(double));
            break;
        }
        for (size_t i = 0; i < n_out; i++) {
            if (mask) *mask++ = z[i] > 0;
            a[i] = z[i] > 0 ? z[i] : 0.0;
        }
        n_in = n_out;
    }
}

static double hand_xent(const double *g, const double *y, size_t O)
{
    double mx = g[0], s = 0.0, l = 0.0;
    for (size_t c = 1; c < O; c++) mx = g[c] > mx ? g[c] : mx;
    for (size_t c = 0; c < O; c++) s += exp(g[c] - mx);
    for (size_t c = 0; c < O; c++) l -= y[c] * (g[c] - mx - log(s));
    return l;
}

/* The fraction of the probe's hidden units whose sign differs between
 * theta_a and theta_b. */
static double hand_pattern_change(const hand_net *h, const double *theta_a,
                                  const double *theta_b, const double *probe, size_t n)
{
    const size_t units = h->hidden * h->w;
    unsigned char *ma = ex_xmalloc(units, 1), *mb = ex_xmalloc(units, 1);
    double out[16];
    size_t changed = 0;
    for (size_t i = 0; i < n; i++) {
        hand_forward(h, theta_a, probe + i * h->d, out, ma);
        hand_forward(h, theta_b, probe + i * h->d, out, mb);
        for (size_t u = 0; u < units; u++) changed += ma[u] != mb[u];
    }
    free(ma);
    free(mb);
    return (double)changed / (double)(units * n);
}

/*---------------------------------------------------------------------
 * The problem
 *-------------------------------------------------------------------*/

static ex_data data;
static hand_net hnet;
static char *dir;

/* The path of a file in the test directory (a static buffer). */
static const char *in_dir(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void setup_config(cmp_config *cfg)
{
    cmp_config_default(cfg);
    cfg->epochs = 2;
    cfg->batch = 32;
    cfg->lr = 0.05;
    cfg->spec.input = data.train.d;
    cfg->spec.outputs = data.train.classes;
    cfg->spec.width = 12;
    cfg->spec.depth = 2;
    cfg->spec.parameterization = TN_PARAM_STANDARD;
    cfg->spec.seed = 7;
    cfg->shuffle_seed = 11;
    cfg->record_every = 2;
    cfg->eval_n = 20;
    cfg->probe_n = 16;
    cfg->progress = 0;
    cfg->jobs = 2;
}

enum { M_FULL, M_LIN, M_TAY2, M_K1, M_K3, N_MODELS };

static void make_models(cmp_model *m)
{
    m[M_FULL] = cmp_model_make(CMP_FULL, 0, 0);
    m[M_LIN] = cmp_model_make(CMP_LINEARIZED, 1, 0);
    m[M_TAY2] = cmp_model_make(CMP_TAYLORIZED, 2, 0);
    m[M_K1] = cmp_model_make(CMP_RELINEARIZED, 1, 1);
    m[M_K3] = cmp_model_make(CMP_RELINEARIZED, 1, 3);
}

/* The first line of a file, without its newline. */
static void first_line(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    if (fgets(buf, (int)len, f) == NULL) buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

static void test_files(const cmp_run *run)
{
    ck_assert(cmp_write_summary_csv(in_dir("summary.csv"), run) == 0);
    ck_assert(cmp_write_curves_csv(in_dir("curves.csv"), run) == 0);
    char line[1024];
    first_line(in_dir("summary.csv"), line, sizeof line);
    /* Spelled out, not CMP_SUMMARY_HEADER: the columns are a promise. */
    ck_assert(strcmp(line, "mode,order,reexpand_every,train_loss,test_accuracy,fs_distance,"
                        "param_distance,mask_change,seconds_per_step") == 0);
    ck_assert(count_lines(in_dir("summary.csv")) == 1 + run->n);
    first_line(in_dir("curves.csv"), line, sizeof line);
    ck_assert(strcmp(line, CMP_CURVES_HEADER) == 0);
    size_t points = 0;
    for (size_t i = 0; i < run->n; i++) points += run->results[i].n_points;
    ck_assert(count_lines(in_dir("curves.csv")) == 1 + points);

    /* Each summary row: the mode's name and 9 fields. */
    FILE *f = fopen(in_dir("summary.csv"), "r");
    ck_assert(f != NULL);
    if (f == NULL) return;
    ck_assert(fgets(line, sizeof line, f) != NULL);
    const char *modes[N_MODELS] = {"full,0,0,", "linearized,1,0,", "taylorized,2,0,",
                                   "relinearized,1,1,", "relinearized,1,3,"};
    for (size_t i = 0; i < N_MODELS; i++) {
        ck_assert(fgets(line, sizeof line, f) != NULL);
        ck_assert(strncmp(line, modes[i], strlen(modes[i])) == 0);
        size_t commas = 0;
        for (const char *c = line; *c; c++) commas += *c == ',';
        ck_assert(commas == 8);
    }
    fclose(f);
}

static void test_metrics(const cmp_config *cfg, const cmp_run *run)
{
    const size_t P = run->P, O = hnet.O, total = cmp_total_steps(cfg, data.train.n);
    /* 96 examples in batches of 32, 2 epochs: 6 steps, points at 2, 4, 6. */
    ck_assert(total == 6 && run->total_steps == 6);
    ck_assert(run->ref == M_FULL);

    /* theta0 is ex_build_net's draw. */
    tn_ctx *ctx = ex_ctx_create(1);
    tn_net *net = NULL;
    EX_CHECK(ctx, ex_build_net(ctx, &cfg->spec, &net));
    ck_assert(tn_net_num_params(net) == P);
    double *theta0 = ex_xmalloc(P, sizeof(double));
    EX_CHECK(ctx, tn_net_get_params(net, theta0, P));
    ck_assert(memcmp(theta0, run->theta0, P * sizeof(double)) == 0);
    tn_net_free(net);
    tn_ctx_free(ctx);

    for (size_t m = 0; m < N_MODELS; m++) {
        const cmp_result *r = &run->results[m];
        ck_assert(!r->diverged && r->steps == 6 && r->n_points == 3);
        ck_assert(r->points[0].step == 2 && r->points[1].step == 4 && r->points[2].step == 6);
        ck_assert(r->points[2].epoch == 2);

        /* |theta - theta0| / |theta0|. */
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < P; i++) {
            num += (r->theta[i] - theta0[i]) * (r->theta[i] - theta0[i]);
            den += theta0[i] * theta0[i];
        }
        ck_assert(close_rel(r->param_distance, sqrt(num / den), 1e-12));
        ck_assert(r->param_distance > 0);

        /* The ReLU pattern of the probe (the first probe_n test images) at
         * the trained theta against theta0: the library's diagnostics
         * against the signs by hand.  The same count, unless a
         * pre-activation sits within rounding of 0. */
        const double hand =
            hand_pattern_change(&hnet, theta0, r->theta, data.test.x, cfg->probe_n);
        ck_assert(fabs(r->mask_change - hand) < 0.5 / (double)(cfg->probe_n * hnet.hidden * hnet.w));
        ck_assert(r->mask_change == r->points[2].pattern_change_init);
        /* The first recorded step's "since the previous recorded step" is
         * since the probe was set: the initialization. */
        ck_assert(r->points[0].pattern_change_step == r->points[0].pattern_change_init);

        /* Accuracy from the stored test outputs. */
        size_t correct = 0;
        for (size_t i = 0; i < data.test.n; i++)
            correct += ex_argmax(r->test_out + i * O, O) == (size_t)data.test.labels[i];
        ck_assert(r->test_accuracy == (double)correct / (double)data.test.n);

        /* fs_distance against the full model's outputs, by hand. */
        const cmp_result *ref = &run->results[M_FULL];
        num = den = 0.0;
        for (size_t e = 0; e < data.test.n * O; e++) {
            num += (r->test_out[e] - ref->test_out[e]) * (r->test_out[e] - ref->test_out[e]);
            den += ref->test_out[e] * ref->test_out[e];
        }
        ck_assert(close_rel(r->fs_distance, sqrt(num / den), 1e-12));
    }

    /* The full model: its outputs, training loss and eval loss are the
     * network's at the trained theta. */
    const cmp_result *full = &run->results[M_FULL];
    double out[16], diff = 0.0, norm = 0.0, loss = 0.0;
    for (size_t i = 0; i < data.test.n; i++) {
        hand_forward(&hnet, full->theta, data.test.x + i * hnet.d, out, NULL);
        for (size_t c = 0; c < O; c++) {
            diff += (out[c] - full->test_out[i * O + c]) * (out[c] - full->test_out[i * O + c]);
            norm += out[c] * out[c];
        }
    }
    ck_assert(sqrt(diff / norm) < 1e-12);
    for (size_t i = 0; i < data.train.n; i++) {
        hand_forward(&hnet, full->theta, data.train.x + i * hnet.d, out, NULL);
        loss += hand_xent(out, data.train.y + i * O, O);
    }
    ck_assert(close_rel(full->train_loss, loss / (double)data.train.n, 1e-12));
    loss = 0.0;
    for (size_t i = 0; i < cfg->eval_n; i++) {
        hand_forward(&hnet, full->theta, data.test.x + i * hnet.d, out, NULL);
        loss += hand_xent(out, data.test.y + i * O, O);
    }
    ck_assert(close_rel(full->points[2].eval_loss, loss / (double)cfg->eval_n, 1e-12));

    /* The diagnostics' loss reached after the last step, on its batch: the
     * last batch of the same shuffle. */
    ex_batcher b;
    ex_batcher_init(&b, &data.train, cfg->batch, cfg->shuffle_seed);
    size_t rows = 0;
    for (size_t s = 0; s < total; s++) {
        rows = ex_batcher_next(&b);
        if (rows == 0) rows = ex_batcher_next(&b);  /* an epoch's end */
    }
    loss = 0.0;
    for (size_t i = 0; i < rows; i++) {
        hand_forward(&hnet, full->theta, b.x + i * hnet.d, out, NULL);
        loss += hand_xent(out, b.y + i * O, O);
    }
    ck_assert(close_rel(full->points[2].loss_reached, loss / (double)rows, 1e-12));
    ex_batcher_free(&b);

    /* K = 1 is full training, step for step. */
    const cmp_result *k1 = &run->results[M_K1];
    ck_assert(k1->fs_distance < 1e-8);
    for (size_t p = 0; p < k1->n_points; p++) ck_assert(k1->points[p].fs_distance < 1e-8);
    ck_assert(full->fs_distance == 0.0);
    /* ... and the test is not vacuous: the others differ. */
    ck_assert(run->results[M_LIN].fs_distance > 1e-6);
    ck_assert(run->results[M_K3].fs_distance > 1e-6);
    ck_assert(run->results[M_TAY2].fs_distance > 1e-6);
    free(theta0);
}

/* Two models at once or one after the other: the same numbers. */
static void test_jobs_independent(const cmp_config *cfg, const cmp_run *a)
{
    cmp_config c1 = *cfg;
    c1.jobs = 1;
    cmp_model models[N_MODELS];
    make_models(models);
    cmp_run b;
    cmp_run_models(&c1, &data.train, &data.test, models, N_MODELS, &b);
    for (size_t m = 0; m < N_MODELS; m++) {
        const cmp_result *x = &a->results[m], *y = &b.results[m];
        ck_assert(memcmp(x->theta, y->theta, a->P * sizeof(double)) == 0);
        ck_assert(memcmp(x->test_out, y->test_out, a->test_n * a->outputs * sizeof(double)) == 0);
        ck_assert(x->train_loss == y->train_loss && x->fs_distance == y->fs_distance &&
               x->mask_change == y->mask_change);
    }
    cmp_run_free(&b);
}

/* The configuration at plain SGD with a learning rate made to overflow
 * something, and the given loss. */
static cmp_config at_huge_rate(const cmp_config *cfg, double lr, int loss)
{
    cmp_config c = *cfg;
    c.lr = lr;
    c.optimizer = TN_OPT_SGD;
    c.loss = loss;
    return c;
}

/* A learning rate that overflows: the models are reported as diverged,
 * with NaN metrics and "nan" in the CSV, and nothing aborts. */
static void test_divergence(const cmp_config *cfg)
{
    /* Squared error: outputs of 1e250 square to infinity (cross-entropy
     * stays finite for a linear model, whose gradient is bounded). */
    const cmp_config c = at_huge_rate(cfg, 1e250, TN_LOSS_MSE);
    const cmp_model models[2] = {cmp_model_make(CMP_FULL, 0, 0),
                                 cmp_model_make(CMP_LINEARIZED, 1, 0)};
    cmp_run run;
    cmp_run_models(&c, &data.train, &data.test, models, 2, &run);
    for (size_t m = 0; m < 2; m++) {
        const cmp_result *r = &run.results[m];
        ck_assert(r->diverged && r->diverged_step >= 1 && r->steps == r->diverged_step - 1);
        ck_assert(isnan(r->test_accuracy) && isnan(r->fs_distance) && isnan(r->train_loss));
        ck_assert(r->message[0] != '\0');
    }
    ck_assert(cmp_write_summary_csv(in_dir("diverged.csv"), &run) == 0);
    char line[1024];
    FILE *f = fopen(in_dir("diverged.csv"), "r");
    ck_assert(f != NULL);
    if (f) {
        ck_assert(fgets(line, sizeof line, f) && fgets(line, sizeof line, f));
        ck_assert(strncmp(line, "full,0,0,nan,nan,nan,nan,nan,", 29) == 0);
        fclose(f);
    }
    cmp_run_free(&run);
}

/* A model whose parameters and own loss stay finite while the network's
 * loss at those parameters leaves the doubles -- the linearized model with
 * cross-entropy at a huge rate (its outputs grow by about the rate a step,
 * the 3-layer network's by its square) -- as the default CNN-THIN compare's
 * relin-K10 does on its way to diverging: the library refuses the overflowed
 * statistics (TN_E_NUMERIC), the curves record inf, and the run goes on. */
static void test_statistics_overflow(const cmp_config *cfg)
{
    cmp_config c = at_huge_rate(cfg, 1e200, TN_LOSS_SOFTMAX_XENT);
    c.diagnostics = 1;
    const cmp_model models[1] = {cmp_model_make(CMP_LINEARIZED, 1, 0)};
    cmp_run run;
    cmp_run_models(&c, &data.train, &data.test, models, 1, &run);
    const cmp_result *r = &run.results[0];
    size_t overflowed = 0;
    for (size_t p = 0; p < r->n_points; p++) {
        ck_assert(isfinite(r->points[p].batch_loss));
        overflowed += isinf(r->points[p].loss_reached) && isinf(r->points[p].taylor_predicted);
    }
    ck_assert_msg(overflowed > 0, "no recorded point overflowed (%zu points)", r->n_points);
    cmp_run_free(&run);
}

/* A model whose parameters and training loss stay finite while its outputs
 * on the eval images overflow -- as the default WRN compare's relin-K10 did
 * on its way to diverging -- is marked diverged after the step, with the
 * library's message, and nothing aborts.  Here: eval images 1e150 times the
 * training images, so the linearized model's logits on them (linear in the
 * input, to the biases) overflow while those on the batches are ~1e160. */
static void test_outputs_overflow(const cmp_config *cfg)
{
    cmp_config c = at_huge_rate(cfg, 1e160, TN_LOSS_SOFTMAX_XENT);
    c.record_every = 1;
    ex_dataset big = data.test;
    big.x = malloc(big.n * big.d * sizeof(double));
    for (size_t i = 0; i < big.n * big.d; i++) big.x[i] = 1e150 * data.test.x[i];
    const cmp_model models[1] = {cmp_model_make(CMP_LINEARIZED, 1, 0)};
    cmp_run run;
    cmp_run_models(&c, &data.train, &big, models, 1, &run);
    const cmp_result *r = &run.results[0];
    ck_assert_msg(r->diverged && r->steps == r->diverged_step && r->n_points == r->steps,
                  "diverged %d at step %zu after %zu steps, %zu points", r->diverged,
                  r->diverged_step, r->steps, r->n_points);
    ck_assert_msg(strstr(r->message, "its outputs overflow: tn_trainer_predict") == r->message,
                  "%s", r->message);
    const cmp_point *last = &r->points[r->n_points - 1];
    ck_assert(isfinite(last->batch_loss) && isnan(last->eval_loss));
    ck_assert(isnan(r->test_accuracy) && isnan(r->train_loss) && isnan(r->fs_distance));
    cmp_run_free(&run);
    free(big.x);
}

/* The convolutional architectures of --arch: the parameter counts their
 * definitions (support/nets.h) give, and through compare's machinery a
 * re-linearized model with K = 1 equal to full training (the whole
 * residual graph, convolutions and sums included, at orders 0 and 1). */
static void test_architectures(const cmp_config *cfg)
{
    const size_t C = 3, O = data.train.classes;
    const size_t conv1 = 9 * 1 * C + C, conv = 9 * C * C + C;
    const struct {
        ex_arch arch;
        size_t depth, params;
    } archs[] = {
        /* CNN-THIN: 2 convolutions, global average pooling, dense. */
        {EX_ARCH_CNN_THIN, 2, conv1 + conv + C * O + O},
        /* WRN, 1 block per group: stem; group 1 (C, identity shortcut);
         * groups 2 and 3 (2C, 4C: the first conv, the second, a 1x1
         * projection); dense from 4C. */
        {EX_ARCH_WRN, 1,
         conv1 + 2 * conv + (9 * C * 2 * C + 2 * C) + (9 * 4 * C * C + 2 * C) + (2 * C * C + 2 * C) +
             (9 * 2 * C * 4 * C + 4 * C) + (9 * 16 * C * C + 4 * C) + (4 * C * 2 * C + 4 * C) +
             4 * C * O + O},
    };
    for (size_t a = 0; a < 2; a++) {
        cmp_config c = *cfg;
        c.spec.arch = archs[a].arch;
        c.spec.width = C;
        c.spec.depth = archs[a].depth;
        c.epochs = 1;
        tn_ctx *ctx = ex_ctx_create(1);
        tn_net *net = NULL;
        ck_assert(ex_build_net(ctx, &c.spec, &net) == TN_OK);
        ck_assert(net && tn_net_num_params(net) == archs[a].params);
        tn_net_free(net);
        tn_ctx_free(ctx);
        const cmp_model models[2] = {cmp_model_make(CMP_FULL, 0, 0),
                                     cmp_model_make(CMP_RELINEARIZED, 1, 1)};
        cmp_run run;
        cmp_run_models(&c, &data.train, &data.test, models, 2, &run);
        ck_assert(!run.results[0].diverged && run.results[0].steps == run.total_steps);
        ck_assert(run.results[1].fs_distance < 1e-8);
        ck_assert(run.results[0].mask_change > 0);   /* the conv ReLU units are probed */
        cmp_run_free(&run);
    }
}

static void test_helpers(void)
{
    double v[4];
    ck_assert(ex_parse_list("x", "1,10,100", v, 4, 1) == 3 && v[0] == 1 && v[2] == 100);
    ck_assert(ex_parse_list("x", "0.1,1000", v, 4, 0) == 2 && v[0] == 0.1);
    const double x[4] = {1, 10, 100, 1000}, y[4] = {3, 0.3, 0.03, 0.003};
    ck_assert(fabs(ex_loglog_slope(x, y, 4) + 1.0) < 1e-12);
    const double y2[2] = {2.0, 1.0}, x2[2] = {1.0, 4.0};
    ck_assert(fabs(ex_loglog_slope(x2, y2, 2) + 0.5) < 1e-12);
    ck_assert(isnan(ex_loglog_slope(x, y, 1)));
    char q[16];
    ex_gnuplot_quote(q, sizeof q, "it's");
    ck_assert(strcmp(q, "it''s") == 0);
    cmp_config c;
    cmp_config_default(&c);
    c.batch = 32;
    c.epochs = 3;
    ck_assert(cmp_total_steps(&c, 100) == 12);   /* 4 batches per epoch, the last of 4 rows */
    ck_assert(cmp_record_every_for(395, 100) == 4);
    ck_assert(cmp_record_every_for(50, 100) == 1);
    const double g[2] = {0.0, 0.0}, t[2] = {1.0, 0.0};
    ck_assert(fabs(cmp_loss(TN_LOSS_SOFTMAX_XENT, g, t, 1, 2, 1.0) - log(2.0)) < 1e-15);
    ck_assert(fabs(cmp_loss(TN_LOSS_MSE, g, t, 1, 2, 2.0) - 0.125) < 1e-15);
}

/* The test directory, the problem and one run of every model on it, made
 * once, before the tests (Check forks each test from the process that made
 * them), and freed after them. */
static cmp_config cfg;
static cmp_run run;

static void make_problem(void)
{
    dir = tu_make_dir("tn_compare");
    ex_data_options opt;
    ex_data_options_default(&opt);
    opt.force_synthetic = 1;
    opt.synthetic_train = 96;
    opt.synthetic_test = 40;
    if (ex_load_data(&opt, &data) != 0) ex_die("synthetic data");
    hnet = (hand_net){data.train.d, 12, 2, data.train.classes};
    setup_config(&cfg);
    cmp_model models[N_MODELS];
    make_models(models);
    cmp_run_models(&cfg, &data.train, &data.test, models, N_MODELS, &run);
}

static void free_problem(void)
{
    cmp_run_free(&run);
    ex_data_free(&data);
    static const char *const names[] = {"summary.csv", "curves.csv", "diverged.csv"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(in_dir(names[i]));
    if (rmdir(dir) != 0) fprintf(stderr, "warning: cannot remove %s\n", dir);
    free(dir);
}

START_TEST(helpers)
{
    test_helpers();
}
END_TEST

START_TEST(csv_files)
{
    test_files(&run);
}
END_TEST

START_TEST(metrics_match_hand_computations)
{
    test_metrics(&cfg, &run);
}
END_TEST

START_TEST(jobs_do_not_change_the_numbers)
{
    test_jobs_independent(&cfg, &run);
}
END_TEST

START_TEST(divergence_is_reported)
{
    test_divergence(&cfg);
}
END_TEST

START_TEST(overflowing_statistics_are_recorded_as_inf)
{
    test_statistics_overflow(&cfg);
}
END_TEST

START_TEST(overflowing_outputs_end_the_model)
{
    test_outputs_overflow(&cfg);
}
END_TEST

START_TEST(architectures)
{
    test_architectures(&cfg);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("compare");
    TCase *tc = tcase_create("machinery");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, make_problem, free_problem);
    tcase_add_test(tc, helpers);
    tcase_add_test(tc, csv_files);
    tcase_add_test(tc, metrics_match_hand_computations);
    tcase_add_test(tc, jobs_do_not_change_the_numbers);
    tcase_add_test(tc, divergence_is_reported);
    tcase_add_test(tc, overflowing_statistics_are_recorded_as_inf);
    tcase_add_test(tc, overflowing_outputs_end_the_model);
    tcase_add_test(tc, architectures);
    suite_add_tcase(suite, tc);
    return tu_run(suite);
}
