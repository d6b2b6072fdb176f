/* side_by_side.c -- the machinery of compare and the sweeps (side_by_side.h). */
#define _POSIX_C_SOURCE 200809L

#include "side_by_side.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/*=====================================================================
 * Models
 *===================================================================*/

cmp_model cmp_model_make(cmp_mode mode, int order, uint64_t reexpand)
{
    cmp_model m;
    memset(&m, 0, sizeof m);
    m.mode = mode;
    switch (mode) {
    case CMP_FULL:
        snprintf(m.label, sizeof m.label, "full");
        break;
    case CMP_LINEARIZED:
        m.order = 1;
        snprintf(m.label, sizeof m.label, "linearized");
        break;
    case CMP_TAYLORIZED:
        if (order < 2 || order > tn_taylor_max_order())
            ex_die("a Taylorized model needs an order in [2, %d], not %d", tn_taylor_max_order(),
                   order);
        m.order = order;
        snprintf(m.label, sizeof m.label, "taylor-k%d", order);
        break;
    case CMP_RELINEARIZED:
        if (reexpand == 0) ex_die("a re-linearized model needs a period K >= 1");
        m.order = 1;
        m.reexpand = reexpand;
        snprintf(m.label, sizeof m.label, "relin-K%" PRIu64, reexpand);
        break;
    default: ex_die("unknown model mode %d", (int)mode);
    }
    return m;
}

void cmp_add_models(const char *flag, const char *text, cmp_model *models, size_t *n,
                    size_t cap)
{
    if (strcmp(text, "none") == 0) return;
    const int orders = strcmp(flag, "orders") == 0;
    double list[64];
    const size_t m = ex_parse_list(flag, text, list, sizeof list / sizeof list[0], 1);
    for (size_t i = 0; i < m; i++) {
        if (*n == cap) ex_die("--%s: too many models (at most %zu in all)", flag, cap);
        if (!orders) {
            if (list[i] < 1) ex_die("--%s: K must be >= 1", flag);
            models[(*n)++] = cmp_model_make(CMP_RELINEARIZED, 1, (uint64_t)list[i]);
        } else if (list[i] < 1 || list[i] > tn_taylor_max_order()) {
            ex_die("--%s: %g is not in [1, %d]", flag, list[i], tn_taylor_max_order());
        } else {
            models[(*n)++] = list[i] == 1 ? cmp_model_make(CMP_LINEARIZED, 1, 0)
                                          : cmp_model_make(CMP_TAYLORIZED, (int)list[i], 0);
        }
    }
}

const char *cmp_mode_name(cmp_mode mode)
{
    switch (mode) {
    case CMP_FULL: return "full";
    case CMP_LINEARIZED: return "linearized";
    case CMP_TAYLORIZED: return "taylorized";
    case CMP_RELINEARIZED: return "relinearized";
    }
    return "?";
}

/*=====================================================================
 * Configuration
 *===================================================================*/

void cmp_config_default(cmp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 5;
    cfg->batch = 128;
    cfg->optimizer = TN_OPT_MOMENTUM;
    cfg->loss = TN_LOSS_SOFTMAX_XENT;
    cfg->lr = 0.01;
    cfg->momentum = 0.9;
    cfg->clip = 0.0;
    cfg->alpha = 1.0;
    cfg->centered = 0;
    cfg->shuffle_seed = 1;
    ex_net_spec_default(&cfg->spec);
    cfg->record_every = 0;
    cfg->eval_n = 1000;
    cfg->probe_n = 256;
    cfg->diagnostics = 1;
    cfg->threads = 1;
    cfg->jobs = 2;
    cfg->progress = 1;
    cfg->notes = 1;
    cfg->title = "training";
}

size_t cmp_total_steps(const cmp_config *cfg, size_t n_train)
{
    if (n_train == 0 || cfg->batch == 0) return 0;
    /* ex_batcher cuts a batch larger than the data set to its size. */
    const size_t b = cfg->batch < n_train ? cfg->batch : n_train;
    return cfg->epochs * ((n_train + b - 1) / b);
}

size_t cmp_record_every_for(size_t total_steps, size_t points)
{
    if (points == 0) points = 1;
    const size_t m = (total_steps + points - 1) / points;
    return m ? m : 1;
}

static int is_recorded(const cmp_config *cfg, size_t step, size_t total)
{
    return step == total || (cfg->record_every && step % cfg->record_every == 0);
}

static size_t count_recorded(const cmp_config *cfg, size_t total)
{
    if (total == 0) return 0;
    if (cfg->record_every == 0) return 1;
    return total / cfg->record_every + (total % cfg->record_every != 0);
}

/*=====================================================================
 * Losses and small helpers
 *===================================================================*/

double cmp_loss(int loss, const double *g, const double *y, size_t n, size_t O, double alpha)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *gi = g + i * O, *yi = y + i * O;
        if (loss == TN_LOSS_MSE) {
            for (size_t c = 0; c < O; c++) total += 0.5 * (gi[c] - yi[c]) * (gi[c] - yi[c]);
        } else {
            /* log softmax through the largest logit, so exp never overflows. */
            double mx = gi[0];
            for (size_t c = 1; c < O; c++) mx = gi[c] > mx ? gi[c] : mx;
            double s = 0.0;
            for (size_t c = 0; c < O; c++) s += exp(gi[c] - mx);
            const double lse = mx + log(s);
            for (size_t c = 0; c < O; c++) total -= yi[c] * (gi[c] - lse);
        }
    }
    return n ? total / (double)n / (alpha * alpha) : 0.0;
}

static double norm2(const double *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += v[i] * v[i];
    return sqrt(s);
}

/* "1m05s", "42s", "1h02m". */
static void fmt_duration(char *buf, size_t len, double s)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "?");
        return;
    }
    const long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, len, "%lds", t);
}

/*=====================================================================
 * Progress: one line on stdout, redrawn in place on a terminal, printed
 * every PROGRESS_PLAIN_SECONDS as a plain line otherwise (a log file or a
 * pipe would otherwise fill with carriage returns).
 *===================================================================*/

#define PROGRESS_TTY_SECONDS 0.25
#define PROGRESS_PLAIN_SECONDS 15.0

typedef struct model_progress {
    int state;          /* 0 waiting, 1 running, 2 finished */
    size_t steps;       /* taken */
    size_t epoch;       /* 1-based, of the running model */
} model_progress;

typedef struct shared {
    const cmp_config *cfg;
    const ex_dataset *train, *test;
    const cmp_model *models;
    cmp_run *run;
    pthread_mutex_t lock;       /* guards everything below */
    size_t next;                /* the next model to train */
    model_progress *mp;
    int tty;
    size_t columns;             /* the terminal's width (tty only) */
    double start, last_print;
    size_t last_len;            /* characters of the progress line on screen */
} shared;

/* A Taylor step costs about twice a full step at these sizes (order 1 with
 * a new batch every step; for ReLU nets orders 2-4 little more, as the
 * engine skips the blocks that vanish above each layer's depth): enough for
 * an ETA. */
static double step_weight(const cmp_model *m)
{
    return m->order == 0 ? 1.0 : 2.0;
}

static void progress_line(shared *sh, int force)
{
    const cmp_config *cfg = sh->cfg;
    if (!cfg->progress) return;
    const double now = ex_now();
    if (!force && now - sh->last_print < (sh->tty ? PROGRESS_TTY_SECONDS : PROGRESS_PLAIN_SECONDS))
        return;
    sh->last_print = now;
    double total = 0.0, done = 0.0;
    size_t finished = 0;
    for (size_t i = 0; i < sh->run->n; i++) {
        const double w = step_weight(&sh->models[i]);
        total += w * (double)sh->run->total_steps;
        /* A diverged model counts as done. */
        done += w * (double)(sh->mp[i].state == 2 ? sh->run->total_steps : sh->mp[i].steps);
        finished += sh->mp[i].state == 2;
    }
    char line[512];
    size_t len = 0;
    const double frac = total > 0 ? done / total : 1.0;
    len += (size_t)snprintf(line + len, sizeof line - len, "%s %3.0f%% | %zu/%zu done |",
                            cfg->title ? cfg->title : "training", 100.0 * frac, finished,
                            sh->run->n);
    int running = 0;
    for (size_t i = 0; i < sh->run->n && len < sizeof line; i++)
        if (sh->mp[i].state == 1)
            len += (size_t)snprintf(line + len, sizeof line - len, "%s %s epoch %zu/%zu",
                                    running++ ? "," : "", sh->models[i].label, sh->mp[i].epoch,
                                    cfg->epochs);
    char el[32], eta[32];
    const double elapsed = now - sh->start;
    fmt_duration(el, sizeof el, elapsed);
    fmt_duration(eta, sizeof eta, frac > 0 ? elapsed * (1.0 - frac) / frac : -1.0);
    if (len < sizeof line)
        len += (size_t)snprintf(line + len, sizeof line - len, " | %s, ETA %s", el, eta);
    if (len >= sizeof line) len = sizeof line - 1;
    if (sh->tty) {
        /* A line wider than the terminal wraps, and \r then returns to its
         * second half: cut it to the width. */
        if (len >= sh->columns) {
            len = sh->columns - 1;
            line[len] = '\0';
        }
        /* Blanks over what is left of a longer previous line. */
        printf("\r%s%*s", line, sh->last_len > len ? (int)(sh->last_len - len) : 0, "");
        sh->last_len = len;
    } else {
        printf("%s\n", line);
    }
    fflush(stdout);
}

/* A line of its own (a model finished), above the progress line. */
static void progress_note(shared *sh, const char *text)
{
    if (!sh->cfg->progress) return;
    if (sh->tty && sh->last_len) printf("\r%*s\r", (int)sh->last_len, "");
    sh->last_len = 0;
    printf("%s\n", text);
    fflush(stdout);
    if (sh->tty) progress_line(sh, 1);
}

static void progress_clear(shared *sh)
{
    if (sh->cfg->progress && sh->tty && sh->last_len) {
        printf("\r%*s\r", (int)sh->last_len, "");
        fflush(stdout);
    }
    sh->last_len = 0;
}

/* Columns of the terminal on stdout; 80 when it cannot tell. */
static size_t terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

static void lock(shared *sh)
{
    if (pthread_mutex_lock(&sh->lock) != 0) ex_die("pthread_mutex_lock failed");
}

static void unlock(shared *sh)
{
    if (pthread_mutex_unlock(&sh->lock) != 0) ex_die("pthread_mutex_unlock failed");
}

/*=====================================================================
 * Training one model
 *===================================================================*/

static void configure_trainer(tn_ctx *ctx, tn_trainer *tr, const cmp_config *cfg,
                              const cmp_model *m)
{
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LOSS, cfg->loss));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, cfg->optimizer));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, cfg->lr));
    /* Momentum belongs to the heavy-ball optimizers; the others keep their
     * own defaults. */
    if (cfg->momentum >= 0 &&
        (cfg->optimizer == TN_OPT_MOMENTUM || cfg->optimizer == TN_OPT_NESTEROV))
        EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_MOMENTUM, cfg->momentum));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_CLIP_NORM, cfg->clip));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, cfg->alpha));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_CENTERED, cfg->centered));
    /* Setting the order makes the parameters now -- the initialization --
     * the base theta0 of the expansion (and of the centering). */
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_ORDER, m->order));
    EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, (double)m->reexpand));
}

/* A diagnostic statistic of the last step.  A model on its way to
 * diverging can keep finite parameters while the network's loss at them,
 * or its first-order prediction, leaves the doubles; the library refuses to
 * hand that over (TN_E_NUMERIC), and the curves record it as inf: the run
 * goes on to the step that fails, where the model is marked diverged. */
static double step_stat(tn_ctx *ctx, tn_trainer *tr, tn_train_stat s)
{
    double v = NAN;
    const tn_status st = tn_trainer_stat(tr, s, &v);
    if (st == TN_E_NUMERIC) return INFINITY;
    ex_check_status(ctx, st, "tn_trainer_stat", __FILE__, __LINE__);
    return v;
}

/* Marks a model diverged after `step`, with the library's message. */
static void set_diverged(tn_ctx *ctx, cmp_result *res, size_t step, const char *what)
{
    res->diverged = 1;
    res->diverged_step = step;
    snprintf(res->message, sizeof res->message, "%s%s", what, tn_ctx_errmsg(ctx));
}

/* Records a curve point after step `step` (a successful step); returns 1
 * when the model's outputs on the eval images overflow (TN_E_NUMERIC from
 * tn_trainer_predict: its parameters are finite, its function is not),
 * which ends its training. */
static int record_point(tn_ctx *ctx, tn_trainer *tr, const shared *sh, cmp_result *res,
                         size_t step, size_t epoch, double *loss_sum, size_t *rows_sum,
                         double t_start)
{
    const cmp_config *cfg = sh->cfg;
    const ex_dataset *test = sh->test;
    const size_t O = sh->run->outputs, en = sh->run->eval_n;
    cmp_point *pt = &res->points[res->n_points];
    pt->step = step;
    pt->epoch = epoch;
    pt->train_loss = *rows_sum ? *loss_sum / (double)*rows_sum : NAN;
    *loss_sum = 0.0;
    *rows_sum = 0;
    pt->eval_loss = pt->eval_accuracy = pt->fs_distance = NAN;
    int overflowed = 0;
    if (en) {
        double *out = res->eval_out + res->n_points * en * O;
        const tn_status st = tn_trainer_predict(tr, test->x, en, out);
        if (st == TN_E_NUMERIC) {
            overflowed = 1;
            /* Now, before the next call replaces the context's message. */
            set_diverged(ctx, res, step, "its outputs overflow: ");
            for (size_t e = 0; e < en * O; e++) out[e] = NAN;
        } else {
            EX_CHECK(ctx, st);
            pt->eval_loss = cmp_loss(cfg->loss, out, test->y, en, O, cfg->alpha);
            pt->eval_accuracy = (double)ex_count_correct(out, en, O, test->labels) / (double)en;
        }
    }
    pt->batch_loss = pt->taylor_predicted = pt->loss_reached = NAN;
    pt->pattern_change_step = pt->pattern_change_init = NAN;
    EX_CHECK(ctx, tn_trainer_stat(tr, TN_STAT_LOSS, &pt->batch_loss));
    if (cfg->diagnostics) {
        pt->taylor_predicted = step_stat(ctx, tr, TN_STAT_TAYLOR_PREDICTED);
        pt->loss_reached = step_stat(ctx, tr, TN_STAT_LOSS_REACHED);
        if (cfg->probe_n) {
            EX_CHECK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_STEP,
                                          &pt->pattern_change_step));
            EX_CHECK(ctx, tn_trainer_stat(tr, TN_STAT_PATTERN_CHANGE_INIT,
                                          &pt->pattern_change_init));
        }
    }
    pt->seconds = ex_now() - t_start;
    res->n_points++;
    return overflowed;
}

/* The trained model's loss on the whole data set, in chunks (the mean over
 * a chunk, weighted by its rows, is the mean over the set). */
static double dataset_loss(tn_ctx *ctx, tn_trainer *tr, const ex_dataset *ds)
{
    double total = 0.0;
    for (size_t i = 0; i < ds->n; i += EX_EVAL_CHUNK) {
        const size_t rows = ds->n - i < EX_EVAL_CHUNK ? ds->n - i : EX_EVAL_CHUNK;
        double l;
        const tn_status st =
            tn_trainer_loss(tr, ds->x + i * ds->d, ds->y + i * ds->classes, rows, &l);
        if (st == TN_E_NUMERIC) return NAN;   /* the caller says why */
        EX_CHECK(ctx, st);
        total += l * (double)rows;
    }
    return total / (double)ds->n;
}

/*---------------------------------------------------------------------
 * Checkpoints of a model: its trainer, saved by the library, and what was
 * measured of it, in a file of this program's own (same machine, same
 * build: raw structs), each written whole or not at all.
 *-------------------------------------------------------------------*/

/* What train_one keeps between steps besides the trainer. */
typedef struct progress_state {
    size_t rows_sum, plain_steps, all_steps;
    double loss_sum, plain_time, all_time, seconds;
} progress_state;

#define STATE_MAGIC "TNCMPST1"

static void model_path(char *buf, size_t cap, const char *dir, const cmp_model *m,
                       const char *ext)
{
    snprintf(buf, cap, "%s/%s.%s", dir, m->label, ext);
}

static void save_state(const char *dir, const cmp_model *m, const cmp_result *res,
                       const progress_state *ps, size_t eval_rows)
{
    char path[4096], tmp[4200];
    model_path(path, sizeof path, dir, m, "state");
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL;
    ok = ok && fwrite(STATE_MAGIC, 8, 1, f) == 1 && fwrite(res, sizeof *res, 1, f) == 1 &&
         fwrite(ps, sizeof *ps, 1, f) == 1;
    ok = ok && (res->n_points == 0 ||
                fwrite(res->points, sizeof(cmp_point), res->n_points, f) == res->n_points);
    ok = ok && (eval_rows == 0 ||
                fwrite(res->eval_out, sizeof(double), eval_rows, f) == eval_rows);
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) ex_die("cannot write the checkpoint %s", path);
}

/* The measurements saved with a checkpoint of `steps` steps, into res and
 * *ps (res's arrays are allocated already); 0 if there are none that fit. */
static int load_state(const char *dir, const cmp_model *m, uint64_t steps, cmp_result *res,
                      progress_state *ps, size_t cap, size_t eval_per_point)
{
    char path[4096];
    model_path(path, sizeof path, dir, m, "state");
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    char magic[8];
    cmp_result saved;
    int ok = fread(magic, 8, 1, f) == 1 && memcmp(magic, STATE_MAGIC, 8) == 0 &&
             fread(&saved, sizeof saved, 1, f) == 1 && fread(ps, sizeof *ps, 1, f) == 1 &&
             saved.steps == steps && saved.n_points <= cap;
    ok = ok && fread(res->points, sizeof(cmp_point), saved.n_points, f) == saved.n_points &&
         fread(res->eval_out, sizeof(double), saved.n_points * eval_per_point, f) ==
             saved.n_points * eval_per_point;
    fclose(f);
    if (!ok) return 0;
    res->n_points = saved.n_points;
    res->diverged = saved.diverged;
    res->diverged_step = saved.diverged_step;
    memcpy(res->message, saved.message, sizeof res->message);
    return 1;
}

static void train_one(shared *sh, tn_ctx *ctx, const tn_net *init, size_t index)
{
    const cmp_config *cfg = sh->cfg;
    const cmp_model *m = &sh->models[index];
    cmp_result *res = &sh->run->results[index];
    const ex_dataset *train = sh->train, *test = sh->test;
    const size_t O = sh->run->outputs, P = sh->run->P, total = sh->run->total_steps;
    const double t_start = ex_now();

    const size_t cap = count_recorded(cfg, total), eval_per_point = sh->run->eval_n * O;
    res->model = *m;
    res->points = ex_xcalloc(cap, sizeof(cmp_point));
    res->eval_out = ex_xmalloc(cap * sh->run->eval_n, O * sizeof(double));
    res->theta = ex_xmalloc(P, sizeof(double));
    progress_state ps = {0, 0, 0, 0.0, 0.0, 0.0, 0.0};

    tn_net *net = NULL;
    tn_trainer *tr = NULL;
    char path[4096];
    if (cfg->resume_dir) {
        /* A model checkpointed by an earlier run goes on where it was, with
         * what was measured of it so far; one without a checkpoint (or
         * whose measurements do not match it) starts over. */
        model_path(path, sizeof path, cfg->resume_dir, m, "tnck");
        if (access(path, F_OK) == 0) {
            EX_CHECK(ctx, tn_trainer_load(ctx, path, &net, &tr));
            if (!load_state(cfg->resume_dir, m, tn_trainer_num_steps(tr), res, &ps, cap,
                            eval_per_point)) {
                tn_trainer_free(tr);
                tn_net_free(net);
                tr = NULL;
                net = NULL;
                res->n_points = 0;
                memset(&ps, 0, sizeof ps);
            }
        }
    }
    if (tr == NULL) {
        /* Its own copy of the initialization: every model starts from the
         * same theta0 and the networks do not share parameters. */
        EX_CHECK(ctx, tn_net_clone(init, &net));
        EX_CHECK(ctx, tn_trainer_create(net, &tr));
        configure_trainer(ctx, tr, cfg, m);
        /* The probe's reference pattern is the initialization's. */
        if (cfg->diagnostics && cfg->probe_n)
            EX_CHECK(ctx, tn_trainer_set_probe(tr, test->x, cfg->probe_n));
    }

    /* The same seed for every model: the same batches in the same order
     * (a resumed model skips those it has taken). */
    ex_batcher batcher;
    ex_batcher_init(&batcher, train, cfg->batch, cfg->shuffle_seed);
    size_t step = (size_t)tn_trainer_num_steps(tr), rows_sum = ps.rows_sum;
    size_t plain_steps = ps.plain_steps, all_steps = ps.all_steps;
    double loss_sum = ps.loss_sum, plain_time = ps.plain_time, all_time = ps.all_time;
    ex_batcher_skip(&batcher, step);
    const size_t first = 1 + step / (size_t)ex_batcher_steps_per_epoch(&batcher);
    const double t_resumed = t_start - ps.seconds;
    for (size_t epoch = first; epoch <= cfg->epochs && !res->diverged; epoch++) {
        lock(sh);
        sh->mp[index].epoch = epoch;
        unlock(sh);
        size_t rows;
        while ((rows = ex_batcher_next(&batcher)) > 0) {
            step++;
            const int rec = is_recorded(cfg, step, total);
            /* Diagnostics cost a JVP and three forwards: only where a point
             * is recorded.  Their "pattern change in the step" is then the
             * change since the previous recorded step. */
            if (cfg->diagnostics) EX_CHECK(ctx, tn_trainer_set(tr, TN_TRAIN_DIAGNOSTICS, rec));
            double loss;
            const double t0 = ex_now();
            const tn_status st = tn_trainer_step(tr, batcher.x, batcher.y, rows, &loss);
            const double dt = ex_now() - t0;
            if (st == TN_E_NUMERIC) {
                /* Not a bug: a model (say a high-order Taylor model at a large
                 * learning rate) left the region where it is finite.  The
                 * parameters are those before the step; the others go on. */
                set_diverged(ctx, res, step, "");
                break;
            }
            EX_CHECK(ctx, st);
            all_time += dt;
            all_steps++;
            if (!(rec && cfg->diagnostics)) {
                plain_time += dt;
                plain_steps++;
            }
            loss_sum += loss * (double)rows;
            rows_sum += rows;
            if (rec && record_point(ctx, tr, sh, res, step, epoch, &loss_sum, &rows_sum,
                                    t_resumed))
                break;
            lock(sh);
            sh->mp[index].steps = step;
            progress_line(sh, 0);
            unlock(sh);
        }
        if (cfg->checkpoint_dir) {
            /* The trainer first: a state file that does not match the
             * checkpoint's step count is ignored (the model starts over). */
            model_path(path, sizeof path, cfg->checkpoint_dir, m, "tnck");
            EX_CHECK(ctx, tn_trainer_save(tr, path));
            res->steps = (size_t)tn_trainer_num_steps(tr);
            ps = (progress_state){rows_sum, plain_steps, all_steps, loss_sum, plain_time, all_time,
                                  ex_now() - t_resumed};
            save_state(cfg->checkpoint_dir, m, res, &ps, res->n_points * eval_per_point);
        }
    }
    ex_batcher_free(&batcher);

    res->steps = (size_t)tn_trainer_num_steps(tr);
    EX_CHECK(ctx, tn_net_get_params(net, res->theta, P));
    res->seconds_per_step = plain_steps ? plain_time / (double)plain_steps
                            : all_steps ? all_time / (double)all_steps
                                        : NAN;
    res->train_loss = res->test_accuracy = res->fs_distance = NAN;
    res->param_distance = res->mask_change = NAN;
    res->test_out = ex_xmalloc(test->n, O * sizeof(double));
    if (!res->diverged) {
        const tn_status st = tn_trainer_predict(tr, test->x, test->n, res->test_out);
        if (st == TN_E_NUMERIC) set_diverged(ctx, res, res->steps, "its outputs overflow: ");
        else EX_CHECK(ctx, st);
    }
    if (!res->diverged) {
        res->test_accuracy =
            (double)ex_count_correct(res->test_out, test->n, O, test->labels) / (double)test->n;
        res->train_loss = dataset_loss(ctx, tr, train);
        if (isnan(res->train_loss)) {
            set_diverged(ctx, res, res->steps, "its loss on the training set overflows: ");
            res->test_accuracy = NAN;
        }
    }
    if (!res->diverged) {
        double *d = ex_xmalloc(P, sizeof(double));
        for (size_t i = 0; i < P; i++) d[i] = res->theta[i] - sh->run->theta0[i];
        res->param_distance = norm2(d, P) / norm2(sh->run->theta0, P);
        free(d);
        /* The last step is always recorded, so its diagnostics are there. */
        if (res->n_points && res->points[res->n_points - 1].step == res->steps)
            res->mask_change = res->points[res->n_points - 1].pattern_change_init;
    } else {
        for (size_t e = 0; e < test->n * O; e++) res->test_out[e] = NAN;
    }
    tn_trainer_free(tr);
    tn_net_free(net);
    res->seconds = ex_now() - t_resumed;

    char note[512];
    if (res->diverged)
        snprintf(note, sizeof note, "  %-12s diverged at step %zu (%s)", m->label,
                 res->diverged_step, res->message);
    else
        snprintf(note, sizeof note,
                 "  %-12s done: %zu steps, %.3f s/step, test accuracy %.4f, %.1f s", m->label,
                 res->steps, res->seconds_per_step, res->test_accuracy, res->seconds);
    lock(sh);
    sh->mp[index].state = 2;
    if (cfg->notes) progress_note(sh, note);
    unlock(sh);
}

/* A worker: its own context (the library's rule: one per thread) and its
 * own copy of the initial network, from which each model it takes is
 * cloned. */
static void *worker(void *arg)
{
    shared *sh = arg;
    const cmp_config *cfg = sh->cfg;
    tn_ctx *ctx = ex_ctx_create(cfg->threads);
    tn_net *init = NULL;
    EX_CHECK(ctx, ex_build_net(ctx, &cfg->spec, &init));
    /* The same draw as the run's theta0 already (the initialization is
     * bit-reproducible), set anyway so the models cannot start elsewhere. */
    EX_CHECK(ctx, tn_net_set_params(init, sh->run->theta0, sh->run->P));
    for (;;) {
        lock(sh);
        const size_t i = sh->next++;
        if (i < sh->run->n) sh->mp[i].state = 1;
        unlock(sh);
        if (i >= sh->run->n) break;
        train_one(sh, ctx, init, i);
    }
    tn_net_free(init);
    tn_ctx_free(ctx);
    return NULL;
}

/*=====================================================================
 * Runs
 *===================================================================*/

void cmp_run_models(const cmp_config *cfg, const ex_dataset *train, const ex_dataset *test,
                    const cmp_model *models, size_t n, cmp_run *run)
{
    memset(run, 0, sizeof *run);
    if (n == 0) ex_die("cmp_run_models: no models");
    if (cfg->epochs == 0 || cfg->batch == 0) ex_die("cmp_run_models: epochs and batch must be > 0");
    if (cfg->jobs < 1) ex_die("cmp_run_models: jobs must be >= 1");
    if (train->n == 0 || test->n == 0) ex_die("cmp_run_models: empty data set");
    if (train->d != cfg->spec.input || test->d != cfg->spec.input ||
        train->classes != cfg->spec.outputs || test->classes != cfg->spec.outputs)
        ex_die("cmp_run_models: the data do not fit the network");
    const double t_start = ex_now();

    run->n = n;
    run->results = ex_xcalloc(n, sizeof(cmp_result));
    run->total_steps = cmp_total_steps(cfg, train->n);
    run->eval_n = cfg->eval_n < test->n ? cfg->eval_n : test->n;
    run->test_n = test->n;
    run->outputs = cfg->spec.outputs;
    if (cfg->probe_n > test->n) ex_die("cmp_run_models: probe_n exceeds the test set");
    run->ref = n;
    for (size_t i = 0; i < n && run->ref == n; i++)
        if (models[i].mode == CMP_FULL) run->ref = i;

    /* theta0, drawn once here; the workers start from it. */
    {
        tn_ctx *ctx = ex_ctx_create(1);
        tn_net *net = NULL;
        EX_CHECK(ctx, ex_build_net(ctx, &cfg->spec, &net));
        run->P = tn_net_num_params(net);
        run->theta0 = ex_xmalloc(run->P, sizeof(double));
        EX_CHECK(ctx, tn_net_get_params(net, run->theta0, run->P));
        tn_net_free(net);
        tn_ctx_free(ctx);
    }

    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.cfg = cfg;
    sh.train = train;
    sh.test = test;
    sh.models = models;
    sh.run = run;
    sh.mp = ex_xcalloc(n, sizeof(model_progress));
    sh.tty = isatty(STDOUT_FILENO);
    sh.columns = terminal_columns();
    sh.start = sh.last_print = ex_now();
    if (pthread_mutex_init(&sh.lock, NULL) != 0) ex_die("pthread_mutex_init failed");

    const size_t jobs = (size_t)cfg->jobs < n ? (size_t)cfg->jobs : n;
    if (jobs == 1) {
        worker(&sh);
    } else {
        pthread_t *th = ex_xmalloc(jobs, sizeof(pthread_t));
        for (size_t j = 0; j < jobs; j++)
            if (pthread_create(&th[j], NULL, worker, &sh) != 0)
                ex_die("pthread_create failed");
        for (size_t j = 0; j < jobs; j++)
            if (pthread_join(th[j], NULL) != 0) ex_die("pthread_join failed");
        free(th);
    }
    progress_clear(&sh);
    pthread_mutex_destroy(&sh.lock);
    free(sh.mp);

    /* Distances to the reference, now that every model has run (the
     * models ran in any order, so nothing could be compared on the way). */
    const size_t O = run->outputs;
    const cmp_result *ref = run->ref < n ? &run->results[run->ref] : NULL;
    for (size_t i = 0; i < n; i++) {
        cmp_result *r = &run->results[i];
        if (ref && !r->diverged && !ref->diverged)
            r->fs_distance = ex_rel_diff(r->test_out, ref->test_out, run->test_n * O);
        for (size_t p = 0; p < r->n_points; p++) {
            if (ref == NULL || run->eval_n == 0 || p >= ref->n_points ||
                ref->points[p].step != r->points[p].step)
                continue;
            const size_t blk = run->eval_n * O;
            r->points[p].fs_distance =
                ex_rel_diff(r->eval_out + p * blk, ref->eval_out + p * blk, blk);
        }
    }
    run->seconds = ex_now() - t_start;
}

cmp_pair cmp_run_pair(cmp_config *cfg, const ex_dataset *train, const ex_dataset *test,
                      const char *title)
{
    const cmp_model models[2] = {cmp_model_make(CMP_FULL, 0, 0),
                                 cmp_model_make(CMP_LINEARIZED, 1, 0)};
    cmp_run run;
    cfg->title = title;
    /* Each pair of a sweep checkpoints in a directory of its own, named
     * after its title ("width 64" -> DIR/width-64). */
    const char *ck = cfg->checkpoint_dir, *rs = cfg->resume_dir;
    char name[96], ck_sub[4096], rs_sub[4096];
    snprintf(name, sizeof name, "%s", title);
    for (char *c = name; *c; c++)
        if (*c == ' ' || *c == '/') *c = '-';
    if (ck) {
        snprintf(ck_sub, sizeof ck_sub, "%s/%s", ck, name);
        if (ex_mkdir_p(ck_sub) != 0) exit(EXIT_FAILURE);
        cfg->checkpoint_dir = ck_sub;
    }
    if (rs) {
        snprintf(rs_sub, sizeof rs_sub, "%s/%s", rs, name);
        cfg->resume_dir = rs_sub;
    }
    cmp_run_models(cfg, train, test, models, 2, &run);
    cfg->checkpoint_dir = ck;
    cfg->resume_dir = rs;
    const cmp_result *full = &run.results[0], *lin = &run.results[1];
    const cmp_pair p = {lin->fs_distance,    full->param_distance, lin->param_distance,
                        full->mask_change,   lin->mask_change,     full->test_accuracy,
                        lin->test_accuracy,  full->train_loss,     lin->train_loss,
                        run.seconds,         full->diverged || lin->diverged};
    cmp_run_free(&run);
    return p;
}

void cmp_run_free(cmp_run *run)
{
    if (run == NULL) return;
    for (size_t i = 0; i < run->n && run->results; i++) {
        free(run->results[i].points);
        free(run->results[i].theta);
        free(run->results[i].test_out);
        free(run->results[i].eval_out);
    }
    free(run->results);
    free(run->theta0);
    memset(run, 0, sizeof *run);
}

/*=====================================================================
 * Command line
 *===================================================================*/

void cmp_options_default(cmp_options *o, const char *out)
{
    memset(o, 0, sizeof *o);
    cmp_config_default(&o->cfg);
    o->n_train = 10000;
    o->n_test = 0;
    o->arch = "mlp";
    o->cfg.epochs = 0;   /* the architecture's default */
    o->width = 0;
    o->depth = 0;
    o->seed = 1;
    o->param = "standard";
    o->loss = "xent";
    o->optimizer = "momentum";
    o->act = "relu";
    o->out = out;
    o->data_dir = NULL;
}

void cmp_options_parse(cmp_options *o, int argc, char **argv, const ex_arg *extra,
                       size_t n_extra, const char *about)
{
    const ex_arg shared[] = {
        {"train", EX_ARG_SIZE, &o->n_train, "use the first N training images (0: all 60,000)"},
        {"test", EX_ARG_SIZE, &o->n_test, "use the first N test images (0: all 10,000)"},
        {"epochs", EX_ARG_SIZE, &o->cfg.epochs,
         "passes over the training set (0: 5 for mlp, 2 for cnn-thin and wrn)"},
        {"batch", EX_ARG_SIZE, &o->cfg.batch, "examples per step"},
        {"arch", EX_ARG_STRING, &o->arch,
         "network: mlp, cnn-thin (Bai et al.'s CNN-THIN) or wrn (a small wide residual net)"},
        {"width", EX_ARG_SIZE, &o->width,
         "units per hidden layer (mlp) or channels (cnn-thin, wrn); 0: 512, 16, 8"},
        {"depth", EX_ARG_SIZE, &o->depth,
         "hidden layers (mlp), convolutions (cnn-thin), blocks per group (wrn); 0: 2, 4, 1"},
        {"act", EX_ARG_STRING, &o->act,
         "hidden activation: relu, leaky_relu, tanh, sigmoid, erf, gelu, softplus, identity"},
        {"param", EX_ARG_STRING, &o->param, "parameterization: standard or ntk"},
        {"lr", EX_ARG_DOUBLE, &o->cfg.lr, "learning rate (constant)"},
        {"momentum", EX_ARG_DOUBLE, &o->cfg.momentum, "momentum (momentum and nesterov)"},
        {"optimizer", EX_ARG_STRING, &o->optimizer, "sgd, momentum, nesterov, rmsprop or adam"},
        {"loss", EX_ARG_STRING, &o->loss, "xent (softmax cross-entropy) or mse (one-hot targets)"},
        {"clip", EX_ARG_DOUBLE, &o->cfg.clip, "clip the gradient's norm at this (0: off)"},
        {"seed", EX_ARG_U64, &o->seed, "seed of the initialization and of the batches' order"},
        {"threads", EX_ARG_INT, &o->cfg.threads, "BLAS threads per model"},
        {"jobs", EX_ARG_INT, &o->cfg.jobs, "models trained at once (each on its own thread)"},
        {"eval", EX_ARG_SIZE, &o->cfg.eval_n, "test images the curves are measured on"},
        {"probe", EX_ARG_SIZE, &o->cfg.probe_n, "test images of the ReLU probe batch"},
        {"out", EX_ARG_STRING, &o->out, "output directory (created if missing)"},
        {"data", EX_ARG_STRING, &o->data_dir, EX_DATA_FLAG_HELP},
        {"synthetic", EX_ARG_FLAG, &o->synthetic, "use the synthetic data set"},
        {"quiet", EX_ARG_FLAG, &o->quiet, "no progress line"},
        {"diagnostics", EX_ARG_INT, &o->cfg.diagnostics,
         "1: the library's neural Taylor diagnostics at the recorded steps, 0: off"},
        {"checkpoint", EX_ARG_STRING, &o->checkpoint,
         "DIR: checkpoint every model there after every epoch"},
        {"resume", EX_ARG_STRING, &o->resume,
         "DIR: continue the run checkpointed there (same flags); finished models are kept"},
    };
    const ex_arg *tables[2] = {shared, extra};
    const size_t sizes[2] = {sizeof shared / sizeof shared[0], n_extra};
    ex_parse_flags(argc, argv, tables, sizes, extra ? 2 : 1, about);
}

void cmp_options_setup(cmp_options *o, const char *title, ex_data *data)
{
    cmp_config *cfg = &o->cfg;
    if (cfg->batch == 0) ex_die("--batch must be > 0");
    if (cfg->threads < 1 || cfg->jobs < 1) ex_die("--threads and --jobs must be >= 1");
    if (!(cfg->lr > 0)) ex_die("--lr must be > 0");
    if (!(cfg->clip >= 0)) ex_die("--clip must be >= 0");
    if (cfg->diagnostics != 0 && cfg->diagnostics != 1) ex_die("--diagnostics must be 0 or 1");
    /* Every name is checked before the data is read, so a typo fails at once. */
    cfg->optimizer = ex_optimizer_from_name(o->optimizer);
    cfg->loss = ex_loss_from_name(o->loss);
    cfg->spec.parameterization = ex_parameterization_from_name(o->param);
    cfg->spec.act = ex_activation_from_name(o->act);
    cfg->spec.arch = ex_arch_from_name(o->arch);
    size_t width, depth;
    ex_arch_defaults(cfg->spec.arch, &width, &depth);
    if (o->width == 0) o->width = width;
    if (o->depth == 0) o->depth = depth;
    /* A convolution over 28 x 28 pixels costs some 14 times a dense layer
     * of as many parameters per example: fewer epochs keep every
     * architecture's compare near ten minutes on two cores. */
    if (cfg->epochs == 0) cfg->epochs = cfg->spec.arch == EX_ARCH_MLP ? 5 : 2;
    /* The output directory too: minutes of training, then no place to write. */
    if (ex_mkdir_p(o->out) != 0) exit(EXIT_FAILURE);

    ex_load_data_flags(o->data_dir, o->n_train, o->n_test, o->synthetic, 1, data);

    if (cfg->eval_n > data->test.n) cfg->eval_n = data->test.n;
    if (cfg->probe_n > data->test.n) cfg->probe_n = data->test.n;
    cfg->spec.input = data->train.d;
    if (cfg->spec.arch != EX_ARCH_MLP && data->train.d != 28 * 28)
        ex_die("--arch %s takes 28 x 28 images; the data has %zu features", o->arch,
               data->train.d);
    cfg->spec.outputs = data->train.classes;
    cfg->spec.width = o->width;
    cfg->spec.depth = o->depth;
    cfg->spec.seed = o->seed;
    /* The batches' order, as in the training examples. */
    cfg->shuffle_seed = ex_shuffle_seed(o->seed);
    cfg->progress = !o->quiet;
    cfg->title = title;
    cfg->checkpoint_dir = o->checkpoint;
    cfg->resume_dir = o->resume;
    if (o->checkpoint && ex_mkdir_p(o->checkpoint) != 0) exit(EXIT_FAILURE);
}

void cmp_print_setup(const cmp_options *o, size_t total_steps, size_t n_models,
                     const char *widths)
{
    const cmp_config *cfg = &o->cfg;
    char w[32];
    snprintf(w, sizeof w, "%zu", o->width);
    const ex_net_spec *sp = &cfg->spec;
    if (sp->arch == EX_ARCH_MLP)
        printf("net: %zu -> %zu x %s %s -> %zu", sp->input, o->depth, widths ? widths : w, o->act,
               sp->outputs);
    else if (sp->arch == EX_ARCH_CNN_THIN)
        printf("net: CNN-THIN, %zu x %zu x %zu -> %zu x (conv 3x3 of %s channels, %s) -> global "
               "average pooling -> %zu", sp->image[0], sp->image[1], sp->image[2], o->depth,
               widths ? widths : w, o->act, sp->outputs);
    else
        printf("net: WRN, %zu x %zu x %zu -> conv 3x3 -> 3 groups of %zu residual blocks (%s, "
               "2x, 4x channels; strides 1, 2, 2) -> %s -> global average pooling -> %zu",
               sp->image[0], sp->image[1], sp->image[2], o->depth, widths ? widths : w, o->act,
               sp->outputs);
    printf(", %s parameterization, seed %" PRIu64 "\n", o->param, o->seed);
    char clip[48] = "";
    if (cfg->clip > 0) snprintf(clip, sizeof clip, ", gradient norm clipped at %g", cfg->clip);
    char alpha[64] = "";
    if (cfg->alpha != 1.0 || cfg->centered)
        snprintf(alpha, sizeof alpha, ", output scale %g%s", cfg->alpha,
                 cfg->centered ? " (centered)" : "");
    char momentum[32] = "";
    if (cfg->momentum >= 0 &&
        (cfg->optimizer == TN_OPT_MOMENTUM || cfg->optimizer == TN_OPT_NESTEROV))
        snprintf(momentum, sizeof momentum, " %g", cfg->momentum);
    printf("training: %s%s, lr %g, batch %zu, %zu epoch%s = %zu steps per model, %s loss%s%s; "
           "%zu model%s, %d at a time, %d BLAS thread%s each\n",
           o->optimizer, momentum, cfg->lr, cfg->batch, cfg->epochs, cfg->epochs == 1 ? "" : "s",
           total_steps, o->loss, clip, alpha, n_models, n_models == 1 ? "" : "s", cfg->jobs,
           cfg->threads, cfg->threads == 1 ? "" : "s");
    fflush(stdout);
}

