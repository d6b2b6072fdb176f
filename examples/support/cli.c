/* cli.c -- errors, memory, time, flags and names of the example programs (cli.h). */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/*=====================================================================
 * Errors, memory, time
 *===================================================================*/

void ex_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

void ex_check_status(const tn_ctx *ctx, tn_status st, const char *call, const char *file,
                     int line)
{
    if (st == TN_OK) return;
    ex_die("%s:%d: %s failed: %s (%s)", file, line, call, tn_status_string(st),
           tn_ctx_errmsg(ctx));
}

void *ex_xmalloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        ex_die("allocation of %zu x %zu bytes overflows", count, size);
    const size_t bytes = count * size;
    /* malloc(0) may return NULL, which would read as a failure below. */
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL) ex_die("out of memory (%zu bytes)", bytes);
    return p;
}

void *ex_xcalloc(size_t count, size_t size)
{
    void *p = ex_xmalloc(count, size);
    memset(p, 0, count * size);
    return p;
}

void ex_join_path(char *buf, size_t len, const char *dir, const char *name)
{
    const int w = snprintf(buf, len, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= len) ex_die("path too long: %s/%s", dir, name);
}

int ex_mkdir_p(const char *dir)
{
    char path[4096];
    const size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path) {
        fprintf(stderr, "error: bad directory name '%s'\n", dir);
        return -1;
    }
    memcpy(path, dir, len + 1);
    /* Each prefix ending before a '/', then the whole path; EEXIST is fine
     * only for what is already a directory. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/') continue;
        const char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0777) != 0) {
            const int why = errno;
            struct stat sb;
            if (why != EEXIST || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                fprintf(stderr, "error: cannot create directory %s: %s\n", path,
                        strerror(why == EEXIST ? ENOTDIR : why));
                return -1;
            }
        }
        path[i] = saved;
    }
    return 0;
}

double ex_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) ex_die("clock_gettime: %s", strerror(errno));
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*=====================================================================
 * Flags
 *===================================================================*/

/* Whole numbers only: strtoull alone would accept "-1" (wrapping it),
 * leading blanks and trailing junk. */
static int parse_u64(const char *s, uint64_t *v)
{
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    const unsigned long long r = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *v = (uint64_t)r;
    return 0;
}

static int parse_value(const ex_arg *a, const char *s)
{
    switch (a->kind) {
    case EX_ARG_SIZE: {
        uint64_t v;
        if (parse_u64(s, &v) != 0 || v > SIZE_MAX) return -1;
        *(size_t *)a->value = (size_t)v;
        return 0;
    }
    case EX_ARG_U64: return parse_u64(s, (uint64_t *)a->value);
    case EX_ARG_INT: {
        char *end;
        errno = 0;
        const long v = strtol(s, &end, 10);
        if (end == s || *end != '\0' || errno != 0 || v < INT_MIN || v > INT_MAX) return -1;
        *(int *)a->value = (int)v;
        return 0;
    }
    case EX_ARG_DOUBLE: {
        char *end;
        errno = 0;
        const double v = strtod(s, &end);
        if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return -1;
        *(double *)a->value = v;
        return 0;
    }
    case EX_ARG_STRING: *(const char **)a->value = s; return 0;
    case EX_ARG_FLAG: return -1;
    }
    return -1;
}

static void print_default(const ex_arg *a)
{
    switch (a->kind) {
    case EX_ARG_SIZE: printf("%zu", *(const size_t *)a->value); break;
    case EX_ARG_U64: printf("%" PRIu64, *(const uint64_t *)a->value); break;
    case EX_ARG_INT: printf("%d", *(const int *)a->value); break;
    case EX_ARG_DOUBLE: printf("%g", *(const double *)a->value); break;
    case EX_ARG_STRING: {
        const char *s = *(const char *const *)a->value;
        printf("%s", s ? s : "(none)");
        break;
    }
    case EX_ARG_FLAG: printf("%s", *(const int *)a->value ? "on" : "off"); break;
    }
}

static void print_usage(const char *prog, const ex_arg *const *args, const size_t *nargs,
                        size_t ntables, const char *about)
{
    printf("usage: %s [options]\n", prog);
    if (about) printf("%s\n", about);
    printf("options:\n");
    for (size_t t = 0; t < ntables; t++)
        for (size_t i = 0; i < nargs[t]; i++) {
            const ex_arg *a = &args[t][i];
            const char *meta = a->kind == EX_ARG_FLAG     ? ""
                               : a->kind == EX_ARG_DOUBLE ? " X"
                               : a->kind == EX_ARG_STRING ? " S"
                                                          : " N";
            char flag[64];
            snprintf(flag, sizeof flag, "--%s%s", a->name, meta);
            printf("  %-20s %s (default ", flag, a->help ? a->help : "");
            print_default(a);
            printf(")\n");
        }
    printf("  %-20s this text\n", "--help");
}

static _Noreturn void usage_error(const char *prog, const char *fmt, ...) EX_PRINTF(2, 3);

static void usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

/* The flag named name[0..len) in the tables, or NULL. */
static const ex_arg *find_flag(const ex_arg *const *args, const size_t *nargs, size_t ntables,
                               const char *name, size_t len)
{
    for (size_t t = 0; t < ntables; t++)
        for (size_t k = 0; k < nargs[t]; k++)
            if (strlen(args[t][k].name) == len && strncmp(args[t][k].name, name, len) == 0)
                return &args[t][k];
    return NULL;
}

void ex_parse_flags(int argc, char **argv, const ex_arg *const *args, const size_t *nargs,
                    size_t ntables, const char *about)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "example";
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_usage(prog, args, nargs, ntables, about);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) usage_error(prog, "unexpected argument '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        const ex_arg *a =
            find_flag(args, nargs, ntables, name, eq ? (size_t)(eq - name) : strlen(name));
        if (a == NULL) usage_error(prog, "unknown option '%s'", arg);
        if (a->kind == EX_ARG_FLAG) {
            if (eq) usage_error(prog, "option '%s' takes no value", arg);
            *(int *)a->value = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL) {
            if (i + 1 >= argc) usage_error(prog, "option '%s' needs a value", arg);
            value = argv[++i];
        }
        if (parse_value(a, value) != 0)
            usage_error(prog, "bad value for --%s: '%s'", a->name, value);
    }
    /* The first line of every example: the kernels the library runs on. */
    printf("%s\n", tn_blas_info());
}

void ex_parse_args(int argc, char **argv, const ex_arg *args, size_t nargs, const char *about)
{
    ex_parse_flags(argc, argv, &args, &nargs, 1, about);
}

/*=====================================================================
 * Names and lists
 *===================================================================*/

typedef struct name_value {
    const char *name;
    int value;
} name_value;

static int from_name(const char *what, const char *name, const name_value *table, size_t n,
                     const char *choices)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, table[i].name) == 0) return table[i].value;
    ex_die("unknown %s '%s' (%s)", what, name, choices);
}

int ex_optimizer_from_name(const char *name)
{
    static const name_value table[] = {{"sgd", TN_OPT_SGD},         {"momentum", TN_OPT_MOMENTUM},
                                       {"nesterov", TN_OPT_NESTEROV}, {"rmsprop", TN_OPT_RMSPROP},
                                       {"adam", TN_OPT_ADAM}};
    return from_name("optimizer", name, table, sizeof table / sizeof table[0],
                     "sgd, momentum, nesterov, rmsprop, adam");
}

int ex_parameterization_from_name(const char *name)
{
    static const name_value table[] = {{"standard", TN_PARAM_STANDARD}, {"ntk", TN_PARAM_NTK}};
    return from_name("parameterization", name, table, sizeof table / sizeof table[0],
                     "standard, ntk");
}

int ex_loss_from_name(const char *name)
{
    static const name_value table[] = {{"xent", TN_LOSS_SOFTMAX_XENT}, {"mse", TN_LOSS_MSE}};
    return from_name("loss", name, table, sizeof table / sizeof table[0], "xent, mse");
}

tn_activation ex_activation_from_name(const char *name)
{
    static const name_value table[] = {
        {"relu", TN_ACT_RELU},       {"leaky_relu", TN_ACT_LEAKY_RELU}, {"tanh", TN_ACT_TANH},
        {"sigmoid", TN_ACT_SIGMOID}, {"erf", TN_ACT_ERF},               {"gelu", TN_ACT_GELU},
        {"softplus", TN_ACT_SOFTPLUS}, {"identity", TN_ACT_IDENTITY}};
    return (tn_activation)from_name(
        "activation", name, table, sizeof table / sizeof table[0],
        "relu, leaky_relu, tanh, sigmoid, erf, gelu, softplus, identity");
}

size_t ex_parse_list(const char *flag, const char *text, double *out, size_t cap, int whole)
{
    size_t n = 0;
    const char *p = text;
    if (p == NULL || *p == '\0') ex_die("--%s: the list is empty", flag);
    for (;;) {
        char *end;
        errno = 0;
        const double v = strtod(p, &end);
        /* strtod accepts leading blanks, "nan" and "inf": a list of plain
         * numbers has none of them. */
        if (end == p || *p == ' ' || *p == '\t' || errno == ERANGE || !isfinite(v) ||
            (*end != ',' && *end != '\0'))
            ex_die("--%s: '%s' is not a comma-separated list of numbers", flag, text);
        if (whole && (v < 0 || v != floor(v) || v > 9007199254740992.0))
            ex_die("--%s: %g is not a whole number >= 0", flag, v);
        if (n == cap) ex_die("--%s: at most %zu values", flag, cap);
        out[n++] = v;
        if (*end == '\0') break;
        p = end + 1;
    }
    return n;
}

