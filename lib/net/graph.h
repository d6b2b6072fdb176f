/*
 * graph.h -- a network is a graph of nodes; a node is one layer of some kind,
 * and a kind is one file under lib/net/ holding one table of operations.
 *
 * Node 0 is the input.  Every other node reads one or two earlier nodes (ids
 * always smaller than its own, so id order is a topological order), has an
 * output shape, a slice of the flat parameter vector, and a few attribute
 * words that only its kind's file interprets (the width of a dense layer, the
 * window of a convolution).  Those words are also what a network file stores
 * of the node, so saving and loading need no per-kind code.
 *
 * Every kind implements two operations on truncated Taylor series (normalized
 * coefficient blocks, MATH.md §3), used for everything:
 *   forward: input coefficients x_0..x_din  ->  output coefficients z_0..z_dout
 *   reverse: output cotangents -> input cotangents (added into them when the
 *            input has several readers) and the parameters' gradient.
 * Order 0 is plain forward and VJP; order 1 gives the JVP; order k the Taylor
 * model.  The NTK's cotangent sweep is the same reverse at order 0 with
 * several cotangent sets stacked and no gradient.
 *
 * Adding a kind: one file with its tni_kind_ops, one entry in tni_kinds
 * (kinds.c), one builder in the public API.  Nothing else reads its
 * attributes.
 */
#ifndef TNI_GRAPH_H
#define TNI_GRAPH_H

#include "../core/core.h"
#include "../core/rng.h"

/* Kind numbers are stored in network files: never renumber. */
typedef enum tni_kind {
    TNI_KIND_INPUT = 0,
    TNI_KIND_DENSE = 1,
    TNI_KIND_ACTIVATION = 2,
    TNI_KIND_CONV2D = 3,
    TNI_KIND_AVG_POOL2D = 4,
    TNI_KIND_GLOBAL_AVG_POOL = 5,
    TNI_KIND_FLATTEN = 6,
    TNI_KIND_SUM = 7,
    TNI_KIND_COUNT = 8
} tni_kind;

/* {d} (ndim 1) or {H, W, C} (ndim 3, NHWC). */
typedef struct tni_shape {
    size_t ndim;
    size_t dim[3];
} tni_shape;

size_t tni_shape_size(const tni_shape *s);   /* product of the dims (no overflow: checked at build) */
int tni_shape_equal(const tni_shape *a, const tni_shape *b);
/* "{28, 28, 1}" or "{10}" into buf. */
const char *tni_shape_str(const tni_shape *s, char *buf, size_t cap);

#define TNI_MAX_INPUTS 2
#define TNI_MAX_ATTRS 8

/* Node flags, set by a kind when the node is built. */
enum {
    TNI_NODE_RECTIFIER = 1u   /* ReLU-family units: on/off patterns; default sigma_w^2 = 2 */
};

typedef struct tni_node {
    tni_kind kind;
    unsigned flags;
    size_t ninputs, input[TNI_MAX_INPUTS];
    tni_shape shape;                /* of the output */
    size_t size;                    /* values per example of the output */
    size_t offset, count;           /* this node's slice of theta */
    uint64_t attr[TNI_MAX_ATTRS];   /* the kind's own words (stored in files) */
    double scale[2];                /* derived from the settings at resolve (not stored) */
} tni_node;

/* The network-wide settings a kind may need (MATH.md §1). */
typedef struct tni_settings {
    int parameterization;           /* TN_PARAM_NTK or TN_PARAM_STANDARD */
    double sigma_w, sigma_b;        /* sigma_w with its default resolved */
    double leaky_slope;
} tni_settings;

/* What the engine needs of a network: its nodes and which one is the output. */
typedef struct tni_graph {
    const tni_node *nodes;
    size_t nnodes;                  /* node 0 is the input */
    size_t output;
    size_t nparams;
} tni_graph;

/* Flags of tni_engine_forward. */
enum {
    /* Keep what is needed to skip the order-0 work next time: no block is
     * reused within the pass, and the input of every in-place node is saved
     * at order 0 (one block copy each), unless the kind keeps its own
     * order-0 output (keeps_base). */
    TNI_KEEP_BASE = 1u,
    /* The tape's order-0 blocks are current for this (theta0, x, batch,
     * order): the last forward on this tape had the same ones and
     * TNI_KEEP_BASE.  Kinds with parameters skip their order-0 products.
     * The caller vouches for it (taylor/expansion.c checks the batch byte
     * for byte). */
    TNI_BASE_CACHED = 2u
};

/* What a kind's forward or reverse sees.  Blocks are batch * size values
 * each, contiguous, order-major: block j of a node starts at j * batch * size. */
typedef struct tni_node_io {
    int threads;
    size_t batch, order;
    size_t sets;                    /* reverse: cotangent sets stacked set-major (1 normally) */
    const double *theta0, *delta;   /* this node's parameter slices; delta NULL at order 0 */
    const double *in[TNI_MAX_INPUTS];   /* input blocks 0..din[i] */
    const tni_shape *in_shape[TNI_MAX_INPUTS];
    size_t din[TNI_MAX_INPUTS];
    double *out;                    /* output blocks 0..dout (== in[0] for in-place kinds) */
    size_t dout;
    double *saved;                  /* what forward keeps for reverse (saved_doubles) */
    double *scratch;                /* scratch_doubles of the kind */
    unsigned flags;                 /* TNI_BASE_CACHED (engine.h) */
    size_t lo;                      /* reverse: lowest order whose cotangent matters */
    double *cot_out;                /* reverse: output cotangents, blocks lo..dout (sets * batch rows) */
    double *cot_in[TNI_MAX_INPUTS]; /* reverse: input cotangents, blocks lo..din[i], or NULL */
    int cot_add[TNI_MAX_INPUTS];    /* 1: add into cot_in (another reader wrote it first) */
    double *grad;                   /* reverse: this node's gradient slice, or NULL (sweep) */
    int grad_add;                   /* 1: add into grad */
} tni_node_io;

/* What the NTK needs of a node with parameters: per-example factors of its
 * parameters' gradients are the node's input (order-0 block) and the
 * cotangents of its output, one per network output c. */
typedef struct tni_ntk_pair {
    int threads;
    size_t O;
    int full;                       /* rows (i, c) x columns (j, d), else traced (sum over c = d) */
    int diag;                       /* the same tile twice: the lower triangle suffices */
    size_t a, b;                    /* examples of the two tiles */
    const double *xa, *xb;          /* a x in_size, b x in_size */
    const double *ga, *gb;          /* (a O) x size, row (i, c): cotangent of output c on example i */
    double *K;                      /* add into: a x b (traced, unscaled sum over c) or (a O) x (b O) */
    size_t ldk;
    double *tmp;                    /* gram_tmp_doubles */
} tni_ntk_pair;

/* ---- infinite-width kernels (MATH.md §9; lib/ntk/analytic.c drives) -----
 *
 * In the infinite-width limit the channels of a node's output are alike and
 * uncorrelated, and the recursion carries two tensors over pairs of
 * (example, pixel) positions (x_i, p), (x'_j, p'):
 *   S  the second moment E[z_c(x_i)[p] z_c(x'_j)[p']] (the NNGP's); for a
 *      node with no parameters upstream, the mean over channels of the
 *      products of its values;
 *   T  <d z_c(x_i)[p] / d theta, d z_c(x'_j)[p'] / d theta> (the NTK's).
 * A node's pixels are those of its shape ({d}: one), except that flatten,
 * and activations and sums of flat nodes, keep the pixels of the image they
 * flatten: the channels of a flattened image are not alike, and whatever
 * reads a flat node needs only pixel-aligned entries. */

/* What the recursion knows of a node's output (its class). */
enum {
    TNI_COV_DET = 0,    /* no parameters upstream: known values (computed by forward) */
    TNI_COV_GAUSS = 1,  /* a centered Gaussian field: a linear image of layers with fresh weights */
    TNI_COV_MOMENT = 2  /* anything else the recursion follows: its second moment */
};

/* Planned before anything is computed, node by node (analytic_plan). */
typedef struct tni_cov_plan {
    int cls;            /* TNI_COV_* */
    size_t pixels;
    /* Bitset over node ids (words uint64_t): the layers with parameters this
     * node reaches going back through layers without parameters (itself if
     * it has them).  A node's value is independent, in the limit, of the
     * output of every layer with parameters it does not reach. */
    uint64_t *reach;
} tni_cov_plan;

/* The state of one node over a tile of example pairs (i, j), i < a from
 * x1, j < b from x2. */
typedef struct tni_cov {
    double *S, *T;      /* T NULL: the NTK is not wanted, or (an input) it is identically 0 */
    size_t pixels;      /* P */
    /* Layout.  full: every pixel pair, the (a P) x (b P) row-major matrix
     * with row (i, p) and column (j, p').  Aligned: p = p' only, P matrices
     * a x b, [p][i][j].  For one pixel the two are the same. */
    int full;
} tni_cov;

typedef struct tni_cov_io {
    int threads;
    size_t a, b;
    int tri;            /* x2's examples are x1's (a = b): only the pairs j < i are computed, */
    int diag;           /* and when diag, j = i too (an example with itself) */
    const tni_shape *in_shape[TNI_MAX_INPUTS];
    tni_cov in[TNI_MAX_INPUTS];
    tni_cov out;
    /* Kinds with analytic_var: S of input 0 at ((i, p), (i, p)), a x P,
     * and at ((j, p), (j, p)) of the columns' examples, b x P (var1 when
     * tri).  With diag, the entry ((i, p), (i, p)) itself is to be taken as
     * that variance. */
    const double *var1, *var2;
    void *work;         /* analytic_begin's */
    double *tmp;        /* analytic_tmp_doubles */
} tni_cov_io;

/* The layout a kind needs of its inputs (analytic_input). */
enum {
    TNI_COV_IN_AS_OUT = 0,  /* the layout of its output */
    TNI_COV_IN_FULL = 1,    /* every pixel pair, whatever its output */
    TNI_COV_IN_ALIGNED = 2  /* pixel-aligned entries only */
};

/* Forward aliasing: whether a kind's output may share its first input's memory. */
enum {
    TNI_ALIAS_NONE = 0,     /* its own buffer */
    TNI_ALIAS_IN_PLACE = 1, /* writes over input 0 when nothing else reads it */
    TNI_ALIAS_VIEW = 2      /* is input 0, unchanged (flatten) */
};

typedef struct tni_kind_ops {
    const char *name;               /* in messages */
    size_t ninputs;                 /* 1, or 2 for sum */
    size_t nattrs;                  /* attribute words it uses (and files store) */
    int alias;                      /* TNI_ALIAS_*; cotangents alias the same way (input 0) */
    int reverse_reads_input;        /* reverse (or the NTK) reads the input blocks */
    /* Checks the attributes against the input shapes; sets shape, count and
     * flags.  fn names the public call for the message. */
    tn_status (*infer)(tni_node *n, const tni_shape *const *in, tn_ctx *ctx, const char *fn);
    /* Derives n->scale from the settings; NULL if the kind has no parameters.  */
    void (*resolve)(tni_node *n, const tni_settings *s);
    /* Draws the node's parameters into its slice, in its layout. */
    void (*init)(const tni_node *n, const tni_settings *s, tni_rng *rng, double *theta);
    /* The highest order that can be nonzero in the output. */
    size_t (*out_degree)(const tni_node *n, const size_t *din, size_t order);
    /* Doubles per example forward keeps for reverse (NULL: none). */
    size_t (*saved_doubles)(const tni_node *n, size_t order);
    /* In-place kinds (NULL: no): 1 when, at this order and output degree,
     * the node keeps its own order-0 output for a cached pass
     * (TNI_BASE_CACHED) and never reads its input's order-0 block then, so
     * the engine neither saves nor restores that block for it. */
    int (*keeps_base)(const tni_node *n, size_t order, size_t dout);
    /* Doubles of scratch forward and reverse need for `rows` example rows
     * (rows = sets x batch in reverse) at `order` (NULL: none). */
    size_t (*scratch_doubles)(const tni_node *n, const tni_shape *const *in, size_t rows,
                              size_t order);
    void (*forward)(const tni_node *n, tni_node_io *io);
    void (*reverse)(const tni_node *n, tni_node_io *io);
    /* Units whose state is on/off (rectifiers): the state of each of `batch`
     * examples' units after a forward, one byte each (bits NULL: only count). */
    size_t (*pattern)(const tni_node *n, const double *saved, size_t batch, unsigned char *bits);

    /* --- NTK (kinds with parameters) --- */
    /* Structured Gram products of a tile pair (add into p->K); NULL when the
     * kind has nothing cheaper than its Jacobian (then the cost model routes
     * it to the Jacobian contraction). */
    void (*gram)(const tni_node *n, const tni_shape *in, const tni_ntk_pair *p);
    double (*gram_pair_flops)(const tni_node *n, const tni_shape *in, size_t O, int full);
    size_t (*gram_tmp_doubles)(const tni_node *n, const tni_shape *in, size_t a, size_t b,
                               size_t O, int full);
    /* The node's columns of one example's Jacobian: O rows (row c at J + c ldj)
     * of d f_c / d theta_node, from its input x and its cotangents g (O x size). */
    void (*jacobian)(const tni_node *n, const tni_shape *in, int threads, size_t O,
                     const double *x, const double *g, double *J, size_t ldj, double *tmp);
    double (*jacobian_flops)(const tni_node *n, const tni_shape *in, size_t O);   /* per example */
    size_t (*jacobian_tmp_doubles)(const tni_node *n, const tni_shape *in);

    /* --- infinite-width kernels (analytic NULL: refused) --- */
    int analytic_input;             /* TNI_COV_IN_* */
    int analytic_var;               /* reads var1, var2 */
    /* Classifies the node from its inputs' plans (in[s] for each input):
     * sets out->cls, out->pixels, out->reach (words uint64_t, zeroed), or
     * refuses with TN_E_UNSUPPORTED and a message naming node `id`. */
    tn_status (*analytic_plan)(const tni_node *n, size_t id, const tni_cov_plan *const *in,
                               size_t words, tni_cov_plan *out, tn_ctx *ctx, const char *fn);
    /* Doubles of io->tmp for the tile described by geometry (pointers NULL). */
    size_t (*analytic_tmp_doubles)(const tni_node *n, const tni_cov_io *geometry);
    /* Workspace that outlives tiles (NULL: none); allocation failures fail. */
    tn_status (*analytic_begin)(const tni_node *n, const tni_settings *s, int ntk, tn_ctx *ctx,
                                const char *fn, void **work);
    void (*analytic_end)(void *work);
    /* out (the pairs of the tile) from in; never fails. */
    void (*analytic)(const tni_node *n, const tni_settings *s, const tni_cov_io *io);
} tni_kind_ops;

/* The table, indexed by kind (kinds.c). */
extern const tni_kind_ops *const tni_kinds[TNI_KIND_COUNT];

static inline const tni_kind_ops *tni_kind_of(const tni_node *n)
{
    return tni_kinds[n->kind];
}

/* The shape of input i of node n in graph g. */
static inline const tni_shape *tni_input_shape(const tni_graph *g, const tni_node *n, size_t i)
{
    return &g->nodes[n->input[i]].shape;
}

extern const tni_kind_ops tni_input_ops;
extern const tni_kind_ops tni_dense_ops;
extern const tni_kind_ops tni_activation_ops;
extern const tni_kind_ops tni_conv2d_ops;
extern const tni_kind_ops tni_avg_pool2d_ops;
extern const tni_kind_ops tni_global_avg_pool_ops;
extern const tni_kind_ops tni_flatten_ops;
extern const tni_kind_ops tni_sum_ops;

/* --- helpers the kinds share (kinds.c) --- */

/* Weights then biases, as every kind with a weight matrix lays them out,
 * one bias per output unit (the last dimension of the node's shape), the
 * fan-in the weights per unit.  NTK parameterization draws omega, beta ~
 * N(0, 1) and scales them by scale[0] = sigma_w / sqrt(fan_in), scale[1] =
 * sigma_b in the forward pass; standard parameterization draws W ~ N(0,
 * sigma_w^2 / fan_in), b ~ N(0, sigma_b^2) and uses them as they are.  A
 * kind's resolve and init. */
void tni_resolve_weights_bias(tni_node *n, const tni_settings *s);
void tni_init_weights_bias(const tni_node *n, const tni_settings *s, tni_rng *rng, double *theta);

/* dst (blocks lo..hi of blk values each) = src, or += src when add. */
void tni_blocks_copy(double *dst, const double *src, size_t lo, size_t hi, size_t blk, int add);

/* The bias gradient: g[c] = (add ? g[c] : 0) + scale sum_r z[r width + c],
 * reading z row by row (contiguously). */
void tni_column_sums(size_t rows, size_t width, double scale, const double *z, double *g, int add);

/* The degree of a map bilinear in (parameters, input): one more than the
 * input's at order >= 1 (the dW x_{j-1} term), at most the order. */
size_t tni_degree_bilinear(const tni_node *n, const size_t *din, size_t order);

/* The degree of a linear map of its inputs: the largest input degree. */
size_t tni_degree_linear(const tni_node *n, const size_t *din, size_t order);

/* Pixels of a shape: H W, or 1 for {d}. */
size_t tni_shape_pixels(const tni_shape *s);

/* The common plans: a layer with parameters (a fresh Gaussian field that
 * reaches itself), and a map without (its input's class and reach). */
void tni_cov_plan_fresh(size_t id, size_t pixels, size_t words, tni_cov_plan *out);
void tni_cov_plan_as_input(const tni_cov_plan *in, size_t pixels, size_t words,
                           tni_cov_plan *out);

/* Pairs (i, j) of a tile's rows: j < tni_cov_cols(io, i). */
static inline size_t tni_cov_cols(const tni_cov_io *io, size_t i)
{
    return io->tri ? i + (io->diag ? 1 : 0) : io->b;
}


#endif
