/* checkpoint.c -- tn_trainer_save / tn_trainer_load (checkpoint.h). */
#include "checkpoint.h"
#include "record.h"
#include "../io/netfile.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const unsigned char magic[8] = {0x89, 'T', 'N', 'C', 'K', 'P', 0x0d, 0x0a};

#define TAG_NETW TNI_TAG('N', 'E', 'T', 'W')
#define TAG_SETS TNI_TAG('S', 'E', 'T', 'S')
#define TAG_STEP TNI_TAG('S', 'T', 'E', 'P')
#define TAG_THT0 TNI_TAG('T', 'H', 'T', '0')
#define TAG_OPTS TNI_TAG('O', 'P', 'T', 'S')
#define TAG_PROB TNI_TAG('P', 'R', 'O', 'B')
#define TAG_TAYR TNI_TAG('T', 'A', 'Y', 'R')
#define TAG_EXPL TNI_TAG('e', 'x', 'p', 'l')

/* Every setting of the trainer, in the order they are applied on load
 * (the optimizer first: choosing it resets the optimizer-dependent
 * defaults).  A new tn_train_param belongs here; test_checkpoint checks
 * that every value tn_trainer_get accepts survives a round trip. */
static const tn_train_param settings[] = {
    TN_TRAIN_OPTIMIZER, TN_TRAIN_LOSS, TN_TRAIN_LEARNING_RATE, TN_TRAIN_MOMENTUM,
    TN_TRAIN_BETA1, TN_TRAIN_BETA2, TN_TRAIN_EPSILON, TN_TRAIN_WEIGHT_DECAY,
    TN_TRAIN_CLIP_NORM, TN_TRAIN_ORDER, TN_TRAIN_REEXPAND_EVERY, TN_TRAIN_OUTPUT_SCALE,
    TN_TRAIN_CENTERED, TN_TRAIN_DIAGNOSTICS, TN_TRAIN_RECORD_TAYLOR, TN_TRAIN_REGRET_MEMORY,
    TN_TRAIN_REGRET_TOLERANCE, TN_TRAIN_REGRET_MAX_ITERATIONS, TN_TRAIN_REGRET_SOLVER,
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

#define NSTATS (sizeof ((tn_trainer *)0)->stat / sizeof(double))

/* ---- writing ---- */

/* What tni_checkpoint_encode's sections read. */
typedef struct saving {
    const tn_trainer *tr;
    uint64_t *keys;             /* scratch of the exploration's encoding */
} saving;

static void encode_net(tni_writer *w, const void *arg)
{
    const tn_trainer *tr = arg;
    tni_netfile_encode(w, tr->net);
}

static void encode_settings(tni_writer *w, const void *arg)
{
    const tn_trainer *tr = arg;
    tni_w_u32(w, (uint32_t)NSETTINGS);
    for (size_t i = 0; i < NSETTINGS; i++) {
        double v = 0.0;
        tni_trainer_get(tr, settings[i], &v);      /* every one of them is known */
        tni_w_u32(w, (uint32_t)settings[i]);
        tni_w_f64(w, v);
    }
}

static void encode_step(tni_writer *w, const void *arg)
{
    const tn_trainer *tr = arg;
    tni_w_u64(w, tr->steps);
    tni_w_u64(w, tr->opt.t);
    tni_w_u32(w, tr->explicit_set);
    tni_w_u32(w, tr->stat_valid);
    tni_w_f64s(w, tr->stat, NSTATS);
}

static void encode_theta0(tni_writer *w, const void *arg)
{
    const tn_trainer *tr = arg;
    tni_w_u32(w, (uint32_t)tr->ex.order);
    tni_w_u64(w, tr->P);
    tni_w_f64s(w, tr->ex.theta0, tr->P);
}

static void encode_optimizer(tni_writer *w, const void *arg)
{
    const tn_trainer *tr = arg;
    const int count = tni_opt_state_count(&tr->opt);
    tni_w_u32(w, (uint32_t)count);
    tni_w_u64(w, tr->P);
    for (int i = 0; i < count; i++) tni_w_f64s(w, tr->state[i], tr->P);
}

static void encode_probe(tni_writer *w, const void *arg)
{
    const saving *sv = arg;
    tni_diagnostics_encode(w, sv->tr);
}

static void encode_record(tni_writer *w, const void *arg)
{
    const saving *sv = arg;
    tni_record_encode(w, sv->tr);
}

static void encode_exploration(tni_writer *w, const void *arg)
{
    const saving *sv = arg;
    tni_diagnostics_encode_exploration(w, sv->tr, sv->keys);
}

size_t tni_checkpoint_scratch_bytes(const tn_trainer *tr)
{
    return tni_diagnostics_has_probe(tr) ? tni_diagnostics_exploration_bytes(tr) : 0;
}

void tni_checkpoint_encode(tni_writer *w, const tn_trainer *tr, uint64_t *scratch)
{
    const saving sv = {tr, scratch};
    tni_w_crc_begin(w);
    tni_w_bytes(w, magic, sizeof magic);
    tni_w_u32(w, TNI_CHECKPOINT_VERSION);
    tni_w_section(w, TAG_NETW, encode_net, tr);
    tni_w_section(w, TAG_SETS, encode_settings, tr);
    tni_w_section(w, TAG_STEP, encode_step, tr);
    tni_w_section(w, TAG_THT0, encode_theta0, tr);
    tni_w_section(w, TAG_OPTS, encode_optimizer, tr);
    if (tni_diagnostics_has_probe(tr)) {
        tni_w_section(w, TAG_PROB, encode_probe, &sv);
        tni_w_section(w, TAG_EXPL, encode_exploration, &sv);
    }
    if (tr->record) tni_w_section(w, TAG_TAYR, encode_record, &sv);
    tni_w_u32(w, tni_w_crc_end(w));
}

static void encode_checkpoint(tni_writer *w, const void *arg)
{
    const saving *sv = arg;
    tni_checkpoint_encode(w, sv->tr, sv->keys);
}

tn_status tni_trainer_save(const tn_trainer *tr, const char *path)
{
    /* The exploration's keys are written sorted, through a scratch
     * allocated here (encoding must not fail). */
    saving sv = {tr, NULL};
    const size_t scratch = tni_checkpoint_scratch_bytes(tr);
    if (scratch) {
        sv.keys = tni_alloc_or_fail(tr->ctx, "tn_trainer_save", scratch, 1);
        if (sv.keys == NULL) return TN_E_NOMEM;
    }
    const tn_status st = tni_file_save(tr->ctx, "tn_trainer_save", path, encode_checkpoint, &sv);
    tni_free(sv.keys);
    return st;
}

/* ---- reading ---- */

static const char who[] = "tn_trainer_load";

#define BAD(...) tni_fail(ctx, TN_E_FORMAT, "%s: '%s': " __VA_ARGS__)

typedef struct section {
    uint32_t tag;
    const unsigned char *data;
    size_t len;
} section;

enum { S_NETW, S_SETS, S_STEP, S_THT0, S_OPTS, S_PROB, S_TAYR, S_EXPL, S_COUNT };
static const uint32_t known_tags[S_COUNT] = {TAG_NETW, TAG_SETS, TAG_STEP, TAG_THT0,
                                             TAG_OPTS, TAG_PROB, TAG_TAYR, TAG_EXPL};
static const char *const section_names[S_COUNT] = {"NETW", "SETS", "STEP", "THT0",
                                                   "OPTS", "PROB", "TAYR", "expl"};

/* Finds each known section once; refuses unknown critical ones. */
static tn_status split(tn_ctx *ctx, const char *where, tni_reader *r, section found[S_COUNT])
{
    memset(found, 0, S_COUNT * sizeof *found);
    while (r->left > 0) {
        const uint32_t tag = (uint32_t)tni_r_uint(r, 4);
        const uint64_t len = tni_r_uint(r, 8);
        if (r->short_read || len > r->left) return BAD("truncated section", who, where);
        const unsigned char *data = tni_r_take(r, (size_t)len);
        int k = 0;
        while (k < S_COUNT && known_tags[k] != tag) k++;
        if (k == S_COUNT) {
            if (tni_tag_critical(tag))
                return tni_fail(ctx, TN_E_VERSION,
                                "%s: '%s' has a section (tag 0x%08x) this library does not know; "
                                "it was written by a newer one",
                                who, where, (unsigned)tag);
            continue;       /* ancillary: safe to ignore */
        }
        if (found[k].data) return BAD("section %s appears twice", who, where, section_names[k]);
        found[k] = (section){tag, data, (size_t)len};
    }
    for (int k = 0; k < S_COUNT; k++)
        if (k < S_PROB && found[k].data == NULL)
            return BAD("section %s is missing", who, where, section_names[k]);
    return TN_OK;
}

/* The settings, applied through tni_trainer_set so that a loaded value
 * obeys exactly the rules a set one does. */
static tn_status apply_settings(tn_trainer *tr, const char *where, const section *s)
{
    tn_ctx *ctx = tr->ctx;
    tni_reader r = {s->data, s->len, 0};
    const uint32_t count = (uint32_t)tni_r_uint(&r, 4);
    if (r.short_read || r.left != (size_t)count * 12)
        return BAD("the settings section is truncated", who, where);
    for (int pass = 0; pass < 2; pass++) {
        r = (tni_reader){s->data + 4, s->len - 4, 0};
        for (uint32_t i = 0; i < count; i++) {
            const tn_train_param p = (tn_train_param)tni_r_uint(&r, 4);
            const double v = tni_r_f64(&r);
            if ((p == TN_TRAIN_OPTIMIZER) != (pass == 0)) continue;
            double now;
            if (tni_trainer_get(tr, p, &now) != TN_OK)
                return tni_fail(ctx, TN_E_VERSION,
                                "%s: '%s' has setting %d, which this library does not know; it was "
                                "written by a newer one",
                                who, where, (int)p);
            const tn_status st = tni_trainer_set(tr, p, v);
            if (st == TN_E_NOMEM) return st;   /* TN_TRAIN_RECORD_TAYLOR allocates */
            if (st != TN_OK) {
                char why[TNI_ERRMSG_MAX];
                snprintf(why, sizeof why, "%s", tn_ctx_errmsg(ctx));
                return BAD("invalid setting (%s)", who, where, why);
            }
        }
    }
    return TN_OK;
}

/* Everything else, checked in full before any of it is applied. */
static tn_status apply_state(tn_trainer *tr, const char *where, const section *found)
{
    tn_ctx *ctx = tr->ctx;
    const size_t P = tr->P;
    /* STEP */
    tni_reader r = {found[S_STEP].data, found[S_STEP].len, 0};
    const uint64_t steps = tni_r_uint(&r, 8), updates = tni_r_uint(&r, 8);
    const uint32_t explicit_set = (uint32_t)tni_r_uint(&r, 4), valid = (uint32_t)tni_r_uint(&r, 4);
    double stat[NSTATS];
    tni_r_f64s(&r, stat, NSTATS);
    if (r.short_read || r.left != 0) return BAD("the step section is truncated", who, where);
    if (updates > steps || explicit_set & ~TNI_TRAIN_EXPLICIT_ALL || valid >> NSTATS)
        return BAD("the step counters are inconsistent", who, where);
    for (size_t s = 0; s < NSTATS; s++)
        if (valid >> s & 1u && !isfinite(stat[s]))
            return BAD("statistic %zu of the last step is not finite", who, where, s);
    /* THT0 */
    r = (tni_reader){found[S_THT0].data, found[S_THT0].len, 0};
    const uint32_t order = (uint32_t)tni_r_uint(&r, 4);
    const uint64_t p0 = tni_r_uint(&r, 8);
    if (r.short_read || p0 != P || r.left != 8 * P)
        return BAD("theta0 does not match the network (%llu parameters)", who, where,
                   (unsigned long long)p0);
    if (order < 1 || order > TNI_MAX_ORDER || (tr->order >= 1 && order != (uint32_t)tr->order))
        return BAD("the expansion order %u does not match the settings", who, where, order);
    const unsigned char *theta0 = r.p;
    /* OPTS */
    r = (tni_reader){found[S_OPTS].data, found[S_OPTS].len, 0};
    const uint32_t count = (uint32_t)tni_r_uint(&r, 4);
    const uint64_t p1 = tni_r_uint(&r, 8);
    /* count <= 2 and P <= SIZE_MAX / 32 (net.c), so 8 P count cannot overflow. */
    if (r.short_read || count != (uint32_t)tni_opt_state_count(&tr->opt) || p1 != P ||
        r.left != 8 * P * count)
        return BAD("the optimizer state does not match the optimizer and the network", who,
                   where);
    const unsigned char *opt = r.p;

    /* Decode into the trainer's spare vectors, validate, then commit. */
    tni_reader t0 = {theta0, 8 * P, 0};
    tni_r_f64s(&t0, tr->theta_new, P);
    if (tni_net_check_params(tr->net, tr->theta_new, who) != TN_OK)
        return BAD("theta0 is not finite", who, where);
    tni_reader os = {opt, 8 * P * count, 0};
    for (uint32_t i = 0; i < count; i++) {
        tni_r_f64s(&os, tr->state_new[i], P);
        if (!tni_all_finite(tr->state_new[i], P))
            return BAD("the optimizer state is not finite", who, where);
    }
    tni_expansion_set_order(&tr->ex, order);
    tni_expansion_rebase(&tr->ex, tr->theta_new);
    for (uint32_t i = 0; i < count; i++) memcpy(tr->state[i], tr->state_new[i], P * sizeof(double));
    tr->steps = steps;
    tr->opt.t = updates;
    tr->explicit_set = explicit_set;
    tr->stat_valid = valid;
    memcpy(tr->stat, stat, sizeof stat);
    return TN_OK;
}

tn_status tni_checkpoint_parse(tn_ctx *ctx, const char *where, const unsigned char *data,
                               size_t len, tn_net **net_out, tn_trainer **tr_out)
{
    if (len < sizeof magic + 4 || memcmp(data, magic, sizeof magic) != 0)
        return BAD("not a taylornet checkpoint", who, where);
    tni_reader r = {data + sizeof magic, len - sizeof magic, 0};
    const uint32_t version = (uint32_t)tni_r_uint(&r, 4);
    if (version > TNI_CHECKPOINT_VERSION)
        return tni_fail(ctx, TN_E_VERSION,
                        "%s: '%s' has checkpoint format version %u; this library reads up to %u",
                        who, where, version, TNI_CHECKPOINT_VERSION);
    if (version == 0) return BAD("format version 0 is not valid", who, where);
    if (len < sizeof magic + 8) return BAD("truncated", who, where);
    if (!tni_crc_trailer_ok(data, len))
        return BAD("checksum mismatch (truncated or corrupted)", who, where);
    r.left -= 4;
    section found[S_COUNT];
    TNI_TRY(split(ctx, where, &r, found));

    /* The network, by the network file's own parser. */
    char inner[64 + TNI_ERRMSG_MAX / 2];
    snprintf(inner, sizeof inner, "%.*s (network section)", TNI_ERRMSG_MAX / 2, where);
    tn_net *net = NULL;
    TNI_TRY(tni_netfile_parse(ctx, who, inner, found[S_NETW].data, found[S_NETW].len, &net));
    tn_trainer *tr = NULL;
    tn_status st = tni_trainer_new(net, &tr);
    if (st == TN_OK) st = apply_settings(tr, where, &found[S_SETS]);
    if (st == TN_OK) st = apply_state(tr, where, found);
    if (st == TN_OK && found[S_PROB].data)
        st = tni_diagnostics_decode(tr, found[S_PROB].data, found[S_PROB].len, who, where);
    /* The exploration goes with a probe, the Taylor record with the setting
     * TN_TRAIN_RECORD_TAYLOR 1 (which made an empty record). */
    if (st == TN_OK && found[S_EXPL].data) {
        st = found[S_PROB].data ? tni_diagnostics_decode_exploration(tr, found[S_EXPL].data,
                                                                     found[S_EXPL].len, who, where)
                                : BAD("an exploration section without a probe", who, where);
    }
    if (st == TN_OK && (found[S_TAYR].data != NULL) != (tr->record != NULL))
        st = BAD("the Taylor record does not match TN_TRAIN_RECORD_TAYLOR", who, where);
    if (st == TN_OK && found[S_TAYR].data)
        st = tni_record_decode(tr, found[S_TAYR].data, found[S_TAYR].len, who, where);
    if (st != TN_OK) {
        tni_trainer_delete(tr);
        tni_net_delete(net);
        return st;
    }
    *net_out = net;
    *tr_out = tr;
    return TN_OK;
}

#undef BAD

tn_status tni_trainer_load(tn_ctx *ctx, const char *path, tn_net **net, tn_trainer **tr)
{
    unsigned char *data = NULL;
    size_t len = 0;
    tn_status st = tni_file_read(ctx, who, path, &data, &len);
    if (st != TN_OK) return st;
    st = tni_checkpoint_parse(ctx, path, data, len, net, tr);
    tni_free(data);
    return st;
}
