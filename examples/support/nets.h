/*
 * nets.h -- the contexts and networks of the programs that build many
 * (compare and the sweeps train several models side by side, ntk_regression
 * sweeps the width): a network described by a spec, built in one call.  The
 * training examples build theirs call by call, in their own files.
 *
 * An architecture is an entry of ex_arch and a case of ex_build_net: the
 * place for the convolutional and residual networks of compare --arch.
 *
 * Part of the examples, not of libtaylornet.
 */
#ifndef TN_EXAMPLES_NETS_H
#define TN_EXAMPLES_NETS_H

#include <stddef.h>
#include <stdint.h>

#include "taylornet.h"

/** A new context using `threads` BLAS threads; exits on failure. */
tn_ctx *ex_ctx_create(int threads);

typedef enum ex_arch {
    EX_ARCH_MLP = 0         /* hidden_layers x (dense of width units, act), dense readout */
} ex_arch;

typedef struct ex_net_spec {
    ex_arch arch;
    size_t input;           /* input features */
    size_t width;           /* units per hidden layer */
    size_t hidden_layers;   /* dense+activation pairs before the output layer */
    size_t outputs;
    tn_activation act;
    int parameterization;   /* TN_PARAM_NTK or TN_PARAM_STANDARD */
    double sigma_w;         /* <= 0: the library's default */
    double sigma_b;         /* < 0: the library's default */
    uint64_t seed;          /* for tn_net_init */
} ex_net_spec;

/** An MLP 784 -> 512 -> 512 -> 10, ReLU, standard parameterization,
 *  library default sigmas, seed 1. */
void ex_net_spec_default(ex_net_spec *spec);
/** Creates and initializes the network of spec in ctx.  On failure *out is
 *  NULL, nothing leaks and the message is in ctx. */
tn_status ex_build_net(tn_ctx *ctx, const ex_net_spec *spec, tn_net **out);

#endif
