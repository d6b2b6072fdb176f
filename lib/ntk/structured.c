/* structured.c -- the parts of an NTK tile pair formed by Gram products: each
 * such node's kind adds its structured form (graph.h), never a Jacobian. */
#include "features.h"

size_t tni_structured_tmp_doubles(const tni_ntk_plan *plan, const tni_graph *g, size_t a,
                                  size_t b, size_t O, int full)
{
    size_t most = 0;
    for (size_t m = 0; m < plan->count; m++) {
        if (!plan->gram[m]) continue;
        const tni_node *n = &g->nodes[plan->id[m]];
        const size_t t = tni_kind_of(n)->gram_tmp_doubles(n, tni_input_shape(g, n, 0), a, b, O, full);
        if (t > most) most = t;
    }
    return most;
}

void tni_structured_block(int threads, const tni_ntk_plan *plan, const tni_graph *g, size_t O,
                          int full, const tni_features *A, const tni_features *B, int diag,
                          double *K, size_t ldk, double *tmp)
{
    for (size_t m = 0; m < plan->count; m++) {
        if (!plan->gram[m]) continue;
        const tni_node *n = &g->nodes[plan->id[m]];
        const tni_ntk_pair p = {threads, O,         full,      diag, A->rows, B->rows,
                                A->X[m], B->X[m],   A->G[m],   B->G[m], K,  ldk,
                                tmp};
        tni_kind_of(n)->gram(n, tni_input_shape(g, n, 0), &p);
    }
}
