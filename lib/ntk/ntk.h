/*
 * ntk.h -- the empirical neural tangent kernel (MATH.md §5, §9).
 *
 * Every node with parameters contributes its parameters' part of
 * Theta_{ic,jd} = sum_p d f_c(x_i) / d theta_p  d f_d(x_j) / d theta_p, formed
 * from per-example gradient factors: the node's input (the forward's order-0
 * block) and the cotangents of its output for each network output c (the
 * cotangent sweep, one reverse carrying all O one-hot sets at once).  Each
 * node's part is formed one of two ways, chosen per node by a cost model:
 *   Gram products    the kind's structured form (a dense layer:
 *                    (w^2 <x_i, x_j> + b^2) <g_i^c, g_j^d>), never a Jacobian;
 *   Jacobian         the node's columns of the per-example Jacobian, then
 *                    one GEMM (or SYRK) over all such nodes at once.
 * Both run over tiles of x1 x x2 sized to the memory budget.
 * VECTOR_PRODUCTS needs no factors: one VJP (a gradient) and one JVP over
 * x1 per column (j, d).
 */
#ifndef TNI_NTK_H
#define TNI_NTK_H

#include "../net/net.h"

/* Per-example gradient factors of a tile of examples (features.c): for
 * each node formed by Gram products its input X and output cotangents G,
 * for the others their columns of the Jacobian J. */
typedef struct tni_features {
    size_t rows;                /* examples held */
    double **X, **G;            /* per plan node (Gram nodes only): rows x in, (rows O) x size */
    double *J;                  /* (rows O) x plan->cols, row (i, c) */
    double *store;
    size_t cap, nodes;          /* doubles of store, entries of X and G */
} tni_features;

struct tn_ntk {
    uint32_t magic;
    tn_ctx *ctx;
    tn_net *net;
    int method;                 /* TN_NTK_AUTO, ... */
    int full;                   /* TN_NTK_FULL */
    size_t budget;              /* bytes of workspace */
    /* The workspace, kept from one call to the next (within the budget;
     * freed when the budget changes and by tn_ntk_free): a kernel computed
     * again, or a prediction's kernels one after another, would otherwise
     * fault in every page of it again, serially in the kernel. */
    tni_tape *tape;
    tni_features sets[2];       /* the x1 tile's factors, the x2 tile's */
    double *tmp;                /* the Gram products' temporaries */
    size_t tmp_cap;
};

/* Frees the kept workspace (the tape stays). */
void tni_ntk_release_work(tn_ntk *k);

/* The nodes with parameters, in order, and how each one's part is formed. */
typedef struct tni_ntk_plan {
    size_t count;
    size_t *id;                 /* graph node ids */
    unsigned char *gram;        /* 1: Gram products, 0: Jacobian columns */
    size_t *col;                /* Jacobian nodes: first column in J */
    size_t cols;                /* J's columns: the Jacobian nodes' parameters */
} tni_ntk_plan;

tn_status tni_ntk_plan_make(tn_ctx *ctx, const tni_graph *g, tni_ntk_plan *plan);
void tni_ntk_plan_free(tni_ntk_plan *plan);
/* Routes every node: method TN_NTK_STRUCTURED (Gram where the kind has it),
 * TN_NTK_JACOBIAN (none), or TN_NTK_AUTO (the cheaper per node for `pairs`
 * example pairs and `rows` examples whose factors are formed). */
void tni_ntk_plan_route(tni_ntk_plan *plan, const tni_graph *g, int method, size_t O, int full,
                        double pairs, double rows);

/* The method AUTO resolves to for these sizes (documented cost model):
 * TN_NTK_STRUCTURED when the tiled method with the cheaper form per node is
 * chosen (whichever forms that is: all Gram, all Jacobian, or mixed),
 * TN_NTK_VECTOR_PRODUCTS otherwise.  flops[m] receives the estimate of each
 * method m (flops[TN_NTK_AUTO] the chosen one's); gram_nodes, if not NULL,
 * the number of nodes AUTO forms by Gram products (of plan count nodes). */
int tni_ntk_choose(const tn_ntk *k, size_t n1, size_t n2, int symmetric, double flops[4],
                   size_t *gram_nodes, size_t *nodes);

tn_status tni_ntk_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2, size_t n2,
                          double *K);

/* The empirical NNGP and NTK averaged over `samples` initializations of a
 * copy of k's network, sample s drawn with seed + s (monte_carlo.c);
 * either output may be NULL, not both.  NaN on failure. */
tn_status tni_ntk_monte_carlo(tn_ntk *k, uint64_t seed, size_t samples, const double *x1,
                              size_t n1, const double *x2, size_t n2, double *nngp, double *ntk);

/* VECTOR_PRODUCTS (vector_products.c): column (j, d) from the gradient v of
 * f_d(x_j) and the JVP J(x1) v, rows_per_jvp rows of x1 per pass; v holds P
 * doubles and cot O. */
tn_status tni_vp_compute(tn_ntk *k, const double *x1, size_t n1, const double *x2, size_t n2,
                         int symmetric, double *K, size_t rows_per_jvp, double *v, double *cot);

#endif
