/*
 * cli.h -- what every example program does around its library calls: exit
 * with a message on error, allocate or die, read the clock, parse its flags.
 *
 *   errors     EX_CHECK(ctx, tn_call(...)) and ex_die: print and exit (an
 *              example may exit on error; the library never does)
 *   memory     ex_xmalloc, ex_xcalloc: overflow-checked, exit when out
 *   files      ex_join_path, ex_mkdir_p
 *   timing     ex_now: monotonic wall-clock seconds
 *   flags      ex_parse_args: "--name value" flags from a table of ex_arg
 *   names      ex_optimizer_from_name ...: flag values -> the library's enums
 *   lists      ex_parse_list: "1,10,100"
 *
 * Part of the examples, not of libtaylornet.
 */
#ifndef TN_EXAMPLES_CLI_H
#define TN_EXAMPLES_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "taylornet.h"

/* Lets the compiler check ex_die's format string against its arguments. */
#if defined(__GNUC__)
#  define EX_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#  define EX_PRINTF(fmt_index, first_arg)
#endif

/*---------------------------------------------------------------------
 * Errors, memory, time
 *-------------------------------------------------------------------*/

/** Prints "error: <message>" to stderr and exits with EXIT_FAILURE. */
_Noreturn void ex_die(const char *fmt, ...) EX_PRINTF(1, 2);

/** When st is not TN_OK: prints where, what was called, the status and
 *  tn_ctx_errmsg(ctx), then exits.  Use through EX_CHECK. */
void ex_check_status(const tn_ctx *ctx, tn_status st, const char *call, const char *file,
                     int line);
#define EX_CHECK(ctx, call) ex_check_status((ctx), (call), #call, __FILE__, __LINE__)

/** malloc of count * size bytes, overflow-checked; exits when out of memory.
 *  A zero size still returns a unique pointer.  Free with free(). */
void *ex_xmalloc(size_t count, size_t size);
/** The same, zero-filled. */
void *ex_xcalloc(size_t count, size_t size);

/** buf = dir "/" name; exits with a message when it does not fit in len
 *  bytes. */
void ex_join_path(char *buf, size_t len, const char *dir, const char *name);

/** Creates dir and its missing parents (like mkdir -p; mode 0777 less the
 *  umask).  An existing directory is fine.  Returns 0, or -1 after printing
 *  the reason to stderr. */
int ex_mkdir_p(const char *dir);

/** Seconds on CLOCK_MONOTONIC (differences are wall-clock time, immune to
 *  clock adjustments). */
double ex_now(void);

/*---------------------------------------------------------------------
 * Flags
 *-------------------------------------------------------------------*/

typedef enum ex_arg_kind {
    EX_ARG_SIZE = 0,    /* size_t *, a whole number >= 0 */
    EX_ARG_INT = 1,     /* int * */
    EX_ARG_U64 = 2,     /* uint64_t * */
    EX_ARG_DOUBLE = 3,  /* double *, finite */
    EX_ARG_STRING = 4,  /* const char **, points into argv */
    EX_ARG_FLAG = 5     /* int *, set to 1; takes no value */
} ex_arg_kind;

typedef struct ex_arg {
    const char *name;   /* without the dashes: "epochs" matches --epochs */
    ex_arg_kind kind;
    void *value;        /* holds the default before parsing */
    const char *help;
} ex_arg;

/** Parses "--name value" and "--name=value" against the flags of the
 *  `ntables` tables args[t][0..nargs[t]) (a program's own flags after the
 *  ones it shares with others).  --help (or -h) prints `about`, each flag
 *  with its help and default, and exits 0; an unknown flag or a malformed
 *  value prints the problem and exits 2.  Every example calls it before
 *  anything else (directly, or through ex_train_flags_parse and
 *  cmp_options_parse): a line every example prints first belongs at its
 *  end. */
void ex_parse_flags(int argc, char **argv, const ex_arg *const *args, const size_t *nargs,
                    size_t ntables, const char *about);
/** ex_parse_flags with one table. */
void ex_parse_args(int argc, char **argv, const ex_arg *args, size_t nargs, const char *about);

/*---------------------------------------------------------------------
 * Names and lists
 *-------------------------------------------------------------------*/

/** "sgd", "momentum", "nesterov", "rmsprop", "adam" -> TN_OPT_*; exits on
 *  anything else. */
int ex_optimizer_from_name(const char *name);
/** "standard", "ntk" -> TN_PARAM_*; exits on anything else. */
int ex_parameterization_from_name(const char *name);
/** "xent", "mse" -> TN_LOSS_*; exits on anything else. */
int ex_loss_from_name(const char *name);
/** "relu", "leaky_relu", "tanh", "sigmoid", "erf", "gelu", "softplus",
 *  "identity" -> TN_ACT_*; exits on anything else. */
tn_activation ex_activation_from_name(const char *name);

/** Parses a comma-separated list of finite numbers ("1,10,100") into
 *  out[0..cap) and returns how many there were.  Exits with a message
 *  naming --flag when the text is empty or malformed, holds more than cap
 *  values, or (whole != 0) holds a value that is not a whole number >= 0. */
size_t ex_parse_list(const char *flag, const char *text, double *out, size_t cap, int whole);

#endif
