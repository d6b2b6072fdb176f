/**
 * @file taylornet.h
 * taylornet.h -- train neural networks and their Taylor expansions, compute
 * neural tangent kernels.  The one public header of libtaylornet.
 *
 * Conventions that hold for every function below (the full list is in
 * docs/conventions.md; the mathematics in docs/math.md):
 *
 *   - Every function that can fail returns a tn_status.  On failure it
 *     changes nothing the caller can see: no half-updated parameters, no
 *     partial outputs presented as valid.  The context the handle was made
 *     from keeps a human-readable message, read with tn_ctx_errmsg().
 *     A NULL handle returns TN_E_INVALID_ARG (there is no context to hold a
 *     message); a handle of the wrong type, or one already freed, may be
 *     detected and then returns TN_E_MISUSE.  Nothing aborts on caller error.
 *   - Arrays are caller-owned, contiguous, row-major double.  Inputs are
 *     n x input_size (one example per row; images NHWC, flattened), outputs
 *     n x output_dim.  The library never keeps a caller pointer after a call
 *     returns.  Sizes are size_t.
 *   - Parameters are one flat vector theta of length tn_net_num_params():
 *     for each layer in order, its weights (a dense weight is out x in,
 *     row-major, like PyTorch's Linear.weight) then its bias.
 *   - Threads: one tn_ctx per thread.  Handles made from a context are used
 *     by one thread at a time; distinct contexts share nothing mutable.  The
 *     library has no global mutable state.
 *   - Freeing NULL is a no-op.
 *
 * All enums have explicit values; they are part of the ABI and never change.
 */
#ifndef TAYLORNET_H
#define TAYLORNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** TN_API marks the exported functions.  The library is built with hidden
 *  visibility, so everything else stays private. */
#if defined(_WIN32) && defined(TN_BUILDING)
#  define TN_API __declspec(dllexport)
#elif defined(_WIN32)
#  define TN_API __declspec(dllimport)
#elif defined(TN_BUILDING) && defined(__GNUC__)
#  define TN_API __attribute__((visibility("default")))
#else
#  define TN_API
#endif

/*=====================================================================
 * Version and status
 *===================================================================*/

/** The version this header describes (compare with tn_version_number()). */
#define TN_VERSION_MAJOR 0 /**< major version: the soname's number */
#define TN_VERSION_MINOR 1 /**< minor version: additions */
#define TN_VERSION_PATCH 0 /**< patch version: fixes */
/** major * 10000 + minor * 100 + patch */
#define TN_VERSION_NUMBER (TN_VERSION_MAJOR * 10000 + TN_VERSION_MINOR * 100 + TN_VERSION_PATCH)

/** The version of the library actually loaded, as TN_VERSION_NUMBER. */
TN_API unsigned tn_version_number(void);
/** The same as a string, "0.1.0".  Static, never NULL. */
TN_API const char *tn_version_string(void);
/** Which BLAS the library's matrix products run on, for logs and benchmark
 *  headers: "BLIS 0.9.0, skx kernels (AVX-512)".  The library carries its
 *  own copy of BLIS (unless built with -Dblis=shared) and picks, once per
 *  process, the best kernel set that BLIS has for the CPU, or the one the
 *  environment variable TAYLORNET_KERNELS names (auto, generic, haswell,
 *  zen3, skx, ...; docs/guide/performance.md); a value it cannot honour is
 *  named in the text ("TAYLORNET_KERNELS=... refused") and reported by
 *  tn_ctx_create.  The BLIS a host program uses is never affected.  Static,
 *  never NULL, thread-safe. */
TN_API const char *tn_blas_info(void);

/** What every fallible function returns; TN_OK is 0. */
typedef enum tn_status {
    TN_OK = 0,
    TN_E_INVALID_ARG = 1,   /**< NULL where a pointer is required, a value out of range */
    TN_E_SHAPE = 2,         /**< a length that does not match the handle's sizes */
    TN_E_NOMEM = 3,         /**< allocation failed, or a workspace size overflows (an argument
                               whose size overflows is TN_E_INVALID_ARG) */
    TN_E_STATE = 4,         /**< a call in the wrong order (e.g. forward before init) */
    TN_E_NUMERIC = 5,       /**< a loss or gradient that is not finite */
    TN_E_IO = 6,            /**< a file could not be opened, read or written */
    TN_E_FORMAT = 7,        /**< a file that is not a taylornet file, truncated or corrupted */
    TN_E_VERSION = 8,       /**< a file written by a newer format version */
    TN_E_UNSUPPORTED = 9,   /**< a valid request this build or layer type cannot serve */
    TN_E_MISUSE = 10,       /**< a handle of the wrong type, or already freed */
    TN_E_CANCELLED = 11     /**< the progress callback asked to stop */
} tn_status;

/** A short description of a status ("invalid argument").  Static text, never
 *  NULL; unknown values give "unknown status". */
TN_API const char *tn_status_string(tn_status s);

/*=====================================================================
 * Context
 *
 * A context holds what is per-thread: the BLAS thread count and the last
 * error message.  Every other handle is made from one, directly or through
 * a network, and reports its errors there.
 *===================================================================*/

/** A context: per-thread settings and the last error message. */
typedef struct tn_ctx tn_ctx;

/** Creates a context.  *out is set to NULL on failure, except when the
 *  environment variable TAYLORNET_KERNELS names a kernel set the library
 *  cannot use (tn_blas_info): then *out is a working context (on the
 *  automatic kernel choice) whose tn_ctx_errmsg says what was wrong, and
 *  the caller frees it, as with sqlite3_open.
 *  Errors: TN_E_INVALID_ARG (out NULL; TAYLORNET_KERNELS not a kernel set
 *  name), TN_E_UNSUPPORTED (TAYLORNET_KERNELS names a set this BLIS or CPU
 *  lacks), TN_E_NOMEM. */
TN_API tn_status tn_ctx_create(tn_ctx **out);
/** Frees a context.  Every handle made from it must be freed first. */
TN_API void tn_ctx_free(tn_ctx *ctx);
/** The message of the last failure of any handle of ctx ("" if none yet).
 *  Successful calls leave it unchanged.  Valid until the next failing call
 *  on ctx or tn_ctx_free.  For ctx NULL a static text, never NULL. */
TN_API const char *tn_ctx_errmsg(const tn_ctx *ctx);
/** Sets the number of threads the calls made through ctx may use (default
 *  1): their matrix products are cut into bands and their elementwise work
 *  into ranges, each run by a single-threaded BLIS call or loop on a pool of
 *  the calling thread's workers, which sleep when idle (so an oversubscribed
 *  machine degrades gracefully) and are joined when that thread exits or
 *  frees a context.  At most as many threads run as the process may
 *  use CPUs (its affinity mask, read at this call): 1024 on 2 cores runs as
 *  2.  BLIS's own threads and global settings are never touched, so
 *  contexts on different threads do not interfere.
 *  Errors: TN_E_INVALID_ARG (ctx NULL, n < 1 or n > 1024). */
TN_API tn_status tn_ctx_set_threads(tn_ctx *ctx, int n);
/** The thread count set by tn_ctx_set_threads (as given, before the bound
 *  by the CPUs); 0 for ctx NULL. */
TN_API int tn_ctx_get_threads(const tn_ctx *ctx);
/** Bytes the library has allocated through ctx (its handles and their
 *  workspaces; not BLIS's own packing buffers): now, and at the peak since
 *  creation or tn_ctx_reset_peak_memory.  Either pointer may be NULL.
 *  Errors: TN_E_INVALID_ARG (ctx NULL), TN_E_MISUSE. */
TN_API tn_status tn_ctx_get_memory(const tn_ctx *ctx, size_t *in_use, size_t *peak);
/** Restarts the peak of tn_ctx_get_memory at the bytes in use now.
 *  Errors: TN_E_INVALID_ARG (ctx NULL), TN_E_MISUSE. */
TN_API tn_status tn_ctx_reset_peak_memory(tn_ctx *ctx);
/** A progress callback: see tn_ctx_set_progress. */
typedef int (*tn_progress_fn)(void *user, double fraction_done);
/** Progress of long computations made through ctx (tn_ntk_compute,
 *  tn_ntk_analytic, tn_ntk_monte_carlo): fn(user, fraction_done) is
 *  called from the calling thread between units of work (tiles or kernel
 *  columns), with fraction_done rising to 1; returning nonzero cancels the
 *  computation, which then returns TN_E_CANCELLED.  The callback must not
 *  call the library with handles of the same context (it runs in the
 *  middle of a call on them); other contexts are fine.  fn NULL removes the
 *  callback.  Errors: TN_E_INVALID_ARG (ctx NULL), TN_E_MISUSE. */
TN_API tn_status tn_ctx_set_progress(tn_ctx *ctx, tn_progress_fn fn, void *user);

/*=====================================================================
 * Network
 *
 * Life cycle: tn_net_create -> tn_net_add_* and tn_net_set (any order) ->
 * tn_net_init (draws theta) -> forward / jvp / vjp / train / save.
 * Layers cannot be added and settings cannot change after tn_net_init.
 *
 * A network is a graph of nodes (MATH.md §9).  Node 0 is the input.  Every
 * tn_net_add_* appends one node that reads the *current* node and becomes
 * the current node, so a plain stack of layers reads as a list.
 * tn_net_branch makes an earlier node current (a second branch starts
 * there) and tn_net_add_sum joins two branches.  The network's output is the
 * current node when tn_net_init is called; every node must lead to it.
 * Parameters are laid out in the order in which their layers were added.
 * A residual block with a projection shortcut (stride s):
 *
 *     size_t in, main;
 *     tn_net_current(net, &in);
 *     tn_net_add_activation(net, TN_ACT_RELU);
 *     tn_net_add_conv2d(net, C, 3, 3, s, TN_PAD_SAME);
 *     tn_net_add_activation(net, TN_ACT_RELU);
 *     tn_net_add_conv2d(net, C, 3, 3, 1, TN_PAD_SAME);
 *     tn_net_current(net, &main);
 *     tn_net_branch(net, in);
 *     tn_net_add_conv2d(net, C, 1, 1, s, TN_PAD_SAME);
 *     tn_net_add_sum(net, main);
 *
 * An identity shortcut is tn_net_add_sum(net, in) right after the main branch.
 *===================================================================*/

/** A network: its layers, settings and parameters theta. */
typedef struct tn_net tn_net;

/** Elementwise activations. */
typedef enum tn_activation {
    TN_ACT_IDENTITY = 0,
    TN_ACT_RELU = 1,
    TN_ACT_LEAKY_RELU = 2,      /**< x > 0 ? x : slope * x, slope TN_NET_LEAKY_SLOPE */
    TN_ACT_TANH = 3,
    TN_ACT_SIGMOID = 4,
    TN_ACT_ERF = 5,
    TN_ACT_GELU = 6,            /**< exact: x * Phi(x) */
    TN_ACT_SOFTPLUS = 7         /**< log(1 + e^x) */
} tn_activation;

/** Network settings (tn_net_set, tn_net_get). */
typedef enum tn_net_param {
    TN_NET_PARAMETERIZATION = 100,  /**< TN_PARAM_NTK (default) or TN_PARAM_STANDARD */
    TN_NET_SIGMA_W = 101,           /**< sigma_w > 0; default sqrt(2) if the net has a ReLU-family
                                       activation, else 1 (resolved when read or at init) */
    TN_NET_SIGMA_B = 102,           /**< sigma_b >= 0; default 0.1 */
    TN_NET_LEAKY_SLOPE = 103        /**< slope of TN_ACT_LEAKY_RELU, finite, >= 0; default 0.01 */
} tn_net_param;

enum { TN_PARAM_NTK = 0, TN_PARAM_STANDARD = 1 };

/** Creates an empty network for inputs of the given shape: ndim 1 is {d},
 *  ndim 3 is {H, W, C} (NHWC; dense layers see it flattened).
 *  Errors: TN_E_INVALID_ARG (NULL argument, ndim not 1 or 3, a zero
 *  dimension), TN_E_NOMEM (allocation, or a size that overflows). */
TN_API tn_status tn_net_create(tn_ctx *ctx, const size_t *input_shape, size_t ndim, tn_net **out);
/** Appends a dense (fully connected) layer with `width` outputs.
 *  NTK parameterization: z = (sigma_w / sqrt(n_in)) w x + sigma_b b, with
 *  w, b ~ N(0, 1) in theta.  Standard: z = W x + b, W ~ N(0, sigma_w^2 / n_in),
 *  b ~ N(0, sigma_b^2).  Errors: TN_E_INVALID_ARG (width 0), TN_E_STATE
 *  (after tn_net_init), TN_E_NOMEM. */
TN_API tn_status tn_net_add_dense(tn_net *net, size_t width);
/** Appends an elementwise activation.  Errors: TN_E_INVALID_ARG (act out of
 *  range), TN_E_STATE (after tn_net_init), TN_E_NOMEM. */
TN_API tn_status tn_net_add_activation(tn_net *net, tn_activation act);
/** Window padding of convolutions and pooling (MATH.md §9).  VALID: output
 *  side floor((H - k) / s) + 1.  SAME: ceil(H / s), with max((H' - 1) s + k - H, 0)
 *  zeros in all, floor of half before and the rest after (TensorFlow / JAX). */
typedef enum tn_padding {
    TN_PAD_VALID = 0,
    TN_PAD_SAME = 1
} tn_padding;

/** Appends a 2-D convolution with `channels` output channels and a kh x kw
 *  kernel at `stride`, reading an image {H, W, C}; the output is {H', W',
 *  channels}.  Parameters: the kernel (channels x kh x kw x C, row-major),
 *  then the bias (channels); fan-in n = kh kw C.  NTK parameterization:
 *  z = (sigma_w / sqrt(n)) w * x + sigma_b b, w, b ~ N(0, 1); standard:
 *  W ~ N(0, sigma_w^2 / n), b ~ N(0, sigma_b^2).
 *  Errors: TN_E_INVALID_ARG (channels, kh, kw or stride 0, padding not a
 *  tn_padding), TN_E_SHAPE (the current node is not an image, or a kernel
 *  larger than the input with VALID padding), TN_E_STATE (after
 *  tn_net_init), TN_E_NOMEM (allocation, or a parameter count that overflows). */
TN_API tn_status tn_net_add_conv2d(tn_net *net, size_t channels, size_t kh, size_t kw,
                                   size_t stride, tn_padding padding);
/** Appends average pooling over kh x kw windows at `stride` of an image
 *  {H, W, C}, with padded zeros counted (each output is its window's sum over
 *  kh kw).  No parameters.  Errors as tn_net_add_conv2d. */
TN_API tn_status tn_net_add_avg_pool2d(tn_net *net, size_t kh, size_t kw, size_t stride,
                                       tn_padding padding);
/** Appends the mean over all pixels: {H, W, C} -> {C}.
 *  Errors: TN_E_SHAPE (not an image), TN_E_STATE, TN_E_NOMEM. */
TN_API tn_status tn_net_add_global_avg_pool(tn_net *net);
/** Appends a flatten: {H, W, C} -> {H W C}, the identity on the row-major
 *  NHWC layout (no copy); a flat input stays as it is.
 *  Errors: TN_E_STATE, TN_E_NOMEM. */
TN_API tn_status tn_net_add_flatten(tn_net *net);
/** The id of the current node: the one the next layer reads (0, the input,
 *  for a new network; the output after tn_net_init).
 *  Errors: TN_E_INVALID_ARG (NULL). */
TN_API tn_status tn_net_current(const tn_net *net, size_t *node);
/** Makes an earlier node current, so the next layer reads it: a second
 *  branch starts there.  Errors: TN_E_INVALID_ARG (no such node),
 *  TN_E_STATE (after tn_net_init). */
TN_API tn_status tn_net_branch(tn_net *net, size_t node);
/** Appends the sum of the current node and `node` (the same shape), which
 *  becomes current: where residual branches join.
 *  Errors: TN_E_INVALID_ARG (no such node), TN_E_SHAPE (the shapes differ),
 *  TN_E_STATE (after tn_net_init), TN_E_NOMEM. */
TN_API tn_status tn_net_add_sum(tn_net *net, size_t node);
/** The shape of the current node: *ndim (1 or 3) values written to shape,
 *  which must hold 3.  Errors: TN_E_INVALID_ARG (NULL). */
TN_API tn_status tn_net_output_shape(const tn_net *net, size_t *shape, size_t *ndim);
/** Sets a tn_net_param; only before tn_net_init.
 *  Errors: TN_E_INVALID_ARG (unknown p, value out of range), TN_E_STATE. */
TN_API tn_status tn_net_set(tn_net *net, tn_net_param p, double value);
/** Reads a tn_net_param (defaults resolved).  Errors: TN_E_INVALID_ARG. */
TN_API tn_status tn_net_get(const tn_net *net, tn_net_param p, double *value);
/** Draws theta from `seed` (may be called again to redraw).  The draw is
 *  bit-identical on every IEEE-754 platform: xoshiro256** seeded through
 *  splitmix64(seed), 53-bit uniforms, Marsaglia's polar method with a
 *  logarithm of plain arithmetic (docs/conventions.md).  Parameters are drawn
 *  in the flat order of theta.  The current node becomes the output.
 *  Errors: TN_E_STATE (no layers, no layer with parameters, or a node that
 *  does not lead to the output), TN_E_NOMEM. */
TN_API tn_status tn_net_init(tn_net *net, uint64_t seed);
/** The number of parameters P (known before init); 0 for NULL. */
TN_API size_t tn_net_num_params(const tn_net *net);
/** d, or H*W*C; 0 for NULL. */
TN_API size_t tn_net_input_size(const tn_net *net);
/** The input shape given to tn_net_create: *ndim (1 or 3) values written to
 *  shape, which must hold 3.  Errors: TN_E_INVALID_ARG. */
TN_API tn_status tn_net_input_shape(const tn_net *net, size_t *shape, size_t *ndim);
/** The number of outputs O per example: the size of the output node (of the
 *  current node before tn_net_init; the input size while the net has no
 *  layers); 0 for NULL. */
TN_API size_t tn_net_output_dim(const tn_net *net);
/** Copies theta (len must equal P).  Errors: TN_E_INVALID_ARG, TN_E_SHAPE,
 *  TN_E_STATE (before init). */
TN_API tn_status tn_net_get_params(const tn_net *net, double *theta, size_t len);
/** Replaces theta (len must equal P; every value finite).
 *  Errors: TN_E_INVALID_ARG (NULL, a value not finite), TN_E_SHAPE, TN_E_STATE. */
TN_API tn_status tn_net_set_params(tn_net *net, const double *theta, size_t len);
/** A deep copy, in the same context (an uninitialized net may be cloned:
 *  the copy is uninitialized too).  Errors: TN_E_INVALID_ARG, TN_E_NOMEM. */
TN_API tn_status tn_net_clone(const tn_net *net, tn_net **out);
/** y (n x O) = f(theta; x), x n x input_size.
 *  Errors: TN_E_INVALID_ARG (NULL, n 0), TN_E_STATE (before init), TN_E_NOMEM. */
TN_API tn_status tn_net_forward(tn_net *net, const double *x, size_t n, double *y);
/** out (n x O) = J(theta; x) tangent, tangent of length P: the
 *  Jacobian-vector product, the order-1 Taylor coefficient.  Errors as forward. */
TN_API tn_status tn_net_jvp(tn_net *net, const double *x, size_t n,
                            const double *tangent, double *out);
/** grad (P) = sum_i J(theta; x_i)^T cotangent_i, cotangent n x O: the
 *  vector-Jacobian product (no 1/n).  Errors as forward. */
TN_API tn_status tn_net_vjp(tn_net *net, const double *x, size_t n,
                            const double *cotangent, double *grad);
/** Writes the network (architecture, settings and theta) to `path` in the
 *  versioned binary format of docs/conventions.md, through a temporary file
 *  in the same directory renamed over `path`, so a crash never leaves a
 *  half-written file.  The file's mode is 0666 less the umask.  Errors: TN_E_INVALID_ARG, TN_E_STATE (before init),
 *  TN_E_IO, TN_E_NOMEM. */
TN_API tn_status tn_net_save(const tn_net *net, const char *path);
/** Reads a network written by tn_net_save into a new handle of ctx.
 *  Errors: TN_E_INVALID_ARG, TN_E_IO (cannot open or read), TN_E_FORMAT (not
 *  a taylornet file, truncated, corrupted: checksum mismatch or inconsistent
 *  fields), TN_E_VERSION (written by a newer format), TN_E_NOMEM. */
TN_API tn_status tn_net_load(tn_ctx *ctx, const char *path, tn_net **out);
/** Frees a network.  Trainers and other handles made from it must be freed first. */
TN_API void tn_net_free(tn_net *net);

/*=====================================================================
 * Taylor expansion
 *
 * The order-k Taylor model of the network around a base point theta0,
 *   f_k(theta; x) = sum_{j=0..k} (1/j!) D^j f(theta0; x)[Delta^j],  Delta = theta - theta0,
 * evaluated in Taylor mode: the path t -> theta0 + t Delta is pushed through
 * the network as truncated polynomials (normalized coefficients, GEMMs on
 * stacked blocks, O(k^2) recurrences for smooth activations, fixed masks for
 * the ReLU family).  Cost grows at most like (2k + 1) plain forwards, and
 * (5k + 2)/3 training steps with the gradient (less for ReLU nets, whose
 * blocks vanish above each layer's depth) -- polynomially, not like nested
 * forward mode.  The order-0 blocks depend only on theta0 and the batch and
 * are reused when the same batch comes back (compared byte for byte).
 *
 * theta arguments are full parameter vectors of length P; NULL means the
 * network's parameters at the time of the call.  The network must outlive
 * the expansion.
 *===================================================================*/

/** The order-k Taylor expansion of a network around a base point. */
typedef struct tn_taylor tn_taylor;

/** Creates the order-k expansion of net around its parameters now (copied).
 *  1 <= order <= tn_taylor_max_order().  Errors: TN_E_INVALID_ARG, TN_E_STATE
 *  (net not initialized), TN_E_NOMEM. */
TN_API tn_status tn_taylor_create(tn_net *net, int order, tn_taylor **out);
/** The highest supported order (32). */
TN_API int tn_taylor_max_order(void);
/** The expansion's order; 0 for NULL. */
TN_API int tn_taylor_order(const tn_taylor *t);
/** Moves the base point: theta0 (length len = P, finite), or NULL for the
 *  network's parameters now (len ignored).  Errors: TN_E_SHAPE, TN_E_INVALID_ARG. */
TN_API tn_status tn_taylor_rebase(tn_taylor *t, const double *theta0, size_t len);
/** Copies the base point theta0 (len = P).  Errors: TN_E_INVALID_ARG,
 *  TN_E_SHAPE. */
TN_API tn_status tn_taylor_get_base(const tn_taylor *t, double *theta0, size_t len);
/** y (n x O) = f_k(theta; x).  Errors: TN_E_INVALID_ARG, TN_E_NOMEM. */
TN_API tn_status tn_taylor_forward(tn_taylor *t, const double *theta, const double *x, size_t n,
                                   double *y);
/** terms: order + 1 blocks of n x O, block j = (1/j!) D^j f(theta0; x)[Delta^j]
 *  (their sum is f_k).  Errors as tn_taylor_forward. */
TN_API tn_status tn_taylor_terms(tn_taylor *t, const double *theta, const double *x, size_t n,
                                 double *terms);
/** grad (P) = sum_i (d f_k(theta; x_i) / d theta)^T cotangent_i, cotangent n x O.
 *  At theta = theta0 this is the network's VJP, for every order.
 *  Errors as tn_taylor_forward. */
TN_API tn_status tn_taylor_vjp(tn_taylor *t, const double *theta, const double *x, size_t n,
                               const double *cotangent, double *grad);
/** norms[j] (len = order + 1) = Frobenius norm over the rows of the last
 *  successful forward / terms / vjp of its term j.  Errors: TN_E_SHAPE,
 *  TN_E_STATE (nothing evaluated yet, or the last evaluation was refused),
 *  TN_E_NUMERIC (a norm overflows: entries near the largest double). */
TN_API tn_status tn_taylor_term_norms(const tn_taylor *t, double *norms, size_t len);
/** The divergence indicator |z_k| / |z_{k-1}| of the last evaluation (term
 *  norms as above): terms grow like rho^-j beyond the radius of convergence
 *  rho of t -> f(theta0 + t Delta), so a ratio near or above 1 says f_k is
 *  not approaching f as k grows.  0 when the top term vanishes (the series
 *  has ended, as in ReLU nets above their depth), INFINITY when only the one
 *  below it does.  Errors: TN_E_STATE (nothing evaluated yet). */
TN_API tn_status tn_taylor_divergence(const tn_taylor *t, double *ratio);
/** Frees an expansion (NULL: no-op). */
TN_API void tn_taylor_free(tn_taylor *t);

/*=====================================================================
 * Neural tangent kernel
 *
 * Theta(x, x') = sum_p d f(x)/d theta_p  d f(x')/d theta_p^T  (O x O per pair).
 * TN_NTK_TRACE gives the n1 x n2 matrix of (1/O) tr Theta(x_i, x'_j) (the
 * neural-tangents convention); TN_NTK_FULL the (n1 O) x (n2 O) matrix with
 * rows (i, c) and columns (j, d), row-major.
 *===================================================================*/

/** An NTK computer bound to a network. */
typedef struct tn_ntk tn_ntk;
/** NTK settings (tn_ntk_set, tn_ntk_get). */
typedef enum tn_ntk_param {
    TN_NTK_METHOD = 100,        /**< TN_NTK_AUTO (default), _STRUCTURED, _JACOBIAN, _VECTOR_PRODUCTS */
    TN_NTK_OUTPUTS = 101,       /**< TN_NTK_TRACE (default) or TN_NTK_FULL */
    TN_NTK_MEMORY_BUDGET = 102  /**< bytes of workspace beyond the output; tiles below it.
                                   Default 256 MiB, at least 1 MiB.  The handle keeps
                                   its workspace from one tn_ntk_compute to the next;
                                   setting another budget, or tn_ntk_free, frees it */
} tn_ntk_param;
enum { TN_NTK_AUTO = 0, TN_NTK_STRUCTURED = 1, TN_NTK_JACOBIAN = 2, TN_NTK_VECTOR_PRODUCTS = 3 };
enum { TN_NTK_TRACE = 0, TN_NTK_FULL = 1 };

/** Creates an NTK computer for net (initialized); it reads net's parameters
 *  at each compute.  The net must outlive it.  Errors: TN_E_INVALID_ARG,
 *  TN_E_STATE (net not initialized), TN_E_NOMEM. */
TN_API tn_status tn_ntk_create(tn_net *net, tn_ntk **out);
/** Sets a tn_ntk_param.  Errors: TN_E_INVALID_ARG (unknown p, value out of range). */
TN_API tn_status tn_ntk_set(tn_ntk *k, tn_ntk_param p, double value);
/** Reads a tn_ntk_param.  Errors: TN_E_INVALID_ARG. */
TN_API tn_status tn_ntk_get(const tn_ntk *k, tn_ntk_param p, double *value);
/** K = the empirical NTK between the rows of x1 (n1) and x2 (n2); x2 NULL
 *  means x2 = x1 (n2 ignored) and uses the symmetry.  On failure K holds NaN
 *  (never a partial result).  Errors: TN_E_INVALID_ARG, TN_E_STATE, TN_E_NOMEM,
 *  TN_E_CANCELLED. */
TN_API tn_status tn_ntk_compute(tn_ntk *k, const double *x1, size_t n1,
                                const double *x2, size_t n2, double *K);
/** The infinite-width NNGP and NTK (n1 x n2 each, identity across outputs,
 *  i.e. traced; either may be NULL, not both) of the network under NTK
 *  parameterization, with the net's sigma_w, sigma_b and leaky slope, by the
 *  recursions of docs/math.md §9 over its graph: dense, conv2d (any stride,
 *  SAME or VALID), avg_pool2d, global_avg_pool, flatten, residual sums and
 *  every activation (closed forms for identity, ReLU, leaky ReLU and erf;
 *  Gauss-Hermite quadrature for tanh, sigmoid, GELU and softplus; accuracy:
 *  docs/ntk.md).  x2 NULL: x1.  Cost per example pair and layer: linear in
 *  the pixels without pooling, quadratic before any pooling (every pixel
 *  pair); computed in tiles of example pairs under TN_NTK_MEMORY_BUDGET, with
 *  progress and cancellation (tn_ctx_set_progress).
 *  Errors: TN_E_UNSUPPORTED (standard parameterization; a node the recursion
 *  cannot follow, named in the message: a sum whose branches are correlated
 *  in the limit -- neither is a layer with parameters, or a linear map of
 *  one, that the other does not reach -- or an activation of a node that is
 *  not Gaussian, such as another activation), TN_E_INVALID_ARG (also an input
 *  not finite, or a kernel above 1e150), TN_E_NOMEM (also a budget that
 *  cannot hold one example pair besides the variances kept for every
 *  example), TN_E_CANCELLED (the outputs are then NaN;
 *  on every other error they are untouched). */
TN_API tn_status tn_ntk_analytic(tn_ntk *k, const double *x1, size_t n1, const double *x2,
                                 size_t n2, double *nngp, double *ntk);
/** The Monte Carlo kernels: the empirical NNGP (the outputs' second moment,
 *  (1/O) f(x_i)^T f(x'_j)) and NTK averaged over `samples` fresh
 *  initializations, sample s drawn as tn_net_init(net, seed + s) would; the
 *  net's own parameters are not changed.  Either output may be NULL, not
 *  both; each is n1 x n2 (TN_NTK_TRACE) or (n1 O) x (n2 O) (TN_NTK_FULL:
 *  f_c(x_i) f_d(x'_j) and the full NTK), x2 NULL: x1.  The NTK of each sample
 *  is tn_ntk_compute's (the same method and memory budget); progress runs
 *  once from 0 to 1 over the samples.  As width grows both converge to
 *  tn_ntk_analytic's (error ~ 1/sqrt(width)), and their spread over samples
 *  falls as 1/sqrt(samples).  Errors: TN_E_INVALID_ARG (samples 0, bad
 *  arrays), TN_E_NOMEM, TN_E_CANCELLED; on failure both outputs are NaN. */
TN_API tn_status tn_ntk_monte_carlo(tn_ntk *k, uint64_t seed, size_t samples, const double *x1,
                                    size_t n1, const double *x2, size_t n2, double *nngp,
                                    double *ntk);
/** Frees an NTK computer (NULL: no-op). */
TN_API void tn_ntk_free(tn_ntk *k);

/*=====================================================================
 * Closed-form linearized dynamics (MSE): the outputs of the linearized
 * network trained by gradient descent (or flow) with learning rate eta on
 * the full batch, at any time t, from one eigendecomposition of the kernel.
 *   f_t(X)  = Y + M_t (f_0(X) - Y),   M_t = (I - eta Theta / N)^t  or  exp(-eta Theta t / N)
 *   f_t(x*) = f_0(x*) - Theta(x*, X) Theta^-1 (I - M_t) (f_0(X) - Y)
 *===================================================================*/

/** Closed-form linearized dynamics from one train kernel. */
typedef struct tn_predictor tn_predictor;
/** Predictor settings (tn_predictor_set, tn_predictor_get). */
typedef enum tn_predictor_param {
    TN_PRED_LEARNING_RATE = 100,    /**< eta > 0; default 1 */
    TN_PRED_DIAG_REG = 101,         /**< lambda >= 0 added to the kernel's diagonal; default 0 */
    TN_PRED_TIME = 102              /**< TN_PRED_STEPS (discrete GD, default) or TN_PRED_FLOW */
} tn_predictor_param;
enum { TN_PRED_STEPS = 0, TN_PRED_FLOW = 1 };

/** k_train: the train kernel, n_train x n_train (traced: applied to each of
 *  the n_out outputs) or (n_train n_out)^2 (full_kernel 1); y_train n_train x
 *  n_out.  Both are copied.  The kernel must be symmetric to 1e-10 of its
 *  largest entry (it is then symmetrized) and positive semi-definite:
 *  eigenvalues down to -tol lambda_max, tol = 1e-10 x its dimension, are
 *  rounding and clipped to 0.  Errors: TN_E_INVALID_ARG (NULL, zero size,
 *  non-finite entry, full_kernel not 0/1), TN_E_NUMERIC (not symmetric, not
 *  positive semi-definite), TN_E_UNSUPPORTED (dimension above 32766, LAPACK's
 *  32-bit workspace), TN_E_NOMEM. */
TN_API tn_status tn_predictor_create(tn_ctx *ctx, const double *k_train, size_t n_train,
                                     size_t n_out, int full_kernel, const double *y_train,
                                     tn_predictor **out);
/** Sets a tn_predictor_param; a new TN_PRED_DIAG_REG redoes the
 *  eigendecomposition at the next predict.  Errors: TN_E_INVALID_ARG. */
TN_API tn_status tn_predictor_set(tn_predictor *p, tn_predictor_param q, double value);
/** Reads a tn_predictor_param.  Errors: TN_E_INVALID_ARG. */
TN_API tn_status tn_predictor_get(const tn_predictor *p, tn_predictor_param q, double *value);
/** t: steps (TN_PRED_STEPS, whole numbers) or time (TN_PRED_FLOW); INFINITY
 *  allowed.  f0_train n_train x n_out; k_test_train n_test x n_train (traced)
 *  or (n_test n_out) x (n_train n_out) (full); f0_test n_test x n_out.  Test
 *  arguments may be NULL (train only; they are not read when f_test_t is
 *  NULL); any output may be NULL.  At t = INFINITY the train outputs of a
 *  singular kernel keep their components on the null space (they never
 *  move), but test outputs need the kernel's inverse.
 *  Errors: TN_E_INVALID_ARG, TN_E_NUMERIC (test outputs at t = INFINITY with
 *  a kernel singular to the tolerance above: set TN_PRED_DIAG_REG; with
 *  TN_PRED_STEPS, a learning rate at which gradient descent diverges,
 *  eta lambda_max / n_train > 2, at any t > 0, or >= 2 at t = INFINITY: see
 *  tn_predictor_max_learning_rate). */
TN_API tn_status tn_predictor_predict(tn_predictor *p, double t,
                                      const double *f0_train, double *f_train_t,
                                      const double *k_test_train, const double *f0_test,
                                      size_t n_test, double *f_test_t);
/** *value = lambda_max, the largest eigenvalue of the train kernel plus
 *  TN_PRED_DIAG_REG (the one that limits the learning rate).  Decomposes
 *  the kernel if a new regularizer made its decomposition stale.
 *  Errors: TN_E_INVALID_ARG, TN_E_MISUSE, TN_E_NOMEM. */
TN_API tn_status tn_predictor_lambda_max(tn_predictor *p, double *value);
/** *value = 2 n_train / lambda_max, the largest stable learning rate of
 *  gradient descent (TN_PRED_STEPS) on this kernel: below it every
 *  eigencomponent decays, at it the top one oscillates without growing,
 *  above it GD diverges and tn_predictor_predict refuses every t > 0.
 *  INFINITY for a zero kernel.  (neural-tangents' max_learning_rate, for
 *  this library's loss (1/2N) sum |f - y|^2: its y_train_size is n_train
 *  here, since the loss is not divided by the number of outputs.)
 *  Errors: TN_E_INVALID_ARG, TN_E_MISUSE, TN_E_NOMEM. */
TN_API tn_status tn_predictor_max_learning_rate(tn_predictor *p, double *value);
/** Frees a predictor (NULL: no-op). */
TN_API void tn_predictor_free(tn_predictor *p);

/*=====================================================================
 * Gaussian-process inference with infinite-width kernels (Lee et al. 2019)
 *
 * NNGP posterior:  mean K*X K^-1 Y,  cov K** - K*X K^-1 KX*.
 * NTK-GP at time t (gradient flow, learning rate eta, N = n_train):
 *   mean  Theta*X Theta^-1 (I - e^{-eta Theta t/N}) Y
 *   cov   K** + Theta*X Theta^-1 (I - E) K (I - E) Theta^-1 ThetaX*
 *             - (Theta*X Theta^-1 (I - E) KX* + transpose),  E = e^{-eta Theta t/N}.
 * Kernels are traced (n x n, the same for every output).
 *===================================================================*/

/** Gaussian-process inference with NNGP and NTK train kernels. */
typedef struct tn_gp tn_gp;
/** GP settings (tn_gp_set, tn_gp_get). */
typedef enum tn_gp_param {
    TN_GP_DIAG_REG = 100,           /**< lambda >= 0 added to the train kernels' diagonals; default 0 */
    TN_GP_LEARNING_RATE = 101       /**< eta > 0 of the NTK-GP; default 1 */
} tn_gp_param;

/** nngp_train: K(X, X); ntk_train: Theta(X, X), or NULL for NNGP inference
 *  only; both n_train x n_train, symmetric and positive semi-definite as
 *  for tn_predictor_create.  y_train n_train x n_out.  All copied.
 *  Errors: TN_E_INVALID_ARG, TN_E_NUMERIC, TN_E_UNSUPPORTED (n_train above
 *  32766), TN_E_NOMEM. */
TN_API tn_status tn_gp_create(tn_ctx *ctx, const double *nngp_train, const double *ntk_train,
                              size_t n_train, size_t n_out, const double *y_train, tn_gp **out);
/** TN_GP_DIAG_REG is added to both train kernels (K and Theta) wherever they
 *  appear, so with Theta = K the NTK-GP at t = INFINITY is the regularized
 *  NNGP posterior.  Errors: TN_E_INVALID_ARG (unknown p, value out of range). */
TN_API tn_status tn_gp_set(tn_gp *g, tn_gp_param p, double value);
/** Reads a tn_gp_param.  Errors: TN_E_INVALID_ARG. */
TN_API tn_status tn_gp_get(const tn_gp *g, tn_gp_param p, double *value);
/** mean n_test x n_out, cov n_test x n_test; either may be NULL, and
 *  nngp_test_test (n_test x n_test) is read only for cov.  nngp_test_train
 *  n_test x n_train.
 *  Errors: TN_E_INVALID_ARG, TN_E_NUMERIC (K singular: set TN_GP_DIAG_REG). */
TN_API tn_status tn_gp_nngp_posterior(tn_gp *g, const double *nngp_test_train,
                                      const double *nngp_test_test, size_t n_test,
                                      double *mean, double *cov);
/** The NTK-GP at flow time t >= 0 (INFINITY allowed).  ntk_test_train and
 *  nngp_test_train n_test x n_train, nngp_test_test n_test x n_test (the
 *  latter two are read only for cov); mean and cov as above.  Errors: TN_E_STATE (made without
 *  ntk_train), TN_E_NUMERIC (Theta singular at t = INFINITY), TN_E_INVALID_ARG. */
TN_API tn_status tn_gp_ntk_posterior(tn_gp *g, double t, const double *ntk_test_train,
                                     const double *nngp_test_train,
                                     const double *nngp_test_test, size_t n_test,
                                     double *mean, double *cov);
/** Frees a GP (NULL: no-op). */
TN_API void tn_gp_free(tn_gp *g);

/*=====================================================================
 * Trainer
 *
 * Trains a network's parameters theta in place.  The network must outlive
 * the trainer.  The trained model is
 *   g(theta; x) = alpha (m(theta; x) - [centered] m(theta0; x)),
 * with m = f at TN_TRAIN_ORDER 0 (full training) and m = f_k, the order-k
 * Taylor expansion around theta0, at order k >= 1 (k = 1: linearized
 * training).  The loss is L(g, y) / alpha^2 (lazy scaling, Chizat et al.):
 * MSE is (1/2N) sum_i |g(x_i) - y_i|^2; softmax cross-entropy is
 * -(1/N) sum_i sum_c y_ic log softmax(g(x_i))_c with rows of y probabilities
 * (one-hot for labels).
 *
 * theta0 is the network's parameters when the trainer is made and each time
 * TN_TRAIN_ORDER is set (to any value, so changing the order mid-training
 * re-expands at the current theta and keeps the optimizer state);
 * TN_TRAIN_REEXPAND_EVERY K > 0 moves it to theta after every K-th step
 * (K = 1 is full training step for step).
 *
 * Full-batch training is cheap at order >= 1: the order-0 blocks of the
 * expansion (f(theta0; x) and every layer's base activations) depend only
 * on theta0 and the batch, and are reused when the same batch comes back.
 * The trainer keeps a copy of the last batch and compares the new one byte
 * for byte (O(n d), small beside the GEMMs it saves), so a changed batch,
 * even at the same address, is never served stale results; rebasing or
 * changing the order drops the cache.  Centered order-0 training caches
 * f(theta0; x) the same way.
 *
 * Optimizers follow torch.optim's update rules and defaults
 * (docs/conventions.md); weight decay acts on theta, as there.
 *===================================================================*/

/** A trainer of a network's parameters. */
typedef struct tn_trainer tn_trainer;

/** Trainer settings (tn_trainer_set, tn_trainer_get). */
typedef enum tn_train_param {
    TN_TRAIN_LOSS = 100,            /**< TN_LOSS_MSE (default) or TN_LOSS_SOFTMAX_XENT */
    TN_TRAIN_OPTIMIZER = 101,       /**< TN_OPT_*; default TN_OPT_SGD.  Changing it resets the
                                       optimizer state */
    TN_TRAIN_LEARNING_RATE = 102,   /**< > 0; default 1e-3 (RMSProp 1e-2); may change between steps */
    TN_TRAIN_MOMENTUM = 103,        /**< [0, 1); default 0.9 for MOMENTUM/NESTEROV, 0 for RMSPROP */
    TN_TRAIN_BETA1 = 104,           /**< Adam beta1 in [0, 1); default 0.9 */
    TN_TRAIN_BETA2 = 105,           /**< Adam beta2 (default 0.999), RMSProp alpha (default 0.99), [0, 1) */
    TN_TRAIN_EPSILON = 106,         /**< > 0; default 1e-8 */
    TN_TRAIN_WEIGHT_DECAY = 107,    /**< >= 0, L2 added to the gradient as in torch.optim; default 0 */
    TN_TRAIN_CLIP_NORM = 108,       /**< >= 0; 0 = off (default); else g *= min(1, c / |g|) */
    TN_TRAIN_ORDER = 200,           /**< 0: full network (default); k >= 1: order-k Taylor model */
    TN_TRAIN_REEXPAND_EVERY = 201,  /**< 0: never (default); K: base theta0 <- theta every K steps */
    TN_TRAIN_OUTPUT_SCALE = 300,    /**< alpha, default 1 */
    TN_TRAIN_CENTERED = 301,        /**< 1: model is alpha (f(theta) - f(theta0)) */
    TN_TRAIN_DIAGNOSTICS = 400,     /**< 1: compute the neural Taylor diagnostics at each step */
    TN_TRAIN_RECORD_TAYLOR = 401,   /**< 1: keep what each step's Taylor loss needs, for
                                       tn_trainer_regret; 0 (default) drops the record */
    TN_TRAIN_REGRET_MEMORY = 402,   /**< bytes the record may hold, >= 0; default 2^30 (1 GiB) */
    TN_TRAIN_REGRET_TOLERANCE = 403,    /**< the regret solvers' tolerance, in (0, 1); default 1e-12 */
    TN_TRAIN_REGRET_MAX_ITERATIONS = 404,   /**< the most Jacobian products a solve may take
                                               (whole number >= 1); default 20000 */
    TN_TRAIN_REGRET_SOLVER = 405    /**< TN_REGRET_AUTO (default), _DIRECT, _LSQR or _NEWTON_CG */
} tn_train_param;

enum { TN_LOSS_MSE = 0, TN_LOSS_SOFTMAX_XENT = 1 };
enum { TN_OPT_SGD = 0, TN_OPT_MOMENTUM = 1, TN_OPT_NESTEROV = 2, TN_OPT_RMSPROP = 3, TN_OPT_ADAM = 4 };

/** Creates a trainer of net's parameters (the net must be initialized).
 *  Errors: TN_E_INVALID_ARG, TN_E_STATE (net not initialized), TN_E_NOMEM. */
TN_API tn_status tn_trainer_create(tn_net *net, tn_trainer **out);
/** Sets a tn_train_param.  Errors: TN_E_INVALID_ARG (unknown p, value out of
 *  range, not a whole number where one is needed). */
TN_API tn_status tn_trainer_set(tn_trainer *tr, tn_train_param p, double value);
/** Reads a tn_train_param, defaults resolved for the current optimizer.
 *  Errors: TN_E_INVALID_ARG (NULL value, unknown p). */
TN_API tn_status tn_trainer_get(const tn_trainer *tr, tn_train_param p, double *value);
/** One optimizer update on the batch (x: n x input_size, y: n x O targets).
 *  *loss (may be NULL) receives the loss before the update.  A loss or
 *  gradient that is not finite, or an update that would make a parameter not
 *  finite, returns TN_E_NUMERIC and leaves the parameters and optimizer state
 *  bit-identical to before.  Errors: TN_E_INVALID_ARG, TN_E_NUMERIC, TN_E_NOMEM. */
TN_API tn_status tn_trainer_step(tn_trainer *tr, const double *x, const double *y, size_t n,
                                 double *loss);
/** *loss (required) = L(g, y) / alpha^2 of the trained model on a batch,
 *  without updating; evaluated in chunks of rows.  Errors: TN_E_INVALID_ARG,
 *  TN_E_NOMEM. */
TN_API tn_status tn_trainer_loss(tn_trainer *tr, const double *x, const double *y, size_t n,
                                 double *loss);
/** y (n x O) = the trained model g on x (see above: f, or f_k, with alpha and
 *  centering), evaluated in chunks of rows.  Errors: TN_E_INVALID_ARG,
 *  TN_E_NOMEM. */
TN_API tn_status tn_trainer_predict(tn_trainer *tr, const double *x, size_t n, double *y);
/** Neural Taylor diagnostics (Balduzzi et al. 2017; docs/math.md §7), for
 *  the network f whatever model is trained, with alpha and centering.  With
 *  TN_TRAIN_DIAGNOSTICS 1 each step also computes, on its batch, the loss the
 *  network's first-order Taylor model at theta_t predicts for theta_{t+1},
 *    L(alpha (f(theta_t) + J_t (theta_{t+1} - theta_t) - [centered] f(theta0)), y) / alpha^2,
 *  and the loss actually reached at theta_{t+1}; and, once a probe batch is
 *  set, the fraction of ReLU-family units (leaky included) of the probe
 *  whose on/off state (z > 0) changed in the step and since the probe was
 *  set (0 for networks without such units).  Cost: one JVP and two forwards
 *  on the batch, one forward on the probe.  A failure here fails the step
 *  and leaves everything unchanged. */
typedef enum tn_train_stat {
    TN_STAT_LOSS = 0,                   /**< the loss before the last step (always) */
    TN_STAT_TAYLOR_PREDICTED = 1,       /**< the first-order prediction of the loss after it */
    TN_STAT_LOSS_REACHED = 2,           /**< the loss after it, on the same batch */
    TN_STAT_PATTERN_CHANGE_STEP = 3,    /**< fraction of probe units that switched in the step */
    TN_STAT_PATTERN_CHANGE_INIT = 4,    /**< ... that differ from when the probe was set */
    TN_STAT_GRAD_NORM = 5,              /**< |gradient| before clipping (always) */
    TN_STAT_CONFIGS_VISITED = 6,        /**< distinct configurations the probe's examples have
                                           visited since the probe was set, summed over them */
    TN_STAT_UNITS_EVER_SWITCHED = 7     /**< fraction of probe units that have switched at
                                           least once since the probe was set */
} tn_train_stat;
/** Activation exploration (TN_STAT_CONFIGS_VISITED, TN_STAT_UNITS_EVER_SWITCHED),
 *  computed with the pattern statistics.  The configuration of a probe
 *  example is the on/off state of all its ReLU-family units: which linear
 *  piece of the network it lies in.  The trainer keeps a 64-bit hash of
 *  each (example, configuration) pair seen since the probe was set (16
 *  bytes of table per distinct pair; a collision, which would undercount by
 *  one, has probability below 3e-8 for a million pairs) and counts the
 *  distinct pairs: n when the probe is set (n probe examples), at most n
 *  more per step.  Divided by n it is the mean number of configurations an
 *  example has visited.  A unit of the probe (an example's unit) has
 *  switched once its state has differed, after some step, from its state
 *  at the step before; unlike TN_STAT_PATTERN_CHANGE_INIT, a unit that
 *  switched back still counts.  Both start over when the probe is set. */
/** Sets (a copy of) the probe batch and takes its current pattern as the
 *  reference.  Errors: TN_E_INVALID_ARG, TN_E_NOMEM. */
TN_API tn_status tn_trainer_set_probe(tn_trainer *tr, const double *x, size_t n);
/** A statistic of the last successful step.  Errors: TN_E_STATE (no step
 *  yet, diagnostics off, or no probe for the pattern statistics),
 *  TN_E_INVALID_ARG. */
TN_API tn_status tn_trainer_stat(const tn_trainer *tr, tn_train_stat s, double *value);
/** A gradient hook: see tn_trainer_set_gradient_hook. */
typedef tn_status (*tn_gradient_fn)(void *user, double *grad, size_t len, double *loss);
/** Installs fn, called by every tn_trainer_step after the gradient of the
 *  step's batch loss is formed and before clipping, weight decay and the
 *  update, as fn(user, grad, len, loss): grad holds the len =
 *  tn_net_num_params() entries of the gradient of L(g, y) / alpha^2 on the
 *  batch, *loss that loss.  The hook may change both in place; the step then
 *  goes on with what it left: it clips grad, decays and updates, returns
 *  *loss as the step's loss, and reports both as TN_STAT_LOSS and
 *  TN_STAT_GRAD_NORM.  Data-parallel training averages them over ranks here:
 *  each rank steps on its shard of the batch and the hook replaces grad and
 *  *loss by their weighted sums over ranks, weights n_rank / n_batch, which
 *  is the gradient and loss of the whole batch (docs/distributed.md).
 *
 *  The hook is called in every step that gets as far as a gradient, even
 *  when the batch's loss or gradient is not finite (a collective inside it
 *  is entered by every rank in every step); the step checks finiteness
 *  after the hook, so a NaN summed in by one rank fails the step with
 *  TN_E_NUMERIC on every rank alike.  A status other than TN_OK from the
 *  hook ends the step with that status and a message naming the hook, and
 *  nothing changed: parameters, optimizer state, step count and statistics
 *  are as before the step.  The diagnostics (TN_TRAIN_DIAGNOSTICS) stay
 *  those of the local batch.  grad and loss are valid only during the call;
 *  the hook must not call the library with handles of tr's context.  fn
 *  NULL removes the hook (user is then ignored).  The hook belongs to this
 *  process, not to the trainer's state: tn_trainer_save does not keep it,
 *  and a trainer from tn_trainer_load has none until it is set again (each
 *  rank of a data-parallel run loads the same checkpoint and sets its hook).
 *  Errors: TN_E_INVALID_ARG (tr NULL), TN_E_MISUSE. */
TN_API tn_status tn_trainer_set_gradient_hook(tn_trainer *tr, tn_gradient_fn fn, void *user);
/** The number of successful steps taken. 0 for NULL. */
TN_API uint64_t tn_trainer_num_steps(const tn_trainer *tr);
/** theta0 (len = tn_net_num_params()) = the trainer's base point: the
 *  parameters its order-k model is expanded around and its centering
 *  subtracts the model at (the network's parameters when the trainer was
 *  made or TN_TRAIN_ORDER last set, moved by re-expansion).  For a trainer
 *  loaded from a checkpoint, where the network's parameters are the
 *  trained ones, this is how to expand a tn_taylor around the same point.
 *  Errors: TN_E_INVALID_ARG, TN_E_SHAPE (len), TN_E_MISUSE. */
TN_API tn_status tn_trainer_get_base(const tn_trainer *tr, double *theta0, size_t len);
/** Writes a checkpoint of the trainer to path: its network (architecture,
 *  settings, theta), theta0 and the expansion order, every optimizer state
 *  vector, the step and update counts, every setting, the statistics of the
 *  last step, the diagnostics' probe batch with its reference patterns and
 *  exploration, and the Taylor record of the regret with its last solve.
 *  Atomic, like tn_net_save (a temporary file beside path, fsynced, renamed
 *  over it; temporaries left by killed saves to the same path are removed),
 *  versioned and checksummed.  Not saved: caches (recomputed bit for bit),
 *  the context's thread count.
 *  Errors: TN_E_INVALID_ARG, TN_E_IO, TN_E_NOMEM. */
TN_API tn_status tn_trainer_save(const tn_trainer *tr, const char *path);
/** Reads a checkpoint written by tn_trainer_save into ctx: *net receives the
 *  network and *tr a trainer of it in the saved state, so that the run
 *  continues bit for bit as the uninterrupted one would (same batches, same
 *  thread count).  Free *tr before *net.  Both are NULL on failure.
 *  Errors: TN_E_INVALID_ARG, TN_E_IO (cannot open or read; not a regular
 *  file), TN_E_FORMAT (not a checkpoint, truncated, corrupted,
 *  inconsistent), TN_E_VERSION (written by a newer library), TN_E_NOMEM. */
TN_API tn_status tn_trainer_load(tn_ctx *ctx, const char *path, tn_net **net, tn_trainer **tr);

/*---------------------------------------------------------------------
 * Regret against the Taylor optimum (Balduzzi et al. 2017; docs/math.md §7)
 *
 * Step t's Taylor loss is the loss of the network's first-order Taylor
 * model at the step's parameters theta_t, on the step's batch (x_t, y_t),
 * with the step's alpha and centering and the step's loss L:
 *   l_t(V) = L(b_t + alpha J_t (V - theta_t), y_t) / alpha^2,
 *   b_t = alpha (f(theta_t; x_t) - [centered] f(theta0; x_t)),
 * J_t the Jacobian of the network f at theta_t on x_t.  It is convex in V
 * and l_t(theta_t) is the network's loss at the step.  Whatever model the
 * trainer trains (f, f_k, re-expanded, lazy), the Taylor loss is of the
 * network f: for full training l_t(theta_t) is the step's loss.  The regret
 * of the T steps recorded is
 *   R_T = sum_t l_t(theta_t) - min_V sum_t l_t(V).
 *
 * What is recorded.  With TN_TRAIN_RECORD_TAYLOR 1 each successful step
 * keeps theta_t (P doubles), b_t (n O), alpha, the loss kind and
 * l_t(theta_t), and a copy of the batch (n (d + O) doubles), which a step
 * on the same batch as the step before (full-batch training) shares.  J_t
 * (n O P doubles, n O times theta) is never stored: the solvers recompute
 * J_t v and J_t^T u by the engine at theta_t on x_t.  A step costs
 *   8 (P + n O) + 48 bytes,  plus 8 n (d + O) + 32 for a new batch;
 * tn_trainer_regret_info(TN_REGRET_BYTES) gives the total.  A step that
 * would take the record past TN_TRAIN_REGRET_MEMORY fails with TN_E_NOMEM
 * and a message saying so, and changes nothing (raise the budget, or set
 * TN_TRAIN_RECORD_TAYLOR to 0 and to 1 again to start a new record).
 * Under a gradient hook each rank records its own batch: the regret is that
 * of the local Taylor losses.
 *
 * The solvers (TN_TRAIN_REGRET_SOLVER; tol = TN_TRAIN_REGRET_TOLERANCE):
 *   TN_REGRET_DIRECT     MSE only: the stacked Jacobian (M x P, M = sum_t
 *                        n_t O rows, from M vector-Jacobian products) and
 *                        LAPACK's SVD least squares (dgelsd), singular values
 *                        below 1e-12 of the largest counted as zero: the
 *                        minimum to rounding.  Needs 8 M P bytes and more.
 *   TN_REGRET_LSQR       MSE only: LSQR (Paige & Saunders) on the weighted
 *                        least-squares problem, matrix-free, until
 *                        |r| <= tol (|b| + |A| |x|) or |A^T r| <= tol |A| |r|
 *                        (LSQR's own estimates of the norms).
 *   TN_REGRET_NEWTON_CG  any losses: Newton's method with the Hessian
 *                        (sum_t J_t^T L''_t J_t) applied by conjugate
 *                        gradients and an exact line search, until half the
 *                        Newton decrement lambda^2 = g^T H^-1 g (which
 *                        estimates F - min F; CG continued to 1e-8 to check
 *                        it) and the last step's decrease are both at most
 *                        tol times sum_t l_t(theta_t).  Cross-entropy over
 *                        data the Taylor model separates has an infimum, 0,
 *                        not a minimum: the iterates move off to infinity
 *                        and F(V) falls under the tolerance (below).
 *   TN_REGRET_AUTO       DIRECT when every step is MSE and M P <= 2^22,
 *                        LSQR for larger MSE records, NEWTON_CG otherwise.
 * "Exact" for MSE therefore means: the direct solve, or LSQR to 1e-12.
 * Newton-CG stops early, with the same guarantee, when F(V) itself is at
 * most tol times the loss sum and no Taylor loss can be negative (MSE;
 * cross-entropy with targets >= 0): then F(V) - min F <= F(V).
 * Every solve starts from theta_T, so its result depends on the record
 * alone; its workspace (8 vectors of P and 5 of M doubles at most, the
 * minimizer kept; the dense Jacobian for DIRECT) is allocated before any
 * work.  A solve that does not meet the tolerance within
 * TN_TRAIN_REGRET_MAX_ITERATIONS iterations (each about one JVP and one VJP
 * per recorded step) fails with TN_E_NUMERIC, saying how close it came.
 *---------------------------------------------------------------------*/

/** The solvers of tn_trainer_regret (TN_TRAIN_REGRET_SOLVER). */
enum { TN_REGRET_AUTO = 0, TN_REGRET_DIRECT = 1, TN_REGRET_LSQR = 2, TN_REGRET_NEWTON_CG = 3 };

/** R_T = sum_t l_t(theta_t) - min_V sum_t l_t(V) over the steps recorded so
 *  far into *regret, and the minimum into *taylor_optimum (either may be
 *  NULL).  The minimizer is read with tn_trainer_regret_minimizer, how the
 *  solve went with tn_trainer_regret_info.
 *  Errors: TN_E_INVALID_ARG, TN_E_STATE (nothing recorded),
 *  TN_E_UNSUPPORTED (DIRECT or LSQR asked for a record with
 *  cross-entropy steps; DIRECT for one too large for LAPACK's 32-bit
 *  sizes), TN_E_NUMERIC (the tolerance not reached), TN_E_NOMEM. */
TN_API tn_status tn_trainer_regret(tn_trainer *tr, double *regret, double *taylor_optimum);

/** What tn_trainer_regret_info reports. */
typedef enum tn_regret_info {
    TN_REGRET_STEPS = 0,            /**< steps recorded now */
    TN_REGRET_BYTES = 1,            /**< bytes the record holds now */
    TN_REGRET_LOSS_SUM = 2,         /**< sum_t l_t(theta_t) over the record now */
    /* of the last successful tn_trainer_regret: */
    TN_REGRET_SOLVED_STEPS = 3,     /**< the steps it covered */
    TN_REGRET_VALUE = 4,            /**< R_T */
    TN_REGRET_OPTIMUM = 5,          /**< min_V sum_t l_t(V) */
    TN_REGRET_SOLVER_USED = 6,      /**< TN_REGRET_DIRECT, _LSQR or _NEWTON_CG */
    TN_REGRET_ITERATIONS = 7,       /**< its iterations, each about one JVP and one VJP per
                                       recorded step (DIRECT: its M VJPs count as one) */
    TN_REGRET_NEWTON_STEPS = 8,     /**< Newton steps (NEWTON_CG; else 0) */
    TN_REGRET_ACCURACY = 9          /**< the stopping measure it reached (<= the tolerance;
                                       DIRECT: 0) */
} tn_regret_info;

/** A number about the record or the last regret solve.  Errors:
 *  TN_E_INVALID_ARG (NULL, unknown what), TN_E_STATE (recording off; no
 *  solve yet for the values of the last solve). */
TN_API tn_status tn_trainer_regret_info(const tn_trainer *tr, tn_regret_info what, double *value);

/** The minimizer V of the last successful tn_trainer_regret (len = P).
 *  Errors: TN_E_INVALID_ARG, TN_E_SHAPE, TN_E_STATE (no solve yet). */
TN_API tn_status tn_trainer_regret_minimizer(const tn_trainer *tr, double *v, size_t len);
/** Frees a trainer (NULL: no-op); the network keeps its trained parameters. */
TN_API void tn_trainer_free(tn_trainer *tr);

#ifdef __cplusplus
}
#endif

#endif /* TAYLORNET_H */
