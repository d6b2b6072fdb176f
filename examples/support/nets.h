/*
 * nets.h -- the contexts and networks of the programs that build many
 * (compare and the sweeps train several models side by side, ntk_regression
 * sweeps the width): a network described by a spec, built in one call.  The
 * training examples build theirs call by call, in their own files.
 *
 * The architectures are those of the seed papers' experiments:
 *   mlp       input -> depth x (dense width, act) -> dense outputs
 *   cnn-thin  Bai et al. 2020's CNN-THIN: depth (4) convolutions 3x3 SAME of
 *             `width` channels, each followed by act, global average
 *             pooling (or, with flatten_readout, a flatten), dense outputs
 *   wrn       a small wide residual network (after Zagoruyko & Komodakis,
 *             and Bai et al.'s WRN-small): a 3x3 stem of `width` channels,
 *             then three groups of `depth` pre-activation blocks (act, conv
 *             3x3, act, conv 3x3, plus the shortcut) with width, 2 width and
 *             4 width channels at strides 1, 2, 2; a 1x1 convolution is the
 *             shortcut where the shape changes, the input itself elsewhere;
 *             act, global average pooling, dense outputs
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

typedef enum ex_arch { EX_ARCH_MLP = 0, EX_ARCH_CNN_THIN = 1, EX_ARCH_WRN = 2 } ex_arch;

typedef struct ex_net_spec {
    ex_arch arch;
    size_t input;           /* input features */
    size_t image[3];        /* the input as {H, W, C} (conv architectures), H W C = input */
    size_t width;           /* units per hidden layer (mlp), channels (cnn-thin, wrn's first group) */
    size_t depth;           /* hidden layers (mlp), convolutions (cnn-thin), blocks per group (wrn) */
    size_t outputs;
    tn_activation act;
    int parameterization;   /* TN_PARAM_NTK or TN_PARAM_STANDARD */
    double sigma_w;         /* <= 0: the library's default */
    double sigma_b;         /* < 0: the library's default */
    uint64_t seed;          /* for tn_net_init */
    int flatten_readout;    /* cnn-thin: 1 flattens the last convolution's pixels into the
                               readout instead of averaging them (0, the default) */
} ex_net_spec;

/** mlp 784 -> 512 -> 512 -> 10 (images 28 x 28 x 1), ReLU, standard
 *  parameterization, library default sigmas, seed 1. */
void ex_net_spec_default(ex_net_spec *spec);
/** The default width and depth of an architecture: mlp 512 x 2, cnn-thin 16
 *  channels x 4 convolutions, wrn 8 channels x 1 block per group (sized so
 *  compare trains each in minutes on two cores). */
void ex_arch_defaults(ex_arch arch, size_t *width, size_t *depth);
/** "mlp", "cnn-thin", "wrn"; exits on another name, listing these. */
ex_arch ex_arch_from_name(const char *name);
const char *ex_arch_name(ex_arch arch);
/** Creates and initializes the network of spec in ctx.  On failure *out is
 *  NULL, nothing leaks and the message is in ctx. */
tn_status ex_build_net(tn_ctx *ctx, const ex_net_spec *spec, tn_net **out);

#endif
