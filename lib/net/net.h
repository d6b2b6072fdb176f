/*
 * net.h -- the network: its layer list, parameter layout and settings, and
 * the one Taylor engine that runs every computation over the layer list.
 *
 * Every layer implements two operations on truncated Taylor series (normalized
 * coefficient blocks, docs/math.md §3):
 *   forward: input coefficients x_0..x_din  ->  output coefficients z_0..z_dout
 *   reverse: output cotangents on every order -> input cotangents and the
 *            gradient of the layer's parameters.
 * Order 0 is plain forward and VJP; order 1 gives the JVP; order k the
 * Taylor model f_k(theta0 + Delta) = sum_j z_j^(L).  The degree of each block
 * list (the highest order that can be nonzero) is tracked, so work on blocks
 * that are identically zero (the network input above order 0, ReLU layers
 * above their depth) is never done.
 */
#ifndef TNI_NET_H
#define TNI_NET_H

#include "../core/core.h"

typedef enum {
    TNI_LAYER_DENSE = 1,
    TNI_LAYER_ACTIVATION = 2
} tni_layer_kind;

typedef struct tni_layer {
    tni_layer_kind kind;
    size_t in_size, out_size;       /* values per example */
    size_t offset, count;           /* this layer's slice of theta */
    tn_activation act;              /* TNI_LAYER_ACTIVATION */
    double w_scale, b_scale;        /* dense: W = w_scale * theta_W, b = b_scale * theta_b */
    double slope;                   /* leaky ReLU: the slope for z < 0 */
} tni_layer;

struct tni_tape;

struct tn_net {
    uint32_t magic;
    tn_ctx *ctx;
    size_t input_shape[3];
    size_t input_ndim, input_size;
    int parameterization;           /* TN_PARAM_NTK or TN_PARAM_STANDARD */
    double sigma_w, sigma_b, leaky_slope;
    int sigma_w_set;                /* 0: default resolved from the activations */
    tni_layer *layers;
    size_t nlayers, cap_layers;
    size_t nparams;
    int initialized;
    double *theta;
    struct tni_tape *tape;          /* workspace of tn_net_forward / jvp / vjp */
};

/* --- network (net.c) ---------------------------------------------------- */
tn_status tni_net_new(tn_ctx *ctx, const size_t *shape, size_t ndim, tn_net **out);
tn_status tni_net_append(tn_net *net, tni_layer_kind kind, size_t width, tn_activation act);
double tni_net_sigma_w(const tn_net *net);          /* default resolved */
/* Fixes the per-layer scales from the settings; called by init and load. */
void tni_net_resolve_scales(tn_net *net);
tn_status tni_net_clone(const tn_net *net, tn_net **out);
void tni_net_delete(tn_net *net);
size_t tni_net_output_dim(const tn_net *net);
size_t tni_net_max_width(const tn_net *net);        /* largest per-example layer size */
/* What other modules may read or change of a net. */
tn_ctx *tni_net_ctx(const tn_net *net);
const double *tni_net_theta(const tn_net *net);
/* Exchanges the net's parameter array with *theta (same length P): commits
 * a prepared update without a copy; *theta receives the old one. */
void tni_net_swap_theta(tn_net *net, double **theta);

/* Draws theta (init.c). */
tn_status tni_net_init_params(tn_net *net, uint64_t seed);

/* Rows per engine pass for an evaluation of n rows at `order`: as many as
 * keep the workspace near 64 MiB (at least 1, at most n). */
size_t tni_net_chunk_rows(const tn_net *net, size_t order, size_t n);

/* Plain forward / JVP / VJP over any number of rows: processed in chunks so
 * memory stays bounded (api checks arguments first). */
tn_status tni_net_forward(tn_net *net, const double *x, size_t n, double *y);
tn_status tni_net_jvp(tn_net *net, const double *x, size_t n, const double *tangent, double *out);
tn_status tni_net_vjp(tn_net *net, const double *x, size_t n, const double *cot, double *grad);

/* --- the Taylor engine (engine.c) ---------------------------------------- */

typedef struct tni_tape tni_tape;

tn_status tni_tape_create(tn_ctx *ctx, const tn_net *net, tni_tape **out);
/* Doubles a tape needs for (batch, order, flags); 0 if that overflows. */
size_t tni_tape_doubles(const tn_net *net, size_t batch, size_t order, unsigned flags);
void tni_tape_free(tni_tape *tp);

/* Flags of tni_engine_forward. */
enum {
    /* Keep what is needed to skip the order-0 work next time (each
     * activation's input z_0): costs one block copy per activation. */
    TNI_KEEP_BASE = 1u,
    /* The tape's order-0 blocks are current for this (theta0, x, batch,
     * order): the last forward on this tape had the same ones and
     * TNI_KEEP_BASE.  Skips the GEMMs W0 x_0 of every layer.  The caller
     * vouches for it (taylor/expansion.c checks the batch byte for byte). */
    TNI_BASE_CACHED = 2u
};

/* Taylor forward at base theta0 along delta (NULL iff order 0) for `batch`
 * rows of x.  x must stay alive and unchanged until tni_engine_reverse,
 * which reads the first layer's input. */
tn_status tni_engine_forward(const tn_net *net, tni_tape *tp, const double *theta0,
                             const double *delta, size_t order, const double *x, size_t batch,
                             unsigned flags);
/* The last forward's output coefficients: blocks 0..*deg of batch x O. */
const double *tni_engine_output(const tni_tape *tp, size_t *deg);
/* y = sum_{j=deg..first} z_j (highest order first) of the last forward;
 * zero when first > deg.  first = 0 gives the model output, first = 1 the
 * output minus f(theta0). */
void tni_engine_output_sum(const tni_tape *tp, size_t first, double *y);
/* Reverse through the last forward.  cot: batch x O, the cotangent of the
 * model output, applied to every order (the model is sum_j z_j).  grad (P)
 * is overwritten with the gradient of <cot, model> with respect to theta at
 * order 0, and to Delta at order >= 1 (the same thing: d f_k / d theta).
 * At order >= 1 the order-0 cotangents are never formed: z_0 does not
 * depend on Delta, and the adjoint of an order-0 block only ever flows into
 * other order-0 blocks (xbar_0 = W0^T zbar_0 + dW^T zbar_1 feeds nothing
 * that a Delta-gradient reads), so skipping them saves a GEMM per layer. */
tn_status tni_engine_reverse(const tn_net *net, tni_tape *tp, const double *theta0,
                             const double *delta, const double *cot, double *grad,
                             int accumulate);   /* 1: grad += instead of = */

/* Cotangent sweep, after an order-0 forward of `batch` rows: pushes `sets`
 * cotangent sets at once (cot: (sets batch) x O, set-major: row (s, i))
 * through reverse mode without forming parameter gradients, and shows every
 * layer with parameters its input (batch x in, the forward's order-0 block)
 * and the cotangent of its output ((sets batch) x out, set-major) -- the
 * per-layer factors of per-example gradients, from which the NTK's Gram
 * products and Jacobians are built.  work: 2 (sets batch) max_width doubles. */
typedef void (*tni_layer_visit_fn)(void *user, size_t layer, const tni_layer *L,
                                   const double *input, const double *cot_out, size_t sets);
tn_status tni_engine_cotangent_sweep(const tn_net *net, tni_tape *tp, const double *theta,
                                     const double *cot, size_t sets, double *work,
                                     tni_layer_visit_fn visit, void *user);

/* The on/off state (z_0 > 0) of every ReLU-family unit in the last forward,
 * one byte each, layer by layer, row-major within a layer; returns how
 * many there are (bits NULL: only count). */
size_t tni_engine_relu_pattern(const tn_net *net, const tni_tape *tp, unsigned char *bits);

/* --- layers (dense.c, activation.c) -------------------------------------- */

/* What a layer's forward or reverse sees.  Blocks are batch * size values
 * each, contiguous, order-major. */
typedef struct tni_layer_io {
    int threads;
    size_t batch, order;
    const double *theta0, *delta;   /* this layer's slices; delta NULL at order 0 */
    const double *in;               /* input blocks 0..din */
    size_t din;
    double *out;                    /* output blocks 0..dout (== in for in-place layers) */
    size_t dout;
    double *series;                 /* what forward saves for reverse */
    double *base;                   /* in-place layers: saved order-0 input, or NULL */
    unsigned flags;                 /* TNI_KEEP_BASE, TNI_BASE_CACHED */
    size_t lo;                      /* reverse: lowest order whose cotangent matters */
    double *scratch;
    double *cot_out;                /* reverse: output cotangents, blocks 0..dout */
    double *cot_in;                 /* reverse: input cotangents to write, or NULL */
    double *grad;                   /* reverse: this layer's gradient slice */
    double grad_beta;               /* 0: overwrite grad, 1: accumulate into it */
} tni_layer_io;

typedef struct tni_layer_ops {
    int in_place;                   /* output overwrites the input blocks */
    size_t (*out_degree)(const tni_layer *L, size_t din, size_t order);
    size_t (*series_blocks)(const tni_layer *L, size_t order);   /* per batch*out_size */
    void (*forward)(const tni_layer *L, tni_layer_io *io);
    void (*reverse)(const tni_layer *L, tni_layer_io *io);
    /* Order-0 input cotangents only, for io->batch rows per set and `sets`
     * sets stacked set-major (the saved series broadcast over the sets). */
    void (*sweep)(const tni_layer *L, tni_layer_io *io, size_t sets);
} tni_layer_ops;

extern const tni_layer_ops tni_dense_ops;
extern const tni_layer_ops tni_activation_ops;
const tni_layer_ops *tni_layer_ops_of(const tni_layer *L);

#endif
