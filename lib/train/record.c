/* record.c -- the Taylor record: what each step's Taylor loss needs
 * (record.h), kept within TN_TRAIN_REGRET_MEMORY. */
#include "record.h"
#include "loss.h"
#include "../io/binfile.h"

#include <math.h>
#include <string.h>

size_t tni_record_step_bytes(const tn_trainer *tr, size_t n, int new_batch)
{
    /* sizeof header + 8 (P + n O) [+ sizeof batch + 8 n (d + O)] */
    size_t nO, vals, bytes, nb = 0, total;
    if (tni_mul_overflow(n, tr->O, &nO) || tni_add_overflow(tr->P, nO, &vals) ||
        tni_mul_overflow(vals, sizeof(double), &bytes) ||
        tni_add_overflow(bytes, sizeof(tni_rec_step), &total))
        return 0;
    if (new_batch) {
        size_t dO;
        if (tni_add_overflow(tr->d, tr->O, &dO) || tni_mul_overflow(n, dO, &nb) ||
            tni_mul_overflow(nb, sizeof(double), &nb) ||
            tni_add_overflow(nb, sizeof(tni_rec_batch), &nb) || tni_add_overflow(total, nb, &total))
            return 0;
    }
    return total;
}

static size_t batch_bytes(const tn_trainer *tr, size_t n)
{
    return sizeof(tni_rec_batch) + n * (tr->d + tr->O) * sizeof(double);
}

static void release_batch(tni_rec_batch *b)
{
    if (b != NULL && --b->refs == 0) tni_free(b);
}

void tni_record_free(tn_trainer *tr)
{
    tni_record *rec = tr->record;
    if (rec == NULL) return;
    for (size_t t = 0; t < rec->count; t++) {
        release_batch(rec->steps[t]->batch);
        tni_free(rec->steps[t]);
    }
    tni_free(rec->steps);
    tni_free(rec->pending);
    tni_free(rec->pending_batch);
    tni_tape_free(rec->tape);
    tni_free(rec->minimizer);
    tni_free(rec);
    tr->record = NULL;
}

tn_status tni_record_enable(tn_trainer *tr, int on)
{
    if (!on) {
        tni_record_free(tr);
        return TN_OK;
    }
    if (tr->record != NULL) return TN_OK;       /* already recording: keep it */
    tni_record *rec = tni_alloc_or_fail(tr->ctx, "tn_trainer_set (TN_TRAIN_RECORD_TAYLOR)", 1,
                                        sizeof *rec);
    if (rec == NULL) return TN_E_NOMEM;
    tr->record = rec;
    return TN_OK;
}

/* The last recorded step's batch if (x, y) is the same, byte for byte. */
static tni_rec_batch *same_batch(const tn_trainer *tr, const double *x, const double *y, size_t n)
{
    const tni_record *rec = tr->record;
    if (rec->count == 0) return NULL;
    tni_rec_batch *b = rec->steps[rec->count - 1]->batch;
    if (b->n != n || memcmp(b->x, x, n * tr->d * sizeof(double)) != 0 ||
        memcmp(b->y, y, n * tr->O * sizeof(double)) != 0)
        return NULL;
    return b;
}

/* b = alpha (f(theta; x) - [centered] f(theta0; x)): the trained model's
 * outputs at order 0 (tr->g, still those of this step), else a forward of
 * the network on the record's tape, minus the expansion's order-0 block
 * f(theta0; x) when centered. */
static tn_status network_outputs(tn_trainer *tr, const double *x, size_t n, double *b)
{
    const size_t blk = n * tr->O;
    if (tr->order == 0) {
        memcpy(b, tr->g, blk * sizeof(double));
        return TN_OK;
    }
    tni_record *rec = tr->record;
    if (rec->tape == NULL) TNI_TRY(tni_tape_create(tr->ctx, tni_net_graph(tr->net), &rec->tape));
    TNI_TRY(tni_engine_forward(rec->tape, tni_net_theta(tr->net), NULL, 0, x, n, 0));
    tni_engine_output_sum(rec->tape, 0, b);
    if (tr->centered) {
        size_t deg;
        const double *z0 = tni_engine_output(tr->ex.tape, &deg);
        for (size_t e = 0; e < blk; e++) b[e] -= z0[e];
    }
    if (tr->alpha != 1.0)
        for (size_t e = 0; e < blk; e++) b[e] *= tr->alpha;
    return TN_OK;
}

tn_status tni_record_prepare(tn_trainer *tr, const double *x, const double *y, size_t n)
{
    static const char fn[] = "tn_trainer_step";
    tni_record *rec = tr->record;
    tn_ctx *ctx = tr->ctx;
    tni_rec_batch *shared = same_batch(tr, x, y, n);
    /* Everything the step adds, checked against the budget first. */
    const size_t step_bytes = tni_record_step_bytes(tr, n, shared == NULL);
    const size_t new_cap = rec->count < rec->cap ? rec->cap : (rec->cap ? 2 * rec->cap : 16);
    const size_t index_bytes = (new_cap - rec->cap) * sizeof(tni_rec_step *);
    size_t need, total;
    if (step_bytes == 0 || tni_add_overflow(step_bytes, index_bytes, &need) ||
        tni_add_overflow(rec->bytes, need, &total) || total > tr->regret_memory)
        return tni_fail(ctx, TN_E_NOMEM,
                        "%s: recording this step for the regret needs %zu bytes more, past "
                        "TN_TRAIN_REGRET_MEMORY (%zu bytes; the record holds %zu bytes of %zu "
                        "steps); nothing changed.  Raise the budget, or set "
                        "TN_TRAIN_RECORD_TAYLOR to 0 and 1 to start a new record",
                        fn, step_bytes + index_bytes, tr->regret_memory, rec->bytes, rec->count);
    if (new_cap != rec->cap) {
        /* The index grows now; its contents stay, so a failure later in the
         * step leaves nothing visible. */
        tni_rec_step **steps = tni_alloc_or_fail(ctx, fn, new_cap, sizeof *steps);
        if (steps == NULL) return TN_E_NOMEM;
        if (rec->count) memcpy(steps, rec->steps, rec->count * sizeof *steps);
        tni_free(rec->steps);
        rec->steps = steps;
        rec->cap = new_cap;
        rec->bytes += index_bytes;
    }
    const size_t blk = n * tr->O;
    tni_rec_step *s = tni_alloc_or_fail(ctx, fn, 1, sizeof *s + (tr->P + blk) * sizeof(double));
    if (s == NULL) return TN_E_NOMEM;
    s->theta = (double *)(s + 1);
    s->b = s->theta + tr->P;
    tni_rec_batch *nb = NULL;
    if (shared == NULL) {
        nb = tni_alloc_or_fail(ctx, fn, 1, batch_bytes(tr, n));
        if (nb == NULL) {
            tni_free(s);
            return TN_E_NOMEM;
        }
        nb->n = n;
        nb->x = (double *)(nb + 1);
        nb->y = nb->x + n * tr->d;
        memcpy(nb->x, x, n * tr->d * sizeof(double));
        memcpy(nb->y, y, blk * sizeof(double));
    }
    tn_status st = network_outputs(tr, x, n, s->b);
    const double a2 = tr->alpha * tr->alpha;
    if (st == TN_OK) {
        s->value = tni_loss(tr->loss, n, tr->O, s->b, y, NULL) / a2;
        if (!isfinite(s->value))
            st = tni_fail(ctx, TN_E_NUMERIC,
                          "%s: the network's loss at this step is not finite (%g), so its Taylor "
                          "loss cannot be recorded; parameters and state unchanged",
                          fn, s->value);
    }
    if (st != TN_OK) {
        tni_free(s);
        tni_free(nb);
        return st;
    }
    memcpy(s->theta, tni_net_theta(tr->net), tr->P * sizeof(double));
    s->batch = shared ? shared : nb;
    s->loss = tr->loss;
    s->alpha = tr->alpha;
    rec->pending = s;
    rec->pending_batch = nb;
    return TN_OK;
}

void tni_record_commit(tn_trainer *tr)
{
    tni_record *rec = tr->record;
    tni_rec_step *s = rec->pending;
    s->batch->refs++;
    rec->bytes += sizeof *s + (tr->P + s->batch->n * tr->O) * sizeof(double);
    if (rec->pending_batch) rec->bytes += batch_bytes(tr, s->batch->n);
    rec->steps[rec->count++] = s;
    rec->pending = NULL;
    rec->pending_batch = NULL;
}

/* ---- checkpoints (checkpoint.c): the record and the last solve ---- */

/* u64 P, u64 steps T, u64 batches B;
 * B x (u64 n, n d f64 x, n O f64 y);
 * T x (u64 batch index, u32 loss, f64 alpha, f64 l_t(theta_t), P f64 theta_t,
 *      n O f64 b_t);
 * u32 solved; when 1: u64 steps, f64 regret, f64 optimum, u32 solver,
 *      f64 iterations, f64 Newton steps, f64 accuracy, P f64 minimizer. */
void tni_record_encode(tni_writer *w, const tn_trainer *tr)
{
    const tni_record *rec = tr->record;
    size_t batches = 0;
    for (size_t t = 0; t < rec->count; t++)
        batches += t == 0 || rec->steps[t]->batch != rec->steps[t - 1]->batch;
    tni_w_u64(w, tr->P);
    tni_w_u64(w, rec->count);
    tni_w_u64(w, batches);
    for (size_t t = 0; t < rec->count; t++) {
        const tni_rec_batch *b = rec->steps[t]->batch;
        if (t > 0 && b == rec->steps[t - 1]->batch) continue;
        tni_w_u64(w, b->n);
        tni_w_f64s(w, b->x, b->n * tr->d);
        tni_w_f64s(w, b->y, b->n * tr->O);
    }
    size_t index = 0;
    for (size_t t = 0; t < rec->count; t++) {
        const tni_rec_step *s = rec->steps[t];
        index += t > 0 && s->batch != rec->steps[t - 1]->batch;
        tni_w_u64(w, index);
        tni_w_u32(w, (uint32_t)s->loss);
        tni_w_f64(w, s->alpha);
        tni_w_f64(w, s->value);
        tni_w_f64s(w, s->theta, tr->P);
        tni_w_f64s(w, s->b, s->batch->n * tr->O);
    }
    tni_w_u32(w, (uint32_t)rec->solved);
    if (!rec->solved) return;
    tni_w_u64(w, rec->last.steps);
    tni_w_f64(w, rec->last.regret);
    tni_w_f64(w, rec->last.optimum);
    tni_w_u32(w, (uint32_t)rec->last.solver);
    tni_w_f64(w, rec->last.products);
    tni_w_f64(w, rec->last.newton);
    tni_w_f64(w, rec->last.accuracy);
    tni_w_f64s(w, rec->minimizer, tr->P);
}

/* Reads n doubles into out, all finite. */
static int finite_f64s(tni_reader *r, double *out, size_t n)
{
    return tni_r_f64s(r, out, n) && tni_all_finite(out, n);
}

tn_status tni_record_decode(tn_trainer *tr, const unsigned char *data, size_t len,
                            const char *who, const char *where)
{
    tn_ctx *ctx = tr->ctx;
    tni_record *rec = tr->record;
#define BAD(what) tni_fail(ctx, TN_E_FORMAT, "%s: '%s': the Taylor record is invalid (%s)", who, \
                           where, what)
    tni_reader r = {data, len, 0};
    const uint64_t P = tni_r_uint(&r, 8), T = tni_r_uint(&r, 8), B = tni_r_uint(&r, 8);
    if (r.short_read || P != tr->P) return BAD("its parameter count");
    /* Every step and batch takes more than 8 bytes of the section. */
    if (T > r.left / 8 || B > T || (B == 0) != (T == 0)) return BAD("its step and batch counts");
    tni_rec_batch **batch = tni_alloc_or_fail(ctx, who, B ? B : 1, sizeof *batch);
    if (batch == NULL) return TN_E_NOMEM;
    tn_status st = TN_OK;
    size_t cap = T ? 16 : 0;
    while (cap < T) cap *= 2;
    if (cap) {
        rec->steps = tni_alloc_or_fail(ctx, who, cap, sizeof *rec->steps);
        if (rec->steps == NULL) st = TN_E_NOMEM;
        rec->cap = cap;
        rec->bytes = cap * sizeof *rec->steps;
    }
    size_t nb = 0;
    uint64_t last = 0;      /* the batch index of the step before */
    for (uint64_t i = 0; st == TN_OK && i < B; i++) {
        const uint64_t n = tni_r_uint(&r, 8);
        if (r.short_read || n == 0 || n > r.left / 8 / (tr->d + tr->O)) {
            st = BAD("a batch's size");
            break;
        }
        tni_rec_batch *b = tni_alloc_or_fail(ctx, who, 1, batch_bytes(tr, (size_t)n));
        if (b == NULL) {
            st = TN_E_NOMEM;
            break;
        }
        batch[nb++] = b;
        b->n = (size_t)n;
        b->x = (double *)(b + 1);
        b->y = b->x + b->n * tr->d;
        if (!finite_f64s(&r, b->x, b->n * tr->d) || !finite_f64s(&r, b->y, b->n * tr->O))
            st = BAD("a batch's values");
        rec->bytes += batch_bytes(tr, b->n);
    }
    for (uint64_t t = 0; st == TN_OK && t < T; t++) {
        const uint64_t index = tni_r_uint(&r, 8);
        const uint32_t loss = (uint32_t)tni_r_uint(&r, 4);
        const double alpha = tni_r_f64(&r), value = tni_r_f64(&r);
        /* Consecutive steps share a batch or take the next one, in order. */
        const int in_order = t == 0 ? index == 0 : index == last || index == last + 1;
        if (r.short_read || index >= nb || !in_order || loss > TN_LOSS_SOFTMAX_XENT ||
            !(alpha > 0) || !isfinite(alpha) || !isfinite(value)) {
            st = BAD("a step's fields");
            break;
        }
        last = index;
        tni_rec_batch *b = batch[index];
        const size_t blk = b->n * tr->O;
        if (tr->P + blk > r.left / 8) {
            st = BAD("a step's size");
            break;
        }
        tni_rec_step *s = tni_alloc_or_fail(ctx, who, 1, sizeof *s + (tr->P + blk) * sizeof(double));
        if (s == NULL) {
            st = TN_E_NOMEM;
            break;
        }
        s->theta = (double *)(s + 1);
        s->b = s->theta + tr->P;
        s->batch = b;
        s->loss = (int)loss;
        s->alpha = alpha;
        s->value = value;
        b->refs++;
        rec->steps[rec->count++] = s;
        rec->bytes += sizeof *s + (tr->P + blk) * sizeof(double);
        if (!finite_f64s(&r, s->theta, tr->P) || !finite_f64s(&r, s->b, blk))
            st = BAD("a step's values");
    }
    if (st == TN_OK && T > 0 && last + 1 != B) st = BAD("a batch no step uses");
    /* Batches no step holds yet (a failure above) are freed here. */
    for (size_t i = 0; i < nb; i++)
        if (batch[i]->refs == 0) tni_free(batch[i]);
    tni_free(batch);
    if (st != TN_OK) return st;
    const uint32_t solved = (uint32_t)tni_r_uint(&r, 4);
    if (r.short_read || solved > 1) return BAD("its solve flag");
    if (solved) {
        tni_regret_result *l = &rec->last;
        l->steps = (size_t)tni_r_uint(&r, 8);
        l->regret = tni_r_f64(&r);
        l->optimum = tni_r_f64(&r);
        l->solver = (int)tni_r_uint(&r, 4);
        l->products = tni_r_f64(&r);
        l->newton = tni_r_f64(&r);
        l->accuracy = tni_r_f64(&r);
        if (r.short_read || l->steps == 0 || l->steps > T || l->solver < TN_REGRET_DIRECT ||
            l->solver > TN_REGRET_NEWTON_CG || !isfinite(l->regret) || !isfinite(l->optimum) ||
            !(l->products >= 0) || !(l->newton >= 0) || !(l->accuracy >= 0) ||
            !isfinite(l->products + l->newton + l->accuracy))
            return BAD("its last solve");
        rec->minimizer = tni_alloc_or_fail(ctx, who, tr->P, sizeof(double));
        if (rec->minimizer == NULL) return TN_E_NOMEM;
        if (!finite_f64s(&r, rec->minimizer, tr->P)) return BAD("its minimizer");
        rec->solved = 1;
    }
    if (r.short_read || r.left != 0) return BAD("its length");
    if (rec->bytes > tr->regret_memory) return BAD("larger than TN_TRAIN_REGRET_MEMORY");
#undef BAD
    return TN_OK;
}
