/*
 * net.h -- the network handle: its graph of nodes (graph.h) under
 * construction, the build cursor, the settings and the parameters; plain
 * forward / JVP / VJP through the engine (engine.h).
 */
#ifndef TNI_NET_H
#define TNI_NET_H

#include "engine.h"

struct tn_net {
    uint32_t magic;
    tn_ctx *ctx;
    int parameterization;           /* TN_PARAM_NTK or TN_PARAM_STANDARD */
    double sigma_w, sigma_b, leaky_slope;
    int sigma_w_set;                /* 0: default resolved from the activations */
    tni_node *nodes;                /* node 0 is the input */
    size_t nnodes, cap_nodes;
    size_t current;                 /* the node the next layer reads */
    size_t nparams;
    int initialized;
    double *theta;
    tni_graph graph;                /* what the engine sees, once initialized */
    tni_tape *tape;                 /* workspace of tn_net_forward / jvp / vjp */
};

/* --- building (net.c) --------------------------------------------------- */
tn_status tni_net_new(tn_ctx *ctx, const size_t *shape, size_t ndim, tn_net **out);
/* Appends a node of `kind` reading `inputs` with attribute words `attrs`
 * (the kind's own), checked by the kind; it becomes the current node.  On
 * failure nothing changes.  fn names the public call in messages. */
tn_status tni_net_add(tn_net *net, tni_kind kind, const size_t *inputs, size_t ninputs,
                      const uint64_t *attrs, size_t nattrs, const char *fn);
/* The two halves of tni_net_add: the node checked by its kind (no
 * allocation: a failure is about the arguments), then appended. */
tn_status tni_net_node(const tn_net *net, tni_kind kind, const size_t *inputs, size_t ninputs,
                       const uint64_t *attrs, size_t nattrs, const char *fn, tni_node *n);
tn_status tni_net_push(tn_net *net, const tni_node *n, const char *fn);
/* Fixes the network: the current node becomes the output, every node must
 * lead to it, and the kinds derive their scales from the settings.  Called by
 * init and load. */
tn_status tni_net_finish(tn_net *net, const char *fn);
double tni_net_sigma_w(const tn_net *net);          /* default resolved */
tni_settings tni_net_settings(const tn_net *net);
tn_status tni_net_clone(const tn_net *net, tn_net **out);
void tni_net_delete(tn_net *net);
/* Values per example of the output (the current node before init), of the
 * input, and the number of parameters. */
size_t tni_net_output_dim(const tn_net *net);
size_t tni_net_input_size(const tn_net *net);
size_t tni_net_num_params(const tn_net *net);
/* What other modules may read or change of a net. */
tn_ctx *tni_net_ctx(const tn_net *net);
const double *tni_net_theta(const tn_net *net);
const tni_graph *tni_net_graph(const tn_net *net);  /* initialized nets */
/* Exchanges the net's parameter array with *theta (same length P): commits
 * a prepared update without a copy; *theta receives the old one. */
void tni_net_swap_theta(tn_net *net, double **theta);

/* Draws theta (init.c); refuses settings that make a parameter, or a
 * parameter times its layer's scale, not finite. */
tn_status tni_net_init_params(tn_net *net, uint64_t seed);
/* TN_OK if every parameter of theta, and each times its layer's scale
 * (resolved), is finite; else TN_E_INVALID_ARG with "<who>: layer ...". */
tn_status tni_net_check_params(const tn_net *net, const double *theta, const char *who);
/* Draws into theta (nparams doubles) exactly what tn_net_init(net, seed)
 * draws, without the checks. */
void tni_net_draw_params(const tn_net *net, uint64_t seed, double *theta);

/* Rows per engine pass for an evaluation of n rows at `order`: as many as
 * keep the workspace near 64 MiB (at least 1, at most n). */
size_t tni_net_chunk_rows(const tn_net *net, size_t order, size_t n);

/* Plain forward / JVP / VJP over any number of rows: processed in chunks so
 * memory stays bounded (api checks arguments first). */
tn_status tni_net_forward(tn_net *net, const double *x, size_t n, double *y);
tn_status tni_net_jvp(tn_net *net, const double *x, size_t n, const double *tangent, double *out);
tn_status tni_net_vjp(tn_net *net, const double *x, size_t n, const double *cot, double *grad);

#endif
