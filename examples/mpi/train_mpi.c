/*
 * train_mpi -- data-parallel training over R ranks, in every mode the
 * trainer has (full, linearized, order k, re-expanded, lazy).
 *
 *   mpirun -np R train_mpi --n 4096 --batch 256 --epochs 3 [--modes full,linearized]
 *
 * Every rank holds a replica of the network (same seed) and a trainer in
 * the same mode, and takes its shard of every batch.  The trainer's
 * gradient hook (tn_trainer_set_gradient_hook) replaces the shard's
 * gradient and loss by
 *     sum_r (n_r / n) grad_r,   sum_r (n_r / n) loss_r
 * with one MPI_Allreduce of P + 1 doubles.  The MSE and cross-entropy
 * losses are means over examples, and a shard's are means over its n_r
 * rows, so these sums are exactly the gradient and loss of the whole batch
 * of n rows: every replica makes the update one process would make on the
 * whole batch (up to the rounding of summing in another order), and the
 * replicas stay identical because they all receive the same sum.  Unequal
 * shards (a batch not divisible by R, or --uneven) need the weights n_r /
 * n: the plain mean of shard means weights the examples of small shards
 * more, which is another loss.  Clipping, weight decay and the optimizer
 * run after the hook, on the same numbers on every rank.
 *
 * Failures.  A step fails alike on every rank when the sum it received is
 * not finite (a NaN on one rank reaches all through the all-reduce; the
 * trainer calls the hook even when the local loss is NaN, so no rank
 * leaves the collective): rank 0 reports it and the job ends with status 1.
 * A rank whose step fails before the hook (its own bad data, memory) aborts
 * the job with MPI_Abort and its message: the others, waiting in the
 * all-reduce, are ended, never left hanging.  --inject nan | abort shows
 * both.
 *
 * --out DIR: rank 0 writes, per mode k, train_K_theta.bin (the trained
 * parameters) and train_K_loss.bin (the loss of every step), as doubles;
 * mpi_check train compares them with one process on the whole batches.
 */
#include "dist.h"
#include "problem.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the hook needs: this rank's weight for the current batch and a
 * buffer of P + 1 doubles for the all-reduce; it also times it. */
typedef struct allreduce {
    double weight;
    double *buf;
    double seconds;
} allreduce;

static tn_status average_over_ranks(void *user, double *grad, size_t len, double *loss)
{
    allreduce *ar = user;
    const double t0 = MPI_Wtime();
    for (size_t i = 0; i < len; i++) ar->buf[i] = ar->weight * grad[i];
    ar->buf[len] = ar->weight * *loss;
    /* MPI's default error handler aborts the job on a communication
     * failure, so there is no failing status to return here. */
    MPI_Allreduce(MPI_IN_PLACE, ar->buf, (int)len + 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    memcpy(grad, ar->buf, len * sizeof(double));
    *loss = ar->buf[len];
    ar->seconds += MPI_Wtime() - t0;
    return TN_OK;
}

/* FNV-1a of the parameters' bytes: replicas compare 8 bytes, not P doubles. */
static uint64_t fingerprint(const double *v, size_t n)
{
    const unsigned char *b = (const unsigned char *)v;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n * sizeof(double); i++) h = (h ^ b[i]) * 0x100000001b3u;
    return h;
}

static void write_doubles(const problem *p, const char *name, const double *v, size_t n)
{
    char path[4096];
    problem_path(path, sizeof path, p->out, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(v, sizeof(double), n, f) != n || fclose(f) != 0)
        dist_die("%s: cannot write", path);
}

int main(int argc, char **argv)
{
    dist_init(&argc, &argv);
    dist_say("%s\n", tn_blas_info());   /* the kernel set every rank's GEMMs run on */
    problem p;
    char err[256];
    if (problem_parse(&p, argc, argv, err, sizeof err) != 0) {
        if (dist_rank == 0) fprintf(stderr, "train_mpi: %s\noptions:\n%s", err, problem_usage());
        MPI_Finalize();
        return 2;
    }
    const size_t d = p.d, O = p.outputs;
    const size_t nbatch = (p.n + p.batch - 1) / p.batch, steps = nbatch * (size_t)p.epochs;

    /* Every rank computes the same shard sizes: a batch too small to give
     * every rank a row is refused by all alike, before any collective. */
    size_t local_rows = 0;
    for (size_t b = 0; b < nbatch; b++) {
        size_t first, count, off, rows;
        problem_batch(&p, b, &first, &count);
        for (int r = 0; r < dist_size; r++) {
            problem_shard(&p, count, r, dist_size, &off, &rows);
            if (rows == 0)
                dist_fail_all("train_mpi: batch %zu of %zu rows leaves rank %d without a row "
                              "(%d ranks%s): use larger batches or fewer ranks", b, count, r,
                              dist_size, p.uneven ? ", uneven shards" : "");
            if (r == dist_rank) local_rows += rows;
        }
    }

    /* This rank's shards of every batch, generated in place: batches do
     * not change between epochs, so they are made once. */
    double *x = malloc(local_rows * d * sizeof(double));
    double *y = malloc(local_rows * O * sizeof(double));
    size_t *shard_at = malloc(nbatch * sizeof(size_t));
    size_t *shard_rows = malloc(nbatch * sizeof(size_t));
    double *shard_weight = malloc(nbatch * sizeof(double));
    if (!x || !y || !shard_at || !shard_rows || !shard_weight)
        dist_die("out of memory for %zu local examples", local_rows);
    for (size_t b = 0, at = 0; b < nbatch; b++) {
        size_t first, count, off, rows;
        problem_batch(&p, b, &first, &count);
        problem_shard(&p, count, dist_rank, dist_size, &off, &rows);
        problem_inputs(&p, PROBLEM_TRAIN, first + off, rows, x + at * d);
        problem_targets(&p, x + at * d, rows, y + at * O);
        shard_at[b] = at;
        shard_rows[b] = rows;
        shard_weight[b] = (double)rows / (double)count;
        at += rows;
    }

    tn_ctx *ctx;
    if (tn_ctx_create(&ctx) != TN_OK) dist_die("tn_ctx_create failed");
    DIST_CK(ctx, tn_ctx_set_threads(ctx, p.threads));
    tn_net *net0;
    DIST_CK(ctx, problem_net(ctx, &p, &net0));
    const size_t P = tn_net_num_params(net0);
    dist_say("train_mpi: %d ranks, %zu examples in batches of %zu (%zu steps per epoch, %d "
             "epochs), %s shards; MLP %zu x %zu, %zu parameters; all-reduce of %zu doubles "
             "per step\n", dist_size, p.n, p.batch, nbatch, p.epochs,
             p.uneven ? "uneven" : "equal", p.depth, p.width, P, P + 1);

    allreduce ar = {0, malloc((P + 1) * sizeof(double)), 0};
    double *theta = malloc(P * sizeof(double)), *losses = malloc(steps * sizeof(double));
    if (!ar.buf || !theta || !losses) dist_die("out of memory for %zu parameters", P);
    double *ybad = NULL;

    for (int m = 0; m < p.nmodes; m++) {
        const problem_mode *md = &p.modes[m];
        tn_net *net;
        tn_trainer *tr;
        DIST_CK(ctx, tn_net_clone(net0, &net));
        DIST_CK(ctx, problem_trainer(&p, md, net, &tr));
        DIST_CK(ctx, tn_trainer_set_gradient_hook(tr, average_over_ranks, &ar));
        ar.seconds = 0;
        double cpu = dist_cpu_seconds();
        dist_progress prog;
        char what[64];
        snprintf(what, sizeof what, "mode %s", md->name);
        dist_progress_start(&prog, what);
        size_t s = 0;
        for (int e = 0; e < p.epochs; e++)
            for (size_t b = 0; b < nbatch; b++, s++) {
                const double *xs = x + shard_at[b] * d, *ys = y + shard_at[b] * O;
                size_t rows = shard_rows[b];
                if (p.inject && dist_rank == p.inject_rank && (int)s + 1 == p.inject_step) {
                    if (p.inject == 1) {        /* one NaN target in this rank's shard */
                        ybad = realloc(ybad, rows * O * sizeof(double));
                        memcpy(ybad, ys, rows * O * sizeof(double));
                        ybad[0] = NAN;
                        ys = ybad;
                    } else {                    /* a call that fails on this rank only */
                        rows = 0;
                    }
                }
                ar.weight = shard_weight[b];
                const tn_status st = tn_trainer_step(tr, xs, ys, rows, &losses[s]);
                if (st == TN_E_NUMERIC)
                    /* After the hook: every rank holds the same sum, so every
                     * rank fails here, at the same step. */
                    dist_fail_all("train_mpi: mode %s, step %zu failed on every rank: %s",
                                  md->name, s + 1, tn_ctx_errmsg(ctx));
                if (st != TN_OK)
                    dist_die("mode %s, step %zu: tn_trainer_step failed (%s): %s", md->name,
                             s + 1, tn_status_string(st), tn_ctx_errmsg(ctx));
                dist_progress_update(&prog, (double)(s + 1) / (double)steps);
            }
        const double seconds = MPI_Wtime() - prog.start;
        cpu = dist_cpu_seconds() - cpu;
        MPI_Allreduce(MPI_IN_PLACE, &cpu, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);

        /* The replicas must be identical: compare fingerprints. */
        DIST_CK(ctx, tn_net_get_params(net, theta, P));
        const uint64_t fp = fingerprint(theta, P);
        unsigned long long lo = fp, hi = fp;
        MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
        if (lo != hi)
            dist_fail_all("train_mpi: mode %s: the replicas' parameters differ after training "
                          "(the all-reduce did not give every rank the same sum)", md->name);

        /* The training loss over all examples: each rank's rows, weighted. */
        double part[2] = {0, (double)local_rows}, lsum;
        DIST_CK(ctx, tn_trainer_loss(tr, x, y, local_rows, &lsum));
        part[0] = lsum * (double)local_rows;
        MPI_Allreduce(MPI_IN_PLACE, part, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double comm = ar.seconds;
        MPI_Allreduce(MPI_IN_PLACE, &comm, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        dist_say("%-14s %zu steps in %.2f s (%.2f ms/step, all ranks %.2f CPU ms/step, in the "
                 "all-reduce %.0f%%, waiting included); loss %.6g -> %.6g, train loss %.6g; "
                 "replicas identical\n", md->name, steps, seconds, 1e3 * seconds / steps,
                 1e3 * cpu / steps, 100 * comm / seconds, losses[0], losses[steps - 1],
                 part[0] / part[1]);
        if (p.out && dist_rank == 0) {
            char name[64];
            snprintf(name, sizeof name, "train_%d_theta.bin", m);
            write_doubles(&p, name, theta, P);
            snprintf(name, sizeof name, "train_%d_loss.bin", m);
            write_doubles(&p, name, losses, steps);
        }
        tn_trainer_free(tr);
        tn_net_free(net);
    }
    if (p.out) dist_say("train_mpi: parameters and losses written to %s\n", p.out);
    free(ar.buf), free(theta), free(losses), free(ybad);
    free(x), free(y), free(shard_at), free(shard_rows), free(shard_weight);
    tn_net_free(net0);
    tn_ctx_free(ctx);
    MPI_Finalize();
    return 0;
}
