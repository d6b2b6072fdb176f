/* regret.c -- the regret against the Taylor optimum (record.h): min_V of
 * the sum of the recorded steps' Taylor losses,
 *   F(V) = sum_t psi_t(z_t(V)),  z_t(V) = b_t + alpha_t J_t (V - theta_t),
 *   psi_t(z) = L_t(z, y_t) / alpha_t^2,
 * solved without ever forming a J_t: every solver is built on one pass over
 * the record that, for each step, runs the engine's order-1 forward at
 * theta_t along a tangent (its order-1 block is J_t tangent) and, when asked,
 * the reverse of that forward with a cotangent made from it (at order 1 the
 * reverse gives J_t^T cot, whatever the tangent).
 *
 * The gradient and Hessian of F in V:
 *   grad F = sum_t J_t^T grad psi_t(z_t) alpha_t,   grad psi = dL/dz / alpha^2,
 *   H      = sum_t J_t^T (alpha_t^2 hess psi_t) J_t = sum_t J_t^T (d^2L/dz^2) J_t.
 * MSE:  dL/dz = (z - y) / n,  d^2L/dz^2 = I / n.
 * CE:   dL/dz_i = (s_i p_i - y_i) / n,  d^2L/dz_i^2 = s_i (diag p_i - p_i p_i^T) / n,
 *       p_i = softmax(z_i), s_i = sum_c y_ic.
 */
#include "record.h"
#include "loss.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* AUTO solves MSE directly up to this many Jacobian entries (32 MiB). */
#define TNI_REGRET_DIRECT_MAX ((size_t)1 << 22)
/* Singular values below this fraction of the largest are zero (DIRECT). */
#define TNI_REGRET_RCOND 1e-12

extern void dgelsd_(const int *m, const int *n, const int *nrhs, double *a, const int *lda,
                    double *b, const int *ldb, double *s, const double *rcond, int *rank,
                    double *work, const int *lwork, int *iwork, int *info);

static const char fn[] = "tn_trainer_regret";

typedef struct solver {
    tn_trainer *tr;
    tni_record *rec;
    tn_ctx *ctx;
    size_t P, O, T, M;
    size_t *row;                    /* T + 1: step t's rows are row[t] .. row[t+1] of M */
    double *tangent;                /* P: V - theta_t for the step being processed */
    double *cot, *jv;               /* the largest step's n O each: a pass's scratch */
    double *term;                   /* P, or NULL: a pass sums sum_t |J_t^T cot_t| through it */
    double term_norms;
    double iterations;
    double loss_sum;
    int nonnegative;                /* every Taylor loss is >= 0, so F* >= 0 */
} solver;

static const tni_rec_step *step_of(const solver *s, size_t t)
{
    return s->rec->steps[t];
}

/* ---- one pass over the record ----------------------------------------- */

/* What a pass does between a step's forward and its reverse: jv is J_t v
 * (n x O) for the pass's tangent, cot receives the cotangent of the reverse
 * (whose result, J_t^T cot, is added into the pass's grad). */
typedef void (*between_fn)(solver *s, size_t t, const double *jv, double *cot, void *user);

/* For every step t: J_t (v - [minus_theta] theta_t) into jv (M values, may be
 * NULL), and, with grad, grad = sum_t J_t^T cot_t, cot_t from between. */
static tn_status pass(solver *s, const double *v, int minus_theta, double *jv, between_fn between,
                      void *user, double *grad)
{
    tni_tape *tp = s->rec->tape;
    if (grad) memset(grad, 0, s->P * sizeof(double));
    for (size_t t = 0; t < s->T; t++) {
        const tni_rec_step *st = step_of(s, t);
        const tni_rec_batch *b = st->batch;
        const double *tan = v;
        if (minus_theta) {
            for (size_t i = 0; i < s->P; i++) s->tangent[i] = v[i] - st->theta[i];
            tan = s->tangent;
        }
        TNI_TRY(tni_engine_forward(tp, st->theta, tan, 1, b->x, b->n, 0));
        size_t deg;
        const double *z = tni_engine_output(tp, &deg);
        const size_t blk = b->n * s->O;
        double *out = jv ? jv + s->row[t] * s->O : s->jv;
        if (deg >= 1)
            memcpy(out, z + blk, blk * sizeof(double));
        else
            memset(out, 0, blk * sizeof(double));
        if (grad) {
            between(s, t, out, s->cot, user);
            if (s->term == NULL) {
                TNI_TRY(tni_engine_reverse(tp, st->theta, tan, s->cot, grad, 1));
                continue;
            }
            TNI_TRY(tni_engine_reverse(tp, st->theta, tan, s->cot, s->term, 0));
            double sq = 0.0;
            for (size_t i = 0; i < s->P; i++) {
                grad[i] += s->term[i];
                sq += s->term[i] * s->term[i];
            }
            s->term_norms += sqrt(sq);
        }
    }
    return TN_OK;
}

/* grad = sum_t J_t^T u_t (u: M values, row block t scaled by w_t). */
static tn_status pass_vjp(solver *s, const double *u, const double *w, double *grad)
{
    double *cot_buf = s->cot;
    tni_tape *tp = s->rec->tape;
    memset(grad, 0, s->P * sizeof(double));
    for (size_t t = 0; t < s->T; t++) {
        const tni_rec_step *st = step_of(s, t);
        const size_t blk = st->batch->n * s->O;
        const double *ut = u + s->row[t] * s->O;
        for (size_t e = 0; e < blk; e++) cot_buf[e] = w[t] * ut[e];
        TNI_TRY(tni_engine_forward(tp, st->theta, NULL, 0, st->batch->x, st->batch->n, 0));
        TNI_TRY(tni_engine_reverse(tp, st->theta, NULL, cot_buf, grad, 1));
    }
    return TN_OK;
}

/* ---- the losses' derivatives in z ------------------------------------- */

/* psi_t summed over the step's rows, z its Taylor outputs (n x O). */
static double step_value(const tni_rec_step *st, size_t O, const double *z)
{
    return tni_loss(st->loss, st->batch->n, O, z, st->batch->y, NULL) / (st->alpha * st->alpha);
}

/* u = (d^2 L / dz^2) a for the step's rows at z (n x O each). */
static void step_curvature(const tni_rec_step *st, size_t O, const double *z, const double *a,
                           double *u)
{
    const size_t n = st->batch->n;
    const double inv = 1.0 / (double)n;
    if (st->loss == TN_LOSS_MSE) {
        for (size_t e = 0; e < n * O; e++) u[e] = a[e] * inv;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const double *zi = z + i * O, *yi = st->batch->y + i * O, *ai = a + i * O;
        double *ui = u + i * O;
        double m = zi[0], sum = 0.0, ys = 0.0, pa = 0.0;
        for (size_t c = 1; c < O; c++) m = zi[c] > m ? zi[c] : m;
        for (size_t c = 0; c < O; c++) {
            ui[c] = exp(zi[c] - m);         /* p before normalizing */
            sum += ui[c];
            ys += yi[c];
        }
        for (size_t c = 0; c < O; c++) {
            ui[c] /= sum;
            pa += ui[c] * ai[c];
        }
        for (size_t c = 0; c < O; c++) ui[c] = ys * ui[c] * (ai[c] - pa) * inv;
    }
}

/* ---- Newton-CG (any losses) -------------------------------------------- */

typedef struct newton {
    double *V, *g, *d, *r, *p, *Hp;     /* P each */
    double *z, *Jd, *Jp, *zt;           /* M each */
    double F;
} newton;

/* The gradient pass's between: z_t = b_t + alpha J_t (V - theta_t) is
 * stored, and the cotangent is dL/dz / alpha. */
static void grad_between(solver *s, size_t t, const double *jv, double *cot, void *user)
{
    newton *nw = user;
    const tni_rec_step *st = step_of(s, t);
    const size_t blk = st->batch->n * s->O;
    double *z = nw->z + s->row[t] * s->O;
    for (size_t e = 0; e < blk; e++) z[e] = st->b[e] + st->alpha * jv[e];
    nw->F += step_value(st, s->O, z);
    tni_loss(st->loss, st->batch->n, s->O, z, st->batch->y, cot);
    const double inv = 1.0 / st->alpha;
    for (size_t e = 0; e < blk; e++) cot[e] *= inv;
}

/* The Hessian pass's between: jv = J_t p is kept, the cotangent is the
 * loss's curvature at z_t applied to it. */
static void hess_between(solver *s, size_t t, const double *jv, double *cot, void *user)
{
    newton *nw = user;
    (void)jv;   /* the pass wrote it into nw->Jp already */
    step_curvature(step_of(s, t), s->O, nw->z + s->row[t] * s->O, nw->Jp + s->row[t] * s->O, cot);
}

static double dot(const double *a, const double *b, size_t n)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* phi(step) = F(V + step d) through z + step alpha Jd; its first and second
 * derivatives into *d1 and *d2. */
static double line_eval(solver *s, newton *nw, double step, double *d1, double *d2)
{
    double F = 0.0, g1 = 0.0, g2 = 0.0;
    for (size_t t = 0; t < s->T; t++) {
        const tni_rec_step *st = step_of(s, t);
        const size_t off = s->row[t] * s->O, blk = st->batch->n * s->O;
        const double *z = nw->z + off, *jd = nw->Jd + off;
        double *zt = nw->zt + off, *gz = s->cot;
        for (size_t e = 0; e < blk; e++) zt[e] = z[e] + step * st->alpha * jd[e];
        F += step_value(st, s->O, zt);
        tni_loss(st->loss, st->batch->n, s->O, zt, st->batch->y, gz);
        g1 += dot(gz, jd, blk) / st->alpha;
        step_curvature(st, s->O, zt, jd, gz);
        g2 += dot(gz, jd, blk);
    }
    *d1 = g1;
    *d2 = g2;
    return F;
}

/* The exact minimum of the convex phi along d: safeguarded Newton on phi'
 * inside a bracket, from the Newton step 1.  Returns the step with the
 * least phi found (phi(0) = F is the fallback: never an increase). */
static double line_search(solver *s, newton *nw, double *Fbest)
{
    double lo = 0.0, hi = INFINITY, step = 1.0, best = 0.0, d1, d2;
    const double d1_0 = dot(nw->g, nw->d, s->P);
    *Fbest = nw->F;
    for (int it = 0; it < 100; it++) {
        const double F = line_eval(s, nw, step, &d1, &d2);
        if (isfinite(F) && F < *Fbest) {
            *Fbest = F;
            best = step;
        }
        if (!isfinite(F) || d1 > 0)
            hi = step;
        else
            lo = step;
        if (fabs(d1) <= 1e-12 * fabs(d1_0) || hi - lo <= 1e-15 * hi) break;
        double next = d2 > 0 && isfinite(d1) ? step - d1 / d2 : NAN;
        if (!(next > lo && next < hi)) next = isinf(hi) ? 2.0 * step : 0.5 * (lo + hi);
        step = next;
    }
    return best;
}

static tn_status not_converged(solver *s, const char *name, double tol, double reached)
{
    return tni_fail(s->ctx, TN_E_NUMERIC,
                    "%s: %s did not reach the tolerance %g in %.0f iterations "
                    "(TN_TRAIN_REGRET_MAX_ITERATIONS; it reached %.3g); raise the limit or the "
                    "tolerance",
                    fn, name, tol, (double)s->tr->regret_max_iter, reached);
}

/* CG on H d = -g, continued from where it stopped (d, r, p, rr, Jd kept
 * in nw), until |r|^2 <= target, |r| has not reached a new low for 25
 * iterations (the rounding floor: a gradient at rounding level has parts
 * outside the range of H that no d removes), H has no curvature along p,
 * or the iteration limit.  Returns the number of CG steps taken. */
typedef struct cg_state {
    double rr, rr_best;
    int since_best, steps;
} cg_state;

static tn_status cg_run(solver *s, newton *nw, cg_state *c, double target)
{
    const size_t P = s->P, M = s->M;
    const double max_it = (double)s->tr->regret_max_iter;
    while (c->rr > target && c->since_best < 25 && s->iterations < max_it) {
        TNI_TRY(pass(s, nw->p, 0, nw->Jp, hess_between, nw, nw->Hp));
        s->iterations += 1;
        const double pHp = dot(nw->p, nw->Hp, P);
        if (!(pHp > 0)) {
            /* No curvature along p: keep what CG has, or take the steepest
             * descent direction, which the line search follows. */
            if (c->steps == 0) {
                memcpy(nw->d, nw->p, P * sizeof(double));
                memcpy(nw->Jd, nw->Jp, M * sizeof(double));
            }
            c->since_best = INT_MAX;
            break;
        }
        const double a = c->rr / pHp;
        for (size_t i = 0; i < P; i++) {
            nw->d[i] += a * nw->p[i];
            nw->r[i] -= a * nw->Hp[i];
        }
        for (size_t e = 0; e < M; e++) nw->Jd[e] += a * nw->Jp[e];
        c->steps++;
        const double rr = dot(nw->r, nw->r, P), beta = rr / c->rr;
        for (size_t i = 0; i < P; i++) nw->p[i] = nw->r[i] + beta * nw->p[i];
        c->rr = rr;
        if (rr < c->rr_best) {
            c->rr_best = rr;
            c->since_best = 0;
        } else {
            c->since_best++;
        }
    }
    return TN_OK;
}

/* Newton's method: CG on H d = -g to the forcing term eta |g|
 * (Eisenstat-Walker's superlinear choice eta = min(1/2, sqrt(|g|/|g_0|))),
 * then the exact line search.  Converged when half the Newton decrement
 * lambda^2 = g^T H^-1 g and the decrease of the step just taken are both at
 * most tol times the loss sum: the first estimates F - F* near a minimum
 * (it is the quadratic model's decrease), the second what is left where
 * the losses decay exponentially (separable cross-entropy, whose F* is an
 * infimum).  CG from 0 gives d^T H d = -g^T d, a lower bound of lambda^2
 * that a loosely solved CG can badly underestimate on an ill-conditioned
 * H, so before a step is accepted as the last, its CG is continued to
 * |r| <= 1e-8 |g| (or its rounding floor) and lambda^2 taken again.
 * Two exits need no estimate: F itself at most tol times the loss sum when
 * every Taylor loss is >= 0 (MSE; cross-entropy with targets >= 0), since
 * then F - F* <= F -- how separable cross-entropy ends; and a gradient below
 * 64 eps of the sum of the steps' gradient norms, which is rounding. */
static tn_status newton_cg(solver *s, newton *nw, double tol, double *accuracy, double *newton_steps)
{
    const size_t P = s->P, M = s->M;
    const double scale = s->loss_sum > 0 ? s->loss_sum : 1.0;
    double g0 = 0.0;
    *newton_steps = 0;
    *accuracy = INFINITY;
    for (;;) {
        if (s->iterations >= (double)s->tr->regret_max_iter)
            return not_converged(s, "Newton-CG", tol, *accuracy);
        nw->F = 0.0;
        s->term = nw->Hp;          /* free until the CG */
        s->term_norms = 0.0;
        const tn_status st = pass(s, nw->V, 1, NULL, grad_between, nw, nw->g);
        s->term = NULL;
        TNI_TRY(st);
        s->iterations += 1;
        const double gn = sqrt(dot(nw->g, nw->g, P));
        if (g0 == 0.0) g0 = gn;
        if (s->nonnegative && nw->F <= tol * scale) {
            *accuracy = fmax(nw->F, 0.0) / scale;
            return TN_OK;
        }
        if (gn <= 64 * DBL_EPSILON * s->term_norms) {
            *accuracy = 0.0;
            return TN_OK;
        }
        for (size_t i = 0; i < P; i++) {
            nw->d[i] = 0.0;
            nw->r[i] = -nw->g[i];
            nw->p[i] = nw->r[i];
        }
        memset(nw->Jd, 0, M * sizeof(double));
        cg_state c = {.rr = gn * gn, .rr_best = gn * gn};
        const double eta = fmin(0.5, sqrt(gn / g0));
        TNI_TRY(cg_run(s, nw, &c, eta * eta * gn * gn));
        double lambda2 = -dot(nw->g, nw->d, P), Fnew, step = 0.0;
        if (lambda2 > 0) step = line_search(s, nw, &Fnew);
        /* A step that brings F under the tolerance is taken and confirmed
         * by the next gradient pass's exact F; a small decrement otherwise
         * is checked by continuing the CG. */
        const int confirm = s->nonnegative && lambda2 > 0 && Fnew <= tol * scale;
        if (!confirm && 0.5 * lambda2 <= tol * scale && eta > 1e-8) {
            c.since_best = c.since_best == INT_MAX ? INT_MAX : 0;
            TNI_TRY(cg_run(s, nw, &c, 1e-16 * gn * gn));
            lambda2 = -dot(nw->g, nw->d, P);
            if (lambda2 > 0) step = line_search(s, nw, &Fnew);
        }
        if (!(lambda2 > 0)) {
            if (c.steps == 0 && s->iterations >= (double)s->tr->regret_max_iter)
                return not_converged(s, "Newton-CG", tol, *accuracy);
            return tni_fail(s->ctx, TN_E_NUMERIC,
                            "%s: Newton-CG found no descent direction (|g| = %g): the Hessian "
                            "products are not accurate enough", fn, gn);
        }
        for (size_t i = 0; i < P; i++) nw->V[i] += step * nw->d[i];
        *newton_steps += 1;
        *accuracy = fmax(0.5 * lambda2, nw->F - Fnew) / scale;
        if (!confirm && *accuracy <= tol) return TN_OK;
    }
}

/* ---- LSQR (MSE) ---------------------------------------------------------
 * The MSE Taylor losses are a weighted least-squares problem in the step
 * W = V - V0 from the start V0:  sum_t (1/2 n_t) |r_t + J_t W|^2,
 * r_t = (z_t(V0) - y_t) / alpha_t, i.e. (1/2) |A W - c|^2 with A's row block
 * t = J_t / sqrt(n_t) and c_t = -r_t / sqrt(n_t).  LSQR (Paige & Saunders
 * 1982; the recurrences and stopping rules of their paper, as in SciPy). */

typedef struct lsqr {
    double *x, *v, *w, *Atu;        /* P each */
    double *u, *Av;                 /* M each */
    double *wt;                     /* T: 1 / sqrt(n_t) */
} lsqr;

static double norm(const double *v, size_t n)
{
    return sqrt(dot(v, v, n));
}

static void scale_rows(const solver *s, const double *wt, double *m)
{
    for (size_t t = 0; t < s->T; t++)
        for (size_t e = s->row[t] * s->O; e < s->row[t + 1] * s->O; e++) m[e] *= wt[t];
}

static tn_status run_lsqr(solver *s, lsqr *q, double tol, double *accuracy)
{
    const size_t P = s->P, M = s->M;
    const double max_it = (double)s->tr->regret_max_iter;
    double beta = norm(q->u, M);
    memset(q->x, 0, P * sizeof(double));
    if (beta > 0)
        for (size_t e = 0; e < M; e++) q->u[e] /= beta;
    TNI_TRY(pass_vjp(s, q->u, q->wt, q->v));
    double alpha = norm(q->v, P);
    if (alpha > 0)
        for (size_t i = 0; i < P; i++) q->v[i] /= alpha;
    memcpy(q->w, q->v, P * sizeof(double));
    const double bnorm = beta;
    double phibar = beta, rhobar = alpha, anorm = 0.0;
    *accuracy = 0.0;
    if (beta == 0.0 || alpha == 0.0) return TN_OK;   /* c = 0, or A^T c = 0: x = 0 */
    while (s->iterations < max_it) {
        /* Bidiagonalization: beta u = A v - alpha u, alpha v = A^T u - beta v. */
        TNI_TRY(pass(s, q->v, 0, q->Av, NULL, NULL, NULL));
        scale_rows(s, q->wt, q->Av);
        for (size_t e = 0; e < M; e++) q->u[e] = q->Av[e] - alpha * q->u[e];
        beta = norm(q->u, M);
        if (beta > 0) {
            for (size_t e = 0; e < M; e++) q->u[e] /= beta;
            anorm = sqrt(anorm * anorm + alpha * alpha + beta * beta);
            TNI_TRY(pass_vjp(s, q->u, q->wt, q->Atu));
            for (size_t i = 0; i < P; i++) q->v[i] = q->Atu[i] - beta * q->v[i];
            alpha = norm(q->v, P);
            if (alpha > 0)
                for (size_t i = 0; i < P; i++) q->v[i] /= alpha;
        }
        s->iterations += 1;
        /* The plane rotation, and the updates of x and w. */
        const double rho = hypot(rhobar, beta), c = rhobar / rho, sn = beta / rho;
        const double theta = sn * alpha;
        rhobar = -c * alpha;
        const double phi = c * phibar;
        phibar = sn * phibar;
        const double t1 = phi / rho, t2 = -theta / rho;
        for (size_t i = 0; i < P; i++) {
            q->x[i] += t1 * q->w[i];
            q->w[i] = q->v[i] + t2 * q->w[i];
        }
        /* The stopping rules: |r| small beside |b| + |A| |x| (a compatible
         * system), or |A^T r| small beside |A| |r| (the least-squares
         * optimum). */
        const double rnorm = phibar, arnorm = alpha * fabs(sn * phi), xnorm = norm(q->x, P);
        const double test1 = rnorm / (bnorm + anorm * xnorm);
        const double test2 = rnorm > 0 ? arnorm / (anorm * rnorm) : 0.0;
        *accuracy = fmin(test1, test2);
        if (*accuracy <= tol || beta == 0.0 || alpha == 0.0) return TN_OK;
    }
    return not_converged(s, "LSQR", tol, *accuracy);
}

/* ---- the direct solve (MSE): the dense Jacobian and dgelsd ------------- */

/* A (column-major M x P, row block t = J_t / sqrt(n_t)) by one forward per
 * example and O reverses with one-hot cotangents. */
static tn_status dense_jacobian(solver *s, double *A, double *grad, double *onehot)
{
    tni_tape *tp = s->rec->tape;
    const size_t O = s->O, M = s->M, P = s->P;
    for (size_t t = 0; t < s->T; t++) {
        const tni_rec_step *st = step_of(s, t);
        const size_t n = st->batch->n;
        const double w = 1.0 / sqrt((double)n);
        for (size_t i = 0; i < n; i++) {
            TNI_TRY(tni_engine_forward(tp, st->theta, NULL, 0, st->batch->x + i * s->tr->d, 1, 0));
            for (size_t c = 0; c < O; c++) {
                memset(onehot, 0, O * sizeof(double));
                onehot[c] = 1.0;
                TNI_TRY(tni_engine_reverse(tp, st->theta, NULL, onehot, grad, 0));
                const size_t r = (s->row[t] + i) * O + c;
                for (size_t p = 0; p < P; p++) A[r + p * M] = w * grad[p];
            }
        }
    }
    s->iterations += 1;     /* its M VJPs count as one iteration */
    return TN_OK;
}

/* ---- the solve --------------------------------------------------------- */

/* 1 if no Taylor loss can be negative: MSE, or cross-entropy with y >= 0. */
static int nonnegative(const tni_record *rec, size_t O)
{
    for (size_t t = 0; t < rec->count; t++) {
        const tni_rec_step *st = rec->steps[t];
        if (st->loss == TN_LOSS_MSE) continue;
        for (size_t e = 0; e < st->batch->n * O; e++)
            if (!(st->batch->y[e] >= 0)) return 0;
    }
    return 1;
}

static int all_mse(const tni_record *rec)
{
    for (size_t t = 0; t < rec->count; t++)
        if (rec->steps[t]->loss != TN_LOSS_MSE) return 0;
    return 1;
}

/* Allocates n arrays of len doubles each into ptrs; all or none. */
static tn_status alloc_arrays(tn_ctx *ctx, double **const *ptrs, size_t n, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = tni_alloc(ctx, len ? len : 1, sizeof(double));
        if (*ptrs[i] == NULL) {
            for (size_t j = 0; j < i; j++) {
                tni_free(*ptrs[j]);
                *ptrs[j] = NULL;
            }
            return tni_fail(ctx, TN_E_NOMEM, "%s: out of memory for the solver's workspace "
                            "(%zu vectors of %zu doubles)", fn, n, len);
        }
    }
    return TN_OK;
}

static void free_arrays(double **const *ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tni_free(*ptrs[i]);
        *ptrs[i] = NULL;
    }
}

/* z (M) = b_t + alpha_t J_t (V - theta_t), and F(V) from it. */
static tn_status taylor_outputs(solver *s, const double *V, double *z, double *F)
{
    TNI_TRY(pass(s, V, 1, z, NULL, NULL, NULL));
    double sum = 0.0;
    for (size_t t = 0; t < s->T; t++) {
        const tni_rec_step *st = step_of(s, t);
        double *zt = z + s->row[t] * s->O;
        for (size_t e = 0; e < st->batch->n * s->O; e++) zt[e] = st->b[e] + st->alpha * zt[e];
        sum += step_value(st, s->O, zt);
    }
    *F = sum;
    return TN_OK;
}

/* c = -(z_t - y_t) / (alpha_t sqrt(n_t)) from z (M), in place. */
static void lsq_rhs(const solver *s, double *z)
{
    for (size_t t = 0; t < s->T; t++) {
        const tni_rec_step *st = step_of(s, t);
        const double w = -1.0 / (st->alpha * sqrt((double)st->batch->n));
        const size_t off = s->row[t] * s->O;
        for (size_t e = 0; e < st->batch->n * s->O; e++)
            z[off + e] = w * (z[off + e] - st->batch->y[e]);
    }
}

static tn_status solve_direct(solver *s, double *V, double *accuracy)
{
    const size_t M = s->M, P = s->P, mx = M > P ? M : P, mn = M < P ? M : P;
    if (M > INT_MAX || P > INT_MAX || mx > INT_MAX / 2)
        return tni_fail(s->ctx, TN_E_UNSUPPORTED,
                        "%s: the direct solve is too large for LAPACK's 32-bit sizes (%zu x %zu); "
                        "use TN_REGRET_LSQR", fn, M, P);
    const int m = (int)M, n = (int)P, one = 1, ldb = (int)mx;
    int rank = 0, info = 0, lwork = -1, iq = 0;
    double wq = 0.0, rcond = TNI_REGRET_RCOND;
    dgelsd_(&m, &n, &one, NULL, &m, NULL, &ldb, NULL, &rcond, &rank, &wq, &lwork, &iq, &info);
    if (info != 0 || !(wq >= 1) || wq > (double)INT_MAX || iq < 1)
        return tni_fail(s->ctx, TN_E_UNSUPPORTED, "%s: LAPACK's workspace query failed (%d)", fn,
                        info);
    lwork = (int)wq;
    size_t entries;
    if (tni_mul_overflow(M, P, &entries))
        return tni_fail(s->ctx, TN_E_NOMEM, "%s: the dense Jacobian's size overflows", fn);
    double *A = tni_alloc(s->ctx, entries, sizeof(double));
    double *B = tni_alloc(s->ctx, mx, sizeof(double));
    double *sv = tni_alloc(s->ctx, mn, sizeof(double));
    double *work = tni_alloc(s->ctx, (size_t)lwork, sizeof(double));
    double *grad = tni_alloc(s->ctx, P, sizeof(double));
    int *iwork = tni_alloc(s->ctx, (size_t)iq, sizeof(int));
    tn_status st = A && B && sv && work && grad && iwork
                       ? TN_OK
                       : tni_fail(s->ctx, TN_E_NOMEM,
                                  "%s: out of memory for the direct solve (%zu x %zu Jacobian, "
                                  "%.0f MiB; use TN_REGRET_LSQR)",
                                  fn, M, P, (double)entries * 8 / 1048576.0);
    double F0 = 0.0;
    if (st == TN_OK) st = taylor_outputs(s, V, B, &F0);
    if (st == TN_OK) st = dense_jacobian(s, A, grad, s->cot);
    if (st == TN_OK) {
        lsq_rhs(s, B);
        dgelsd_(&m, &n, &one, A, &m, B, &ldb, sv, &rcond, &rank, work, &lwork, iwork, &info);
        if (info != 0)
            st = tni_fail(s->ctx, TN_E_NUMERIC, "%s: the SVD did not converge (dgelsd info %d)",
                          fn, info);
    }
    if (st == TN_OK)
        for (size_t i = 0; i < P; i++) V[i] += B[i];
    *accuracy = 0.0;
    tni_free(A), tni_free(B), tni_free(sv), tni_free(work), tni_free(grad), tni_free(iwork);
    return st;
}

static tn_status solve(solver *s, int method, double *V, double *accuracy, double *newton_steps)
{
    const size_t P = s->P, M = s->M;
    tn_status st;
    *newton_steps = 0;
    if (method == TN_REGRET_DIRECT) return solve_direct(s, V, accuracy);
    if (method == TN_REGRET_LSQR) {
        lsqr q = {0};
        double **pv[] = {&q.x, &q.v, &q.w, &q.Atu}, **mv[] = {&q.u, &q.Av}, **tv[] = {&q.wt};
        TNI_TRY(alloc_arrays(s->ctx, pv, 4, P));
        if ((st = alloc_arrays(s->ctx, mv, 2, M)) != TN_OK ||
            (st = alloc_arrays(s->ctx, tv, 1, s->T)) != TN_OK) {
            free_arrays(pv, 4);
            free_arrays(mv, 2);
            return st;
        }
        for (size_t t = 0; t < s->T; t++) q.wt[t] = 1.0 / sqrt((double)step_of(s, t)->batch->n);
        double F0;
        st = taylor_outputs(s, V, q.u, &F0);
        if (st == TN_OK) {
            lsq_rhs(s, q.u);
            st = run_lsqr(s, &q, s->tr->regret_tol, accuracy);
        }
        if (st == TN_OK)
            for (size_t i = 0; i < P; i++) V[i] += q.x[i];
        free_arrays(pv, 4);
        free_arrays(mv, 2);
        free_arrays(tv, 1);
        return st;
    }
    newton nw = {0};
    double **pv[] = {&nw.g, &nw.d, &nw.r, &nw.p, &nw.Hp}, **mv[] = {&nw.z, &nw.Jd, &nw.Jp, &nw.zt};
    TNI_TRY(alloc_arrays(s->ctx, pv, 5, P));
    if ((st = alloc_arrays(s->ctx, mv, 4, M)) != TN_OK) {
        free_arrays(pv, 5);
        return st;
    }
    nw.V = V;
    st = newton_cg(s, &nw, s->tr->regret_tol, accuracy, newton_steps);
    free_arrays(pv, 5);
    free_arrays(mv, 4);
    return st;
}

/* The solver AUTO stands for, given the record's size. */
static int resolve_method(int method, int mse, size_t M, size_t P)
{
    size_t entries;
    if (method != TN_REGRET_AUTO) return method;
    if (!mse) return TN_REGRET_NEWTON_CG;
    return !tni_mul_overflow(M, P, &entries) && entries <= TNI_REGRET_DIRECT_MAX ? TN_REGRET_DIRECT
                                                                                 : TN_REGRET_LSQR;
}

tn_status tni_trainer_regret(tn_trainer *tr, double *regret, double *optimum)
{
    tni_record *rec = tr->record;
    tn_ctx *ctx = tr->ctx;
    if (rec == NULL || rec->count == 0)
        return tni_fail(ctx, TN_E_STATE,
                        "%s: no step recorded (set TN_TRAIN_RECORD_TAYLOR to 1, then step)", fn);
    const int mse = all_mse(rec);
    if ((tr->regret_solver == TN_REGRET_DIRECT || tr->regret_solver == TN_REGRET_LSQR) && !mse)
        return tni_fail(ctx, TN_E_UNSUPPORTED,
                        "%s: the %s solver is for MSE, and the record has cross-entropy steps "
                        "(use TN_REGRET_NEWTON_CG or TN_REGRET_AUTO)",
                        fn, tr->regret_solver == TN_REGRET_DIRECT ? "direct" : "LSQR");
    solver s = {.tr = tr, .rec = rec, .ctx = ctx, .P = tr->P, .O = tr->O, .T = rec->count};
    size_t rows = 0, blk = 0;
    for (size_t t = 0; t < s.T; t++) {
        const size_t n = rec->steps[t]->batch->n;
        rows += n;
        blk = n > blk ? n : blk;
        s.loss_sum += rec->steps[t]->value;
    }
    s.M = rows * s.O;
    blk *= s.O;
    s.nonnegative = nonnegative(rec, s.O);
    const int method = resolve_method(tr->regret_solver, mse, s.M, s.P);
    /* The workspace every solver shares, and the point V, allocated before
     * any work.  V starts at theta_T, whatever was solved before: the
     * result depends on the record alone, and the last steps' parameters
     * are where the Taylor losses are best approximated (a previous
     * minimizer, fitted to fewer steps, can be far out along directions
     * that separate those). */
    double *V = NULL, *z = NULL;
    double **pv[] = {&V, &s.tangent}, **bv[] = {&s.cot, &s.jv}, **mv[] = {&z};
    TNI_TRY(alloc_arrays(ctx, pv, 2, s.P));
    tn_status st = alloc_arrays(ctx, bv, 2, blk);
    if (st == TN_OK && (st = alloc_arrays(ctx, mv, 1, s.M)) != TN_OK) free_arrays(bv, 2);
    if (st == TN_OK) {
        s.row = tni_alloc_or_fail(ctx, fn, s.T + 1, sizeof(size_t));
        if (s.row == NULL) {
            free_arrays(bv, 2);
            free_arrays(mv, 1);
            st = TN_E_NOMEM;
        }
    }
    if (st != TN_OK) {
        free_arrays(pv, 2);
        return st;
    }
    for (size_t t = 0; t < s.T; t++) s.row[t + 1] = s.row[t] + rec->steps[t]->batch->n;
    memcpy(V, rec->steps[s.T - 1]->theta, s.P * sizeof(double));
    if (rec->tape == NULL) st = tni_tape_create(ctx, tni_net_graph(tr->net), &rec->tape);
    double accuracy = 0.0, newton_steps = 0.0, F = 0.0;
    if (st == TN_OK) st = solve(&s, method, V, &accuracy, &newton_steps);
    /* The minimum from the Taylor outputs at V computed afresh, not from
     * the solver's running estimates. */
    if (st == TN_OK) st = taylor_outputs(&s, V, z, &F);
    if (st == TN_OK && !isfinite(F))
        st = tni_fail(ctx, TN_E_NUMERIC, "%s: the Taylor optimum is not finite", fn);
    if (st == TN_OK) {
        if (rec->minimizer == NULL) {
            rec->minimizer = V;
            V = NULL;
        } else {
            memcpy(rec->minimizer, V, s.P * sizeof(double));
        }
        rec->solved = 1;
        rec->last = (tni_regret_result){.steps = s.T, .regret = s.loss_sum - F, .optimum = F,
                                        .solver = method, .products = s.iterations,
                                        .newton = newton_steps, .accuracy = accuracy};
        if (regret) *regret = s.loss_sum - F;
        if (optimum) *optimum = F;
    }
    free_arrays(pv, 2);
    free_arrays(bv, 2);
    free_arrays(mv, 1);
    tni_free(s.row);
    return st;
}

tn_status tni_trainer_regret_info(const tn_trainer *tr, tn_regret_info what, double *value)
{
    static const char who[] = "tn_trainer_regret_info";
    const tni_record *rec = tr->record;
    if ((int)what < TN_REGRET_STEPS || (int)what > TN_REGRET_ACCURACY)
        return tni_fail(tr->ctx, TN_E_INVALID_ARG, "%s: %d is not a tn_regret_info", who, (int)what);
    if (rec == NULL)
        return tni_fail(tr->ctx, TN_E_STATE, "%s: TN_TRAIN_RECORD_TAYLOR is off", who);
    if (what >= TN_REGRET_SOLVED_STEPS && !rec->solved)
        return tni_fail(tr->ctx, TN_E_STATE, "%s: no regret computed yet (tn_trainer_regret)", who);
    double sum = 0.0;
    switch (what) {
    case TN_REGRET_STEPS: *value = (double)rec->count; break;
    case TN_REGRET_BYTES: *value = (double)rec->bytes; break;
    case TN_REGRET_LOSS_SUM:
        for (size_t t = 0; t < rec->count; t++) sum += rec->steps[t]->value;
        *value = sum;
        break;
    case TN_REGRET_SOLVED_STEPS: *value = (double)rec->last.steps; break;
    case TN_REGRET_VALUE: *value = rec->last.regret; break;
    case TN_REGRET_OPTIMUM: *value = rec->last.optimum; break;
    case TN_REGRET_SOLVER_USED: *value = rec->last.solver; break;
    case TN_REGRET_ITERATIONS: *value = rec->last.products; break;
    case TN_REGRET_NEWTON_STEPS: *value = rec->last.newton; break;
    case TN_REGRET_ACCURACY: *value = rec->last.accuracy; break;
    }
    return TN_OK;
}

tn_status tni_trainer_regret_minimizer(const tn_trainer *tr, double *v, size_t len)
{
    static const char who[] = "tn_trainer_regret_minimizer";
    if (len != tr->P)
        return tni_fail(tr->ctx, TN_E_SHAPE, "%s: len is %zu, expected %zu parameters", who, len,
                        tr->P);
    if (tr->record == NULL || !tr->record->solved)
        return tni_fail(tr->ctx, TN_E_STATE, "%s: no regret computed yet (tn_trainer_regret)", who);
    memcpy(v, tr->record->minimizer, len * sizeof(double));
    return TN_OK;
}
