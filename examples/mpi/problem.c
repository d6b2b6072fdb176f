/* problem.c -- the command line, data set and network of the distributed
 * programs (problem.h). */
#include "problem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "data and network (every program):\n"
    "  --n N            training inputs (default 256)\n"
    "  --m M            test inputs (default 64; 0: none)\n"
    "  --d D            input dimension (default 16)\n"
    "  --width W        hidden width (default 128)\n"
    "  --depth L        hidden layers (default 2)\n"
    "  --outputs O      outputs (default 2)\n"
    "  --act NAME       relu, tanh or erf (default relu)\n"
    "  --seed S         data and initialization seed (default 1)\n"
    "  --threads T      BLAS threads per rank (default 1)\n"
    "  --out DIR        write the results into DIR (created beforehand)\n"
    "kernels (ntk_mpi, predict_mpi):\n"
    "  --nb NB          ScaLAPACK block size (default 64)\n"
    "  --analytic       also the infinite-width NNGP and NTK (ntk_mpi)\n"
    "  --budget MB      workspace per rank for one kernel panel (default 64)\n"
    "prediction (predict_mpi):\n"
    "  --times LIST     gradient-descent steps, e.g. 10,100,inf (default 1,10,100,1000,inf)\n"
    "  --eta ETA        learning rate of the closed form (default 0.5)\n"
    "  --reg R          added to the kernels' diagonals (default 1e-4)\n"
    "training (train_mpi):\n"
    "  --batch B        examples per batch over all ranks (default 32)\n"
    "  --epochs E       passes over the training set (default 2)\n"
    "  --modes LIST     of full, linearized, order:K, reexpand:K (linearized, re-expanded\n"
    "                   every K steps), lazy:ALPHA (default all five:\n"
    "                   full,linearized,order:3,reexpand:5,lazy:10)\n"
    "  --optimizer NAME sgd, momentum or adam (default momentum)\n"
    "  --loss NAME      mse or xent (default mse)\n"
    "  --lr LR          learning rate (default 0.05)\n"
    "  --uneven         shards of unequal sizes (rank r holds a share r + 1)\n"
    "  --inject KIND    nan (a NaN target) or abort (a failing call) on one rank\n"
    "  --inject-rank R, --inject-step S   where (default rank 1, step 3)\n"
    "check (mpi_check):\n"
    "  --in DIR         the distributed run's output directory\n";

const char *problem_usage(void)
{
    return usage_text;
}

static void set_defaults(problem *p)
{
    memset(p, 0, sizeof *p);
    p->n = 256;
    p->m = 64;
    p->d = 16;
    p->width = 128;
    p->depth = 2;
    p->outputs = 2;
    p->act = TN_ACT_RELU;
    p->seed = 1;
    p->threads = 1;
    p->nb = 64;
    p->budget_mb = 64;
    const double times[] = {1, 10, 100, 1000, INFINITY};
    p->ntimes = 5;
    memcpy(p->times, times, sizeof times);
    p->eta = 0.5;
    p->reg = 1e-4;
    p->batch = 32;
    p->epochs = 2;
    p->optimizer = TN_OPT_MOMENTUM;
    p->loss = TN_LOSS_MSE;
    p->lr = 0.05;
    p->inject_rank = 1;
    p->inject_step = 3;
}

static int parse_size(const char *s, size_t lo, size_t *out)
{
    char *end;
    const unsigned long long v = strtoull(s, &end, 10);
    if (*s == '-' || end == s || *end != '\0' || v < lo || v > (1ull << 40)) return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end == s || *end != '\0' ? -1 : 0;
}

static int parse_mode(const char *s, problem_mode *md)
{
    memset(md, 0, sizeof *md);
    md->alpha = 1.0;
    size_t k;
    double a;
    if (strcmp(s, "full") == 0) {
    } else if (strcmp(s, "linearized") == 0) {
        md->order = 1;
    } else if (strncmp(s, "order:", 6) == 0 && parse_size(s + 6, 1, &k) == 0 &&
               k <= (size_t)tn_taylor_max_order()) {
        md->order = (int)k;
    } else if (strncmp(s, "reexpand:", 9) == 0 && parse_size(s + 9, 1, &k) == 0 && k < 1u << 30) {
        md->order = 1;
        md->reexpand = (unsigned)k;
    } else if (strncmp(s, "lazy:", 5) == 0 && parse_double(s + 5, &a) == 0 && a > 0 &&
               isfinite(a)) {
        md->alpha = a;
    } else {
        return -1;
    }
    snprintf(md->name, sizeof md->name, "%s", s);
    return 0;
}

/* Splits a comma-separated list in place-free fashion: calls item() on each. */
static int parse_list(const char *s, int max, int *count, int (*item)(const char *, void *, int),
                      void *dst)
{
    char buf[512];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    *count = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (*count == max || item(tok, dst, *count) != 0) return -1;
        ++*count;
    }
    return *count > 0 ? 0 : -1;
}

static int time_item(const char *s, void *dst, int i)
{
    double *t = dst;
    if (strcmp(s, "inf") == 0) {
        t[i] = INFINITY;
        return 0;
    }
    return parse_double(s, &t[i]) == 0 && t[i] >= 0 && t[i] == floor(t[i]) ? 0 : -1;
}

static int mode_item(const char *s, void *dst, int i)
{
    return parse_mode(s, &((problem_mode *)dst)[i]);
}

int problem_parse(problem *p, int argc, char **argv, char *err, size_t errlen)
{
    set_defaults(p);
    const char *defaults = "full,linearized,order:3,reexpand:5,lazy:10";
    int nm = 0;
    parse_list(defaults, PROBLEM_MAX_LIST, &nm, mode_item, p->modes);
    p->nmodes = nm;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, takes = 1;
        size_t z = 0;
        if (strcmp(a, "--analytic") == 0) {
            p->analytic = 1;
            takes = 0;
        } else if (strcmp(a, "--uneven") == 0) {
            p->uneven = 1;
            takes = 0;
        } else if (v == NULL) {
            snprintf(err, errlen, "%s: missing value (or unknown option)", a);
            return -1;
        } else if (strcmp(a, "--n") == 0) {
            bad = parse_size(v, 1, &p->n);
        } else if (strcmp(a, "--m") == 0) {
            bad = parse_size(v, 0, &p->m);
        } else if (strcmp(a, "--d") == 0) {
            bad = parse_size(v, 1, &p->d);
        } else if (strcmp(a, "--width") == 0) {
            bad = parse_size(v, 1, &p->width);
        } else if (strcmp(a, "--depth") == 0) {
            bad = parse_size(v, 0, &p->depth) || p->depth > 64;
        } else if (strcmp(a, "--outputs") == 0) {
            bad = parse_size(v, 1, &p->outputs);
        } else if (strcmp(a, "--act") == 0) {
            if (strcmp(v, "relu") == 0) p->act = TN_ACT_RELU;
            else if (strcmp(v, "tanh") == 0) p->act = TN_ACT_TANH;
            else if (strcmp(v, "erf") == 0) p->act = TN_ACT_ERF;
            else bad = 1;
        } else if (strcmp(a, "--seed") == 0) {
            bad = parse_size(v, 0, &z);
            p->seed = z;
        } else if (strcmp(a, "--threads") == 0) {
            bad = parse_size(v, 1, &z) || z > 1024;
            p->threads = (int)z;
        } else if (strcmp(a, "--nb") == 0) {
            bad = parse_size(v, 1, &z) || z > 4096;
            p->nb = (int)z;
        } else if (strcmp(a, "--budget") == 0) {
            bad = parse_double(v, &p->budget_mb) || !(p->budget_mb >= 1);
        } else if (strcmp(a, "--times") == 0) {
            bad = parse_list(v, PROBLEM_MAX_LIST, &p->ntimes, time_item, p->times);
        } else if (strcmp(a, "--eta") == 0) {
            bad = parse_double(v, &p->eta) || !(p->eta > 0) || !isfinite(p->eta);
        } else if (strcmp(a, "--reg") == 0) {
            bad = parse_double(v, &p->reg) || !(p->reg >= 0) || !isfinite(p->reg);
        } else if (strcmp(a, "--batch") == 0) {
            bad = parse_size(v, 1, &p->batch);
        } else if (strcmp(a, "--epochs") == 0) {
            bad = parse_size(v, 1, &z) || z > 1000000;
            p->epochs = (int)z;
        } else if (strcmp(a, "--modes") == 0) {
            bad = parse_list(v, PROBLEM_MAX_LIST, &p->nmodes, mode_item, p->modes);
        } else if (strcmp(a, "--optimizer") == 0) {
            if (strcmp(v, "sgd") == 0) p->optimizer = TN_OPT_SGD;
            else if (strcmp(v, "momentum") == 0) p->optimizer = TN_OPT_MOMENTUM;
            else if (strcmp(v, "adam") == 0) p->optimizer = TN_OPT_ADAM;
            else bad = 1;
        } else if (strcmp(a, "--loss") == 0) {
            if (strcmp(v, "mse") == 0) p->loss = TN_LOSS_MSE;
            else if (strcmp(v, "xent") == 0) p->loss = TN_LOSS_SOFTMAX_XENT;
            else bad = 1;
        } else if (strcmp(a, "--lr") == 0) {
            bad = parse_double(v, &p->lr) || !(p->lr > 0) || !isfinite(p->lr);
        } else if (strcmp(a, "--inject") == 0) {
            if (strcmp(v, "nan") == 0) p->inject = 1;
            else if (strcmp(v, "abort") == 0) p->inject = 2;
            else bad = 1;
        } else if (strcmp(a, "--inject-rank") == 0) {
            bad = parse_size(v, 0, &z) || z > 1u << 20;
            p->inject_rank = (int)z;
        } else if (strcmp(a, "--inject-step") == 0) {
            bad = parse_size(v, 1, &z) || z > 1u << 30;
            p->inject_step = (int)z;
        } else if (strcmp(a, "--out") == 0) {
            p->out = v;
        } else if (strcmp(a, "--in") == 0) {
            p->in = v;
        } else {
            snprintf(err, errlen, "unknown option %s", a);
            return -1;
        }
        if (bad) {
            snprintf(err, errlen, "%s: invalid value '%s'", a, v);
            return -1;
        }
        i += takes;
    }
    return 0;
}

/* splitmix64 of a counter: the value of (seed, set, row, column) in [-1, 1). */
static double uniform_at(uint64_t seed, uint64_t set, uint64_t i, uint64_t j)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15u ^ (set << 62) ^ (i << 20) ^ j;
    z += 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-52 - 1.0;
}

void problem_inputs(const problem *p, int set, size_t first, size_t count, double *x)
{
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < p->d; j++)
            x[i * p->d + j] = uniform_at(p->seed, (uint64_t)set, first + i, j);
}

void problem_targets(const problem *p, const double *x, size_t count, double *y)
{
    const size_t d = p->d, O = p->outputs;
    for (size_t i = 0; i < count; i++) {
        size_t best = 0;
        for (size_t c = 0; c < O; c++) {
            /* A fixed direction per output (set 3 of the generator). */
            double s = 0.0;
            for (size_t j = 0; j < d; j++) s += x[i * d + j] * uniform_at(p->seed, 3, c, j);
            y[i * O + c] = sin(3.0 * s / sqrt((double)d)) + 0.5 * s * s / (double)d;
            if (y[i * O + c] > y[i * O + best]) best = c;
        }
        if (p->loss == TN_LOSS_SOFTMAX_XENT)
            for (size_t c = 0; c < O; c++) y[i * O + c] = c == best ? 1.0 : 0.0;
    }
}

tn_status problem_net(tn_ctx *ctx, const problem *p, tn_net **out)
{
    tn_net *net = NULL;
    tn_status st = tn_net_create(ctx, &p->d, 1, &net);
    for (size_t l = 0; st == TN_OK && l < p->depth; l++) {
        st = tn_net_add_dense(net, p->width);
        if (st == TN_OK) st = tn_net_add_activation(net, p->act);
    }
    if (st == TN_OK) st = tn_net_add_dense(net, p->outputs);
    if (st == TN_OK) st = tn_net_init(net, p->seed);
    if (st != TN_OK) {
        tn_net_free(net);
        return st;
    }
    *out = net;
    return TN_OK;
}

tn_status problem_trainer(const problem *p, const problem_mode *md, tn_net *net,
                          tn_trainer **out)
{
    tn_trainer *tr = NULL;
    tn_status st = tn_trainer_create(net, &tr);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_LOSS, p->loss);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, p->optimizer);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, p->lr);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_ORDER, md->order);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_REEXPAND_EVERY, md->reexpand);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_OUTPUT_SCALE, md->alpha);
    if (st == TN_OK) st = tn_trainer_set(tr, TN_TRAIN_CENTERED, md->alpha != 1.0);
    if (st != TN_OK) {
        tn_trainer_free(tr);
        return st;
    }
    *out = tr;
    return TN_OK;
}

void problem_ntk_cost(const problem *p, double *feature_flops, double *entry_flops)
{
    const double O = (double)p->outputs;
    double feat = 0, entry = 0, in = (double)p->d;
    for (size_t l = 0; l <= p->depth; l++) {
        const double out = l < p->depth ? (double)p->width : O;
        /* The cotangents stop at the first layer's input. */
        feat += 2 * in * out * (l > 0 ? 1 + O : 1);
        entry += 2 * (in + O * out);
        in = out;
    }
    *feature_flops = feat;
    *entry_flops = entry;
}

void problem_batch(const problem *p, size_t b, size_t *first, size_t *count)
{
    *first = b * p->batch;
    *count = p->n - *first < p->batch ? p->n - *first : p->batch;
}

void problem_shard(const problem *p, size_t count, int r, int R, size_t *offset, size_t *rows)
{
    const size_t rr = (size_t)r, RR = (size_t)R;
    if (!p->uneven) {
        /* The first count % R ranks hold one row more. */
        const size_t base = count / RR, extra = count % RR;
        *rows = base + (rr < extra);
        *offset = rr * base + (rr < extra ? rr : extra);
        return;
    }
    /* Rank r's share is (r + 1) / (R (R + 1) / 2); the last takes the rest. */
    const size_t total = RR * (RR + 1) / 2;
    size_t start = 0;
    for (size_t k = 0; k < rr; k++) start += count * (k + 1) / total;
    *offset = start;
    *rows = rr + 1 == RR ? count - start : count * (rr + 1) / total;
}

char *problem_path(char *path, size_t len, const char *dir, const char *name)
{
    snprintf(path, len, "%s/%s", dir, name);
    return path;
}
