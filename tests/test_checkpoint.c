/* test_checkpoint.c -- tn_trainer_save / tn_trainer_load.
 *
 * The resume matrix: for every optimizer and every training mode (full,
 * linearized, order k, re-expanded, lazy, centered, with diagnostics and a
 * probe; MLPs and a residual convolutional network), a run of N steps over a schedule of mini-batches that repeats and
 * changes batches (so the expansion's base cache and the centered f0 cache
 * are hit in the uninterrupted run and cold after a resume) is interrupted
 * after every k = 0..N steps: checkpointed, everything freed (context
 * included), loaded into a new context and run to N.  Asserted bit for
 * bit: the loss of every step after the resume, the trained model's
 * predictions, and the final checkpoint file itself, which holds theta,
 * theta0, the optimizer state, the counters, every setting, the last
 * step's statistics, the probe patterns and exploration, and the Taylor
 * record of the regret (in two modes).  A schedule changes the
 * learning rate mid-run, so settings changed between steps are covered.
 *
 * Then: a training process killed with SIGKILL while checkpointing every
 * step leaves a loadable checkpoint from which the run resumes exactly;
 * damaged, truncated, newer and hostile files are refused with the right
 * status; unknown ancillary sections are skipped; every setting the trainer
 * has is in the file. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

/* Inputs are {4, 4, 2} images for the convolutional modes, the same 32
 * values as vectors for the MLPs. */
#define D 32
#define O 3
#define NB 6            /* rows per batch */
#define NSTEPS 6

static const int schedule[NSTEPS + 4] = {0, 0, 1, 2, 2, 0, 1, 1, 0, 2};

/* Three fixed batches; targets are one-hot rows (for cross-entropy) that
 * MSE fits as well. */
static double xs[3][NB * D], ys[3][NB * O], probe[4 * D];

static void make_data(void)
{
    uint64_t s = 7;
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < NB * D; i++) xs[b][i] = tu_uniform(&s);
        for (int i = 0; i < NB; i++)
            for (int c = 0; c < O; c++) ys[b][i * O + c] = (c == (i + b) % O);
    }
    for (int i = 0; i < 4 * D; i++) probe[i] = tu_uniform(&s);
}

typedef struct mode {
    const char *name;
    int order, reexpand, centered, diagnostics, xent;
    double alpha, weight_decay, clip;
    tn_activation act;
    int conv;           /* a residual convolutional network instead of an MLP */
    int record;         /* TN_TRAIN_RECORD_TAYLOR 1: the Taylor record rides along */
} mode;

static const mode modes[] = {
    {"full", 0, 0, 0, 0, 0, 1.0, 0.0, 0.0, TN_ACT_TANH, 0, 0},
    {"linearized", 1, 0, 0, 0, 0, 1.0, 0.0, 0.0, TN_ACT_TANH, 0, 0},
    {"order 3", 3, 0, 0, 0, 1, 1.0, 0.0, 0.0, TN_ACT_GELU, 0, 0},
    {"re-expanded every 2", 1, 2, 0, 0, 0, 1.0, 0.0, 0.0, TN_ACT_RELU, 0, 0},
    {"order 2 re-expanded every 3", 2, 3, 0, 0, 0, 1.0, 1e-2, 0.0, TN_ACT_SOFTPLUS, 0, 0},
    {"lazy alpha 8", 0, 0, 0, 0, 0, 8.0, 0.0, 0.0, TN_ACT_TANH, 0, 0},
    {"centered alpha 4", 0, 0, 1, 0, 0, 4.0, 0.0, 0.5, TN_ACT_RELU, 0, 0},
    {"centered order 2", 2, 0, 1, 0, 1, 2.0, 0.0, 0.0, TN_ACT_TANH, 0, 0},
    {"diagnostics full, Taylor record", 0, 0, 0, 1, 0, 1.0, 1e-3, 0.0, TN_ACT_LEAKY_RELU, 0, 1},
    {"diagnostics linearized centered", 1, 0, 1, 1, 1, 3.0, 0.0, 0.0, TN_ACT_RELU, 0, 0},
    {"residual conv full", 0, 0, 0, 0, 1, 1.0, 0.0, 0.0, TN_ACT_RELU, 1, 0},
    {"residual conv order 2 re-expanded, diagnostics, Taylor record", 2, 3, 0, 1, 0, 1.0, 0.0,
     0.0, TN_ACT_RELU, 1, 1},
};
#define NMODES (sizeof modes / sizeof modes[0])
#define NOPT 5

static char *dir;

static void setup(void)
{
    make_data();
    dir = tu_make_dir("test_checkpoint");
}

/* Removes the directory of a test case and everything in it. */
static void teardown(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = tu_join(dir, e->d_name);
        unlink(p);
        free(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
    dir = NULL;
}

/* conv 3x3 -> act -> conv 3x3, plus the block's input -> act -> global
 * average pool -> dense: a residual block of the graph engine. */
static tn_net *residual_conv(tn_ctx *ctx, tn_activation act)
{
    const size_t shape[3] = {4, 4, 2};
    size_t in;
    tn_net *net = NULL;
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_current(net, &in));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
    TN_CK(ctx, tn_net_add_sum(net, in));
    TN_CK(ctx, tn_net_add_activation(net, act));
    TN_CK(ctx, tn_net_add_global_avg_pool(net));
    TN_CK(ctx, tn_net_add_dense(net, O));
    TN_CK(ctx, tn_net_init(net, 1234));
    return net;
}

static tn_trainer *start(tn_ctx *ctx, const mode *m, int opt, tn_net **net_out)
{
    const size_t widths[] = {8, 7, O};
    tn_net *net = m->conv ? residual_conv(ctx, m->act)
                          : tu_mlp(ctx, D, widths, 3, m->act, TN_PARAM_NTK, 1234);
    tn_trainer *tr = NULL;
    TN_CK(ctx, tn_trainer_create(net, &tr));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, opt));
    if (opt == TN_OPT_RMSPROP) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_MOMENTUM, 0.5));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, opt >= TN_OPT_RMSPROP ? 1e-2 : 5e-2));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, m->xent ? TN_LOSS_SOFTMAX_XENT : TN_LOSS_MSE));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, m->order));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, m->reexpand));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, m->alpha));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, m->centered));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_WEIGHT_DECAY, m->weight_decay));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_CLIP_NORM, m->clip));
    if (m->diagnostics) {
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
        TN_CK(ctx, tn_trainer_set_probe(tr, probe, 4));
    }
    if (m->record) TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_RECORD_TAYLOR, 1));
    *net_out = net;
    return tr;
}

/* Step s of the run: the schedule's batch, and a learning-rate change at
 * step 4 (a setting changed between steps). */
static void step(tn_ctx *ctx, tn_trainer *tr, int s, double *loss)
{
    if (s == 4) {
        double lr;
        TN_CK(ctx, tn_trainer_get(tr, TN_TRAIN_LEARNING_RATE, &lr));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, lr / 2));
    }
    const int b = schedule[s];
    TN_CK(ctx, tn_trainer_step(tr, xs[b], ys[b], NB, loss));
}

START_TEST(resume_is_bit_identical)
{
    const int opt = _i % NOPT;
    const mode *m = &modes[_i / NOPT];
    char *ref_path = tu_join(dir, "ref.tnck"), *ck_path = tu_join(dir, "ck.tnck"),
         *end_path = tu_join(dir, "end.tnck");
    tn_ctx *ctx;
    tn_net *net;
    double ref_loss[NSTEPS], ref_pred[NB * O];
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    tn_trainer *tr = start(ctx, m, opt, &net);
    for (int s = 0; s < NSTEPS; s++) step(ctx, tr, s, &ref_loss[s]);
    TN_CK(ctx, tn_trainer_predict(tr, xs[1], NB, ref_pred));
    TN_CK(ctx, tn_trainer_save(tr, ref_path));
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    size_t ref_len;
    unsigned char *ref = tu_slurp(ref_path, &ref_len);

    for (int k = 0; k <= NSTEPS; k++) {
        double loss;
        ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
        tr = start(ctx, m, opt, &net);
        for (int s = 0; s < k; s++) step(ctx, tr, s, &loss);
        TN_CK(ctx, tn_trainer_save(tr, ck_path));
        tn_trainer_free(tr);
        tn_net_free(net);
        tn_ctx_free(ctx);

        ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
        TN_CK(ctx, tn_trainer_load(ctx, ck_path, &net, &tr));
        ck_assert_uint_eq(tn_trainer_num_steps(tr), (uint64_t)k);
        for (int s = k; s < NSTEPS; s++) {
            step(ctx, tr, s, &loss);
            ck_assert_msg(memcmp(&loss, &ref_loss[s], sizeof loss) == 0,
                          "%s, optimizer %d, resumed after %d: step %d loss %.17g != %.17g",
                          m->name, opt, k, s, loss, ref_loss[s]);
        }
        double pred[NB * O];
        TN_CK(ctx, tn_trainer_predict(tr, xs[1], NB, pred));
        ck_assert_msg(memcmp(pred, ref_pred, sizeof pred) == 0,
                      "%s, optimizer %d, resumed after %d: predictions differ", m->name, opt, k);
        TN_CK(ctx, tn_trainer_save(tr, end_path));
        size_t len;
        unsigned char *end = tu_slurp(end_path, &len);
        ck_assert_msg(len == ref_len && memcmp(end, ref, len) == 0,
                      "%s, optimizer %d, resumed after %d: the final checkpoint differs from the "
                      "uninterrupted run's",
                      m->name, opt, k);
        free(end);
        tn_trainer_free(tr);
        tn_net_free(net);
        tn_ctx_free(ctx);
    }
    free(ref);
    free(ref_path);
    free(ck_path);
    free(end_path);
}
END_TEST

/* The loaded trainer reports what the saved one did, setting by setting
 * and statistic by statistic. */
START_TEST(settings_and_statistics_survive)
{
    tn_ctx *ctx;
    tn_net *net, *net2;
    tn_trainer *tr, *tr2;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    tr = start(ctx, &modes[9], TN_OPT_ADAM, &net);
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_BETA1, 0.8));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_BETA2, 0.95));
    TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_EPSILON, 1e-6));
    double loss;
    for (int s = 0; s < 3; s++) step(ctx, tr, s, &loss);
    char *path = tu_join(dir, "settings.tnck");
    TN_CK(ctx, tn_trainer_save(tr, path));
    TN_CK(ctx, tn_trainer_load(ctx, path, &net2, &tr2));
    /* Every parameter value the trainer answers to, whatever its number. */
    int known = 0;
    for (int p = 0; p < 4096; p++) {
        double a, b;
        if (tn_trainer_get(tr, (tn_train_param)p, &a) != TN_OK) continue;
        known++;
        TN_CK(ctx, tn_trainer_get(tr2, (tn_train_param)p, &b));
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "setting %d: %g saved, %g loaded", p, a, b);
    }
    /* ... and the file holds exactly that many (its SETS section count):
     * a setting added to the trainer but not to the checkpoint fails here. */
    size_t len;
    unsigned char *b = tu_slurp(path, &len);
    size_t off = 12, sets = 0;
    while (off + 12 <= len - 4) {
        const uint32_t tag = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 |
                             (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
        uint64_t sl = 0;
        for (int i = 0; i < 8; i++) sl |= (uint64_t)b[off + 4 + (size_t)i] << (8 * i);
        if (tag == ('S' | 'E' << 8 | 'T' << 16 | (uint32_t)'S' << 24))
            sets = (size_t)(b[off + 12] | b[off + 13] << 8);
        off += 12 + (size_t)sl;
    }
    ck_assert_uint_eq(off, len - 4);
    ck_assert_uint_eq(sets, (size_t)known);
    free(b);
    for (int s = 0; s <= TN_STAT_GRAD_NORM; s++) {
        double a, c;
        TN_CK(ctx, tn_trainer_stat(tr, (tn_train_stat)s, &a));
        TN_CK(ctx, tn_trainer_stat(tr2, (tn_train_stat)s, &c));
        ck_assert_msg(memcmp(&a, &c, sizeof a) == 0, "statistic %d: %g saved, %g loaded", s, a, c);
    }
    ck_assert_uint_eq(tn_trainer_num_steps(tr2), 3);
    /* The base point theta0, which a loaded network's parameters are not. */
    {
        const size_t Pn = tn_net_num_params(net);
        double *b1 = malloc(Pn * sizeof(double)), *b2 = malloc(Pn * sizeof(double));
        TN_CK(ctx, tn_trainer_get_base(tr, b1, Pn));
        TN_CK(ctx, tn_trainer_get_base(tr2, b2, Pn));
        ck_assert(memcmp(b1, b2, Pn * sizeof(double)) == 0);
        TN_CK(ctx, tn_net_get_params(net2, b2, Pn));
        ck_assert(memcmp(b1, b2, Pn * sizeof(double)) != 0);     /* trained away from it */
        ck_assert_int_eq(tn_trainer_get_base(tr2, b2, Pn + 1), TN_E_SHAPE);
        ck_assert_int_eq(tn_trainer_get_base(tr2, NULL, Pn), TN_E_INVALID_ARG);
        ck_assert_int_eq(tn_trainer_get_base(NULL, b2, Pn), TN_E_INVALID_ARG);
        ck_assert_int_eq(tn_trainer_get_base((tn_trainer *)net2, b2, Pn), TN_E_MISUSE);
        free(b1);
        free(b2);
    }
    /* The network is a network: same parameters, same forward. */
    const size_t P = tn_net_num_params(net);
    ck_assert_uint_eq(tn_net_num_params(net2), P);
    double *t1 = malloc(P * sizeof(double)), *t2 = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_get_params(net, t1, P));
    TN_CK(ctx, tn_net_get_params(net2, t2, P));
    ck_assert(memcmp(t1, t2, P * sizeof(double)) == 0);
    free(t1);
    free(t2);
    tn_trainer_free(tr2);
    tn_net_free(net2);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);
    free(path);
}
END_TEST

/* Files of dir named prefix<anything>.tmp. */
static size_t count_temporaries(const char *prefix)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const size_t l = strlen(e->d_name);
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0 && l > 4 &&
             strcmp(e->d_name + l - 4, ".tmp") == 0;
    }
    closedir(d);
    return n;
}

/* A child trains and checkpoints after every step; it is killed with
 * SIGKILL at a moment of the parent's choosing, possibly mid-save.  The
 * checkpoint left is whole, and resuming from it reaches the uninterrupted
 * run's final state bit for bit. */
START_TEST(killed_run_resumes)
{
    const mode *m = &modes[3];
    char *path = tu_join(dir, "killed.tnck"), *ref_path = tu_join(dir, "killed_ref.tnck");
    const int total = 400;
    /* Reference: the uninterrupted run. */
    tn_ctx *ctx;
    tn_net *net;
    tn_trainer *tr;
    double loss;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    tr = start(ctx, m, TN_OPT_ADAM, &net);
    for (int s = 0; s < total; s++) step(ctx, tr, s % (NSTEPS + 4), &loss);
    TN_CK(ctx, tn_trainer_save(tr, ref_path));
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_ctx_free(ctx);

    for (int attempt = 0; attempt < 3; attempt++) {
        unlink(path);
        int pipefd[2];
        ck_assert_int_eq(pipe(pipefd), 0);
        const pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(pipefd[0]);
            tn_ctx *c;
            tn_net *n;
            if (tn_ctx_create(&c) != TN_OK) _exit(2);
            tn_trainer *t = start(c, m, TN_OPT_ADAM, &n);
            for (int s = 0; s < total; s++) {
                step(c, t, s % (NSTEPS + 4), &loss);
                if (tn_trainer_save(t, path) != TN_OK) _exit(3);
                if (s == 20 * (attempt + 1) && write(pipefd[1], "x", 1) != 1) _exit(4);
            }
            _exit(0);
        }
        close(pipefd[1]);
        char c;
        ck_assert_int_eq(read(pipefd[0], &c, 1), 1);     /* it is past step 20 (attempt + 1) */
        close(pipefd[0]);
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));

        ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
        TN_CK(ctx, tn_trainer_load(ctx, path, &net, &tr));
        const int done = (int)tn_trainer_num_steps(tr);
        ck_assert_int_ge(done, 20 * (attempt + 1));
        for (int s = done; s < total; s++) step(ctx, tr, s % (NSTEPS + 4), &loss);
        TN_CK(ctx, tn_trainer_save(tr, path));
        /* A save killed mid-write left its temporary; this save removed it. */
        ck_assert_uint_eq(count_temporaries("killed.tnck."), 0);
        size_t la, lb;
        unsigned char *a = tu_slurp(path, &la), *b = tu_slurp(ref_path, &lb);
        ck_assert_msg(la == lb && memcmp(a, b, la) == 0,
                      "resumed after %d of %d steps: final state differs", done, total);
        free(a);
        free(b);
        tn_trainer_free(tr);
        tn_net_free(net);
        tn_ctx_free(ctx);
    }
    free(path);
    free(ref_path);
}
END_TEST

/* ---- damaged files ---- */

static char *write_file(const char *name, const unsigned char *b, size_t len)
{
    char *p = tu_join(dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    fclose(f);
    return p;
}

static tn_status load_bytes(tn_ctx *ctx, const unsigned char *b, size_t len)
{
    char *p = write_file("damaged.tnck", b, len);
    tn_net *net = (tn_net *)1;
    tn_trainer *tr = (tn_trainer *)1;
    const tn_status st = tn_trainer_load(ctx, p, &net, &tr);
    if (st == TN_OK) {
        tn_trainer_free(tr);
        tn_net_free(net);
    } else {
        ck_assert_ptr_null(net);
        ck_assert_ptr_null(tr);
        ck_assert_msg(strstr(tn_ctx_errmsg(ctx), "tn_trainer_load") != NULL, "message: %s",
                      tn_ctx_errmsg(ctx));
    }
    free(p);
    return st;
}

/* A saved checkpoint with a probe (every section present). */
static unsigned char *good_file(tn_ctx *ctx, size_t *len)
{
    tn_net *net;
    tn_trainer *tr = start(ctx, &modes[9], TN_OPT_ADAM, &net);
    double loss;
    for (int s = 0; s < 2; s++) step(ctx, tr, s, &loss);
    char *p = tu_join(dir, "good.tnck");
    TN_CK(ctx, tn_trainer_save(tr, p));
    tn_trainer_free(tr);
    tn_net_free(net);
    unsigned char *b = tu_slurp(p, len);
    free(p);
    return b;
}

START_TEST(every_truncation_and_flip_is_refused)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    size_t len;
    unsigned char *b = good_file(ctx, &len);
    ck_assert_int_eq(load_bytes(ctx, b, len), TN_OK);
    /* Every truncation: the file exists and reads, so TN_E_FORMAT. */
    for (size_t l = 0; l < len; l += (l < 64 ? 1 : 7))
        ck_assert_msg(load_bytes(ctx, b, l) == TN_E_FORMAT, "truncated to %zu: %s", l,
                      tn_ctx_errmsg(ctx));
    /* Every byte changed: the CRC catches it, except the version field,
     * checked first (TN_E_VERSION when larger). */
    unsigned char *c = malloc(len);
    for (size_t i = 0; i < len; i += (i < 256 ? 1 : 13)) {
        memcpy(c, b, len);
        c[i] ^= 0x10;
        const tn_status st = load_bytes(ctx, c, len);
        const tn_status want = i >= 8 && i < 12 ? TN_E_VERSION : TN_E_FORMAT;
        ck_assert_msg(st == want, "byte %zu flipped: %s (%s)", i, tn_status_string(st),
                      tn_ctx_errmsg(ctx));
    }
    free(c);
    free(b);
    tn_ctx_free(ctx);
}
END_TEST

START_TEST(hostile_sections_are_refused)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    size_t len, off[16];
    unsigned char *b = good_file(ctx, &len);
    const size_t ns = tu_sections(b, len, off, 16);
    ck_assert_uint_eq(ns, 7);       /* NETW SETS STEP THT0 OPTS PROB expl */
    unsigned char *c = malloc(len + 64);

    /* A newer format version. */
    memcpy(c, b, len);
    tu_put_u32(c, 8, 3);
    ck_assert_int_eq(load_bytes(ctx, c, len), TN_E_VERSION);
    tu_put_u32(c, 8, 0);
    tu_reseal(c, len);
    ck_assert_int_eq(load_bytes(ctx, c, len), TN_E_FORMAT);

    /* An unknown critical section: a newer writer's state, never dropped. */
    memcpy(c, b, len - 4);
    memcpy(c + len - 4, "REGR\0\0\0\0\0\0\0\0", 12);
    tu_reseal(c, len + 12);
    ck_assert_int_eq(load_bytes(ctx, c, len + 12), TN_E_VERSION);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "newer"));
    /* An unknown ancillary one (lower-case first letter) is skipped. */
    memcpy(c, b, len - 4);
    memcpy(c + len - 4, "note\3\0\0\0\0\0\0\0abc", 15);
    tu_reseal(c, len + 15);
    ck_assert_int_eq(load_bytes(ctx, c, len + 15), TN_OK);

    /* Each required section missing (cut out, resealed): format error; a
     * section twice: format error. */
    for (size_t k = 0; k < 5; k++) {
        const size_t cut = off[k + 1] - off[k];
        memcpy(c, b, off[k]);
        memcpy(c + off[k], b + off[k + 1], len - off[k + 1]);
        tu_reseal(c, len - cut);
        ck_assert_msg(load_bytes(ctx, c, len - cut) == TN_E_FORMAT, "section %zu cut: %s", k,
                      tn_ctx_errmsg(ctx));
        ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "missing"));
    }
    {
        const size_t sl = off[2] - off[1];       /* SETS, once more at the end */
        unsigned char *d = malloc(len + sl);
        memcpy(d, b, len - 4);
        memcpy(d + len - 4, b + off[1], sl);
        tu_reseal(d, len + sl);
        ck_assert_int_eq(load_bytes(ctx, d, len + sl), TN_E_FORMAT);
        ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "twice"));
        free(d);
    }
    /* A section length past the end. */
    memcpy(c, b, len);
    c[off[2] + 11] = 0x7f;
    tu_reseal(c, len);
    ck_assert_int_eq(load_bytes(ctx, c, len), TN_E_FORMAT);

    /* Values inside sections that are wrong under a valid checksum: the
     * parser validates, it does not trust the CRC.  Offsets are from each
     * section's payload (checkpoint.h). */
    const uint64_t nan_bits = 0x7ff8000000000000u, inf_bits = 0x7ff0000000000000u;
    struct { size_t section, at, bytes; uint64_t value; tn_status want; const char *what; } bad[] = {
        {0, 0, 1, 0x00, TN_E_FORMAT, "network magic"},
        {0, 8, 4, 99, TN_E_VERSION, "network format version from the future"},
        {0, 12, 4, 2, TN_E_FORMAT, "network ndim (its own CRC fails)"},
        {1, 4, 4, 999, TN_E_VERSION, "a setting this library does not know"},
        {1, 8, 8, nan_bits, TN_E_FORMAT, "a setting's value NaN"},
        {2, 8, 8, UINT64_MAX, TN_E_FORMAT, "more updates than steps"},
        {2, 16, 4, 8, TN_E_FORMAT, "explicit-defaults mask out of range"},
        {2, 20, 4, 64, TN_E_FORMAT, "statistics mask out of range"},
        {2, 24, 8, inf_bits, TN_E_FORMAT, "a valid statistic infinite"},
        {3, 0, 4, 0, TN_E_FORMAT, "expansion order 0"},
        {3, 0, 4, 2, TN_E_FORMAT, "expansion order unlike the setting"},
        {3, 4, 8, 1, TN_E_FORMAT, "theta0 length"},
        {3, 12, 8, inf_bits, TN_E_FORMAT, "theta0 infinite"},
        {4, 0, 4, 1, TN_E_FORMAT, "optimizer state count"},
        {4, 4, 8, UINT64_MAX, TN_E_FORMAT, "optimizer state length"},
        {4, 12, 8, nan_bits, TN_E_FORMAT, "optimizer state NaN"},
        {5, 0, 8, 0, TN_E_FORMAT, "probe of 0 rows"},
        {5, 0, 8, 9, TN_E_FORMAT, "probe rows past the section"},
        {5, 8, 8, 1, TN_E_FORMAT, "probe units unlike the network's"},
        {5, 16, 8, nan_bits, TN_E_FORMAT, "probe value NaN"},
        {5, 16 + 4 * D * 8 + 1, 1, 2, TN_E_FORMAT, "pattern byte not 0/1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(c, b, len);
        for (size_t j = 0; j < bad[i].bytes; j++)
            c[off[bad[i].section] + 12 + bad[i].at + j] = (unsigned char)(bad[i].value >> (8 * j));
        tu_reseal(c, len);
        const tn_status st = load_bytes(ctx, c, len);
        ck_assert_msg(st == bad[i].want, "%s: %s (%s)", bad[i].what, tn_status_string(st),
                      tn_ctx_errmsg(ctx));
    }
    free(c);
    free(b);
    tn_ctx_free(ctx);
}
END_TEST

/* A checkpoint written before the regret (format version 1; tests/data,
 * made by the library at 6afcd02: input {4}, dense 6, ReLU, dense 3,
 * default parameterization, tn_net_init seed 5; softmax cross-entropy, Adam
 * at 0.05, diagnostics with the probe v1_probe; four steps on v1_batch(0..3))
 * loads, as the state of the same run made by this library: the same
 * parameters, step count and last statistics.  Both run on three steps to
 * the same losses and parameters, the loaded one counting exploration from
 * the resume.  The regret settings have their defaults, recording can be
 * turned on, and the file is saved again as version 2. */
enum { V1_D = 4, V1_O = 3, V1_N = 6, V1_PROBE = 5, V1_STEPS = 4 };

static void v1_batch(int s, double *x, double *y)
{
    for (int i = 0; i < V1_N * V1_D; i++) x[i] = sin(0.37 * (i + 1) + s);
    for (int i = 0; i < V1_N; i++)
        for (int c = 0; c < V1_O; c++) y[i * V1_O + c] = c == (i + s) % V1_O;
}

static tn_trainer *v1_run(tn_ctx *c, tn_net **net)
{
    const size_t shape[1] = {V1_D};
    TN_CK(c, tn_net_create(c, shape, 1, net));
    TN_CK(c, tn_net_add_dense(*net, 6));
    TN_CK(c, tn_net_add_activation(*net, TN_ACT_RELU));
    TN_CK(c, tn_net_add_dense(*net, V1_O));
    TN_CK(c, tn_net_init(*net, 5));
    tn_trainer *tr;
    TN_CK(c, tn_trainer_create(*net, &tr));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.05));
    TN_CK(c, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, 1));
    double probe[V1_PROBE * V1_D], x[V1_N * V1_D], y[V1_N * V1_O];
    for (int i = 0; i < V1_PROBE * V1_D; i++) probe[i] = cos(0.53 * (i + 1));
    TN_CK(c, tn_trainer_set_probe(tr, probe, V1_PROBE));
    for (int s = 0; s < V1_STEPS; s++) {
        v1_batch(s, x, y);
        TN_CK(c, tn_trainer_step(tr, x, y, V1_N, NULL));
    }
    return tr;
}

static double *v1_params(tn_net *net)
{
    const size_t P = tn_net_num_params(net);
    double *th = malloc(P * sizeof *th);
    ck_assert_int_eq(tn_net_get_params(net, th, P), TN_OK);
    return th;
}

START_TEST(version_1_checkpoints_load)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    const char *data = getenv("TN_TEST_DATA");
    ck_assert_msg(data != NULL, "TN_TEST_DATA is not set (tests/meson.build sets it)");
    char *path = tu_join(data, "checkpoint-v1.tnck");
    size_t len;
    unsigned char *file = tu_slurp(path, &len);
    ck_assert_uint_eq(tu_get_u32(file, 8), 1);
    free(file);
    tn_net *old_net, *net;
    tn_trainer *old;
    TN_CK(ctx, tn_trainer_load(ctx, path, &old_net, &old));
    tn_trainer *tr = v1_run(ctx, &net);
    ck_assert_uint_eq(tn_trainer_num_steps(old), V1_STEPS);
    double v;
    TN_CK(ctx, tn_trainer_get(old, TN_TRAIN_RECORD_TAYLOR, &v));
    ck_assert_double_eq(v, 0);
    TN_CK(ctx, tn_trainer_get(old, TN_TRAIN_OPTIMIZER, &v));
    ck_assert_double_eq(v, TN_OPT_ADAM);
    /* Bit for bit on the kernels that wrote the file; another kernel set
     * sums in another order and agrees to rounding, the 1e-12 every result
     * keeps between kernel sets (test_kernels), which four Adam steps (each
     * moving a parameter by about the learning rate whatever the rounding
     * of its gradient) do not amplify. */
    const size_t P = tn_net_num_params(net);
    double *a = v1_params(old_net), *b = v1_params(net);
    ck_assert_double_le(tu_rel_err(a, b, P, 1e-300), 1e-12);
    double sa, sb;
    TN_CK(ctx, tn_trainer_stat(old, TN_STAT_LOSS_REACHED, &sa));
    TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS_REACHED, &sb));
    ck_assert_double_le(fabs(sa - sb), 1e-12 * fabs(sb));
    /* Exploration restarts at the resume: the configurations there, no
     * unit switched yet. */
    TN_CK(ctx, tn_trainer_stat(old, TN_STAT_CONFIGS_VISITED, &sa));
    ck_assert(sa >= 1 && sa <= V1_PROBE);
    TN_CK(ctx, tn_trainer_stat(old, TN_STAT_UNITS_EVER_SWITCHED, &sa));
    ck_assert_double_eq(sa, 0);
    double x[V1_N * V1_D], y[V1_N * V1_O];
    for (int s = V1_STEPS; s < V1_STEPS + 3; s++) {
        v1_batch(s, x, y);
        double la, lb;
        TN_CK(ctx, tn_trainer_step(old, x, y, V1_N, &la));
        TN_CK(ctx, tn_trainer_step(tr, x, y, V1_N, &lb));
        ck_assert_double_le(fabs(la - lb), 1e-12 * fabs(lb));
    }
    free(a), free(b);
    a = v1_params(old_net), b = v1_params(net);
    ck_assert_double_le(tu_rel_err(a, b, P, 1e-300), 1e-12);
    TN_CK(ctx, tn_trainer_stat(old, TN_STAT_CONFIGS_VISITED, &sa));
    TN_CK(ctx, tn_trainer_stat(tr, TN_STAT_CONFIGS_VISITED, &sb));
    ck_assert(sa >= V1_PROBE && sa <= sb);
    /* Recording turned on after the resume; saved as version 2. */
    TN_CK(ctx, tn_trainer_set(old, TN_TRAIN_RECORD_TAYLOR, 1));
    v1_batch(0, x, y);
    TN_CK(ctx, tn_trainer_step(old, x, y, V1_N, NULL));
    double R, F;
    TN_CK(ctx, tn_trainer_regret(old, &R, &F));
    ck_assert(isfinite(R) && isfinite(F));
    char *again = tu_join(dir, "again.tnck");
    TN_CK(ctx, tn_trainer_save(old, again));
    file = tu_slurp(again, &len);
    ck_assert_uint_eq(tu_get_u32(file, 8), 2);
    free(file);
    tn_trainer *t2;
    tn_net *n2;
    TN_CK(ctx, tn_trainer_load(ctx, again, &n2, &t2));
    tn_trainer_free(t2);
    tn_net_free(n2);
    free(a), free(b), free(again), free(path);
    tn_trainer_free(tr);
    tn_net_free(net);
    tn_trainer_free(old);
    tn_net_free(old_net);
    tn_ctx_free(ctx);
}
END_TEST

START_TEST(not_a_checkpoint)
{
    tn_ctx *ctx;
    ck_assert_int_eq(tn_ctx_create(&ctx), TN_OK);
    tn_net *net = (tn_net *)1;
    tn_trainer *tr = (tn_trainer *)1;
    /* A network file is not a checkpoint. */
    const size_t widths[] = {4, O};
    tn_net *n = tu_mlp(ctx, D, widths, 2, TN_ACT_TANH, TN_PARAM_NTK, 1);
    char *p = tu_join(dir, "a.tnnet");
    TN_CK(ctx, tn_net_save(n, p));
    ck_assert_int_eq(tn_trainer_load(ctx, p, &net, &tr), TN_E_FORMAT);
    ck_assert_ptr_null(net);
    ck_assert_ptr_null(tr);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not a taylornet checkpoint"));
    /* Nor is a directory, a FIFO (refused at once, never waited on) or
     * nothing. */
    ck_assert_int_eq(tn_trainer_load(ctx, dir, &net, &tr), TN_E_IO);
    char *fifo = tu_join(dir, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    ck_assert_int_eq(tn_trainer_load(ctx, fifo, &net, &tr), TN_E_IO);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not a regular file"));
    char *none = tu_join(dir, "none");
    ck_assert_int_eq(tn_trainer_load(ctx, none, &net, &tr), TN_E_IO);
    /* Arguments. */
    ck_assert_int_eq(tn_trainer_load(NULL, p, &net, &tr), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_load(ctx, NULL, &net, &tr), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_load(ctx, p, NULL, &tr), TN_E_INVALID_ARG);
    ck_assert_ptr_null(tr);
    ck_assert_int_eq(tn_trainer_load(ctx, p, &net, NULL), TN_E_INVALID_ARG);
    ck_assert_ptr_null(net);
    ck_assert_int_eq(tn_trainer_load((tn_ctx *)n, p, &net, &tr), TN_E_MISUSE);
    tn_trainer *t;
    TN_CK(ctx, tn_trainer_create(n, &t));
    ck_assert_int_eq(tn_trainer_save(NULL, p), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_save(t, NULL), TN_E_INVALID_ARG);
    ck_assert_int_eq(tn_trainer_save((tn_trainer *)n, p), TN_E_MISUSE);
    char *nodir = tu_join(dir, "no/such/dir.tnck");
    ck_assert_int_eq(tn_trainer_save(t, nodir), TN_E_IO);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "tn_trainer_save"));
    tn_trainer_free(t);
    tn_net_free(n);
    free(p);
    free(fifo);
    free(none);
    free(nodir);
    tn_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("resume");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, resume_is_bit_identical, 0, (int)(NOPT * NMODES));
    tcase_add_test(tc, settings_and_statistics_survive);
    tcase_add_test(tc, killed_run_resumes);
    suite_add_tcase(s, tc);
    tc = tcase_create("damaged");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_truncation_and_flip_is_refused);
    tcase_add_test(tc, hostile_sections_are_refused);
    tcase_add_test(tc, not_a_checkpoint);
    tcase_add_test(tc, version_1_checkpoints_load);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
