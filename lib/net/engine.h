/*
 * engine.h -- the one Taylor engine: forward and reverse over a graph of
 * nodes (graph.h), dispatched through the kind table.
 *
 * A tape holds one pass's coefficient blocks for one (batch, order).  Its
 * memory is planned by lifetime: a node's blocks live until their last
 * reader (to the end of the pass when a reader's reverse needs them), a
 * node works in place only where its input has no other reader, and a node
 * read by several layers receives the sum of their cotangents.  The degree
 * of every node (the highest order that can be nonzero) is tracked, so work
 * on blocks that are identically zero (the network input above order 0, a
 * ReLU net's layers above their depth) is never done.
 *
 * The engine takes what it needs -- the graph, the context (threads,
 * messages, allocation) -- and knows nothing of the network handle.
 */
#ifndef TNI_ENGINE_H
#define TNI_ENGINE_H

#include "graph.h"

typedef struct tni_tape tni_tape;

/* A tape for graph g (which must outlive it). */
tn_status tni_tape_create(tn_ctx *ctx, const tni_graph *g, tni_tape **out);
void tni_tape_free(tni_tape *tp);
/* Doubles a tape needs for (batch, order, flags, sets); 0 if that overflows. */
size_t tni_tape_doubles(const tni_graph *g, size_t batch, size_t order, unsigned flags,
                        size_t sets);

/* Taylor forward at base theta0 along delta (NULL iff order 0) for `batch`
 * rows of x.  x must stay alive and unchanged until tni_engine_reverse. */
tn_status tni_engine_forward(tni_tape *tp, const double *theta0, const double *delta, size_t order,
                             const double *x, size_t batch, unsigned flags);
/* The last forward's output coefficients: blocks 0..*deg of batch x O. */
const double *tni_engine_output(const tni_tape *tp, size_t *deg);
/* y = sum_{j=deg..first} z_j (highest order first) of the last forward;
 * zero when first > deg.  first = 0 gives the model output, first = 1 the
 * output minus f(theta0). */
void tni_engine_output_sum(const tni_tape *tp, size_t first, double *y);

/* Reverse through the last forward.  cot: batch x O, the cotangent of the
 * model output, applied to every order (the model is sum_j z_j).  grad (P)
 * is overwritten with the gradient of <cot, model> with respect to theta at
 * order 0, and to Delta at order >= 1 (the same thing: d f_k / d theta), or
 * added into when accumulate is 1.  At order >= 1 the order-0 cotangents are
 * never formed: z_0 does not depend on Delta, and the adjoint of an order-0
 * block only ever flows into other order-0 blocks. */
tn_status tni_engine_reverse(tni_tape *tp, const double *theta0, const double *delta,
                             const double *cot, double *grad, int accumulate);

/* The NTK's cotangent sweep, after an order-0 forward of `batch` rows: the
 * same reverse, pushing `sets` cotangent sets at once (cot: (sets batch) x
 * O, set-major: row (s, i)) without forming gradients.  Before a node with
 * parameters is reversed, visit sees its input (batch x in, the forward's
 * order-0 block) and its output cotangents ((sets batch) x size, set-major). */
typedef void (*tni_node_visit_fn)(void *user, size_t node, const double *input,
                                  const double *cot_out, size_t sets);
tn_status tni_engine_sweep(tni_tape *tp, const double *theta, const double *cot, size_t sets,
                           tni_node_visit_fn visit, void *user);

/* The on/off state of every rectifier unit in the last forward, one byte
 * each, node by node, row-major within a node; returns how many there are
 * (bits NULL: only count). */
size_t tni_engine_pattern(const tni_tape *tp, unsigned char *bits);

#endif
