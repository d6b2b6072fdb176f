/* test_io.c -- tn_net_save / tn_net_load: bit-exact round trips, atomic
 * overwrite, and refusal of every damaged file.
 *
 * The format (lib/io/netfile.h), version 2: magic (8 bytes), u32 version,
 * u32 ndim, ndim x u64 shape, u32 parameterization, u32 sigma_w-set flag,
 * 3 x f64 settings, u64 node count, per node u32 kind, u32 input count, u64
 * input ids, u32 attribute count, u64 attributes; u64 output node, u64 P,
 * P x f64 theta, and a CRC-32 (IEEE, zlib's crc32) of every byte before it.
 * Integers are little-endian throughout.  Files of version 1 (libtaylornet
 * 0.1: a list of dense and activation layers) still load: tests/data holds
 * one written by 0.1.
 *
 * What is asserted for damaged files, from reading netfile.c:
 *   - Truncation to any length 0..len-1 is TN_E_FORMAT.  The file exists and
 *     reads fine, so never TN_E_IO; length 0 included (an empty file "is not
 *     a taylornet file").  Lengths 12..15 are "truncated", longer ones fail
 *     the checksum (CRC-32 detects the loss of the tail with probability
 *     1 - 2^-32; the test data are fixed, so this is deterministic).
 *   - One byte changed anywhere is TN_E_FORMAT, except in the version field:
 *     the version is checked before the checksum (a newer format may
 *     checksum differently), so a version made larger is TN_E_VERSION and
 *     one made 0 is TN_E_FORMAT.  Elsewhere the CRC catches the change: it
 *     detects every error burst of up to 32 bits.
 *   - Fields that are inconsistent under a *valid* checksum (the test
 *     recomputes it) are TN_E_FORMAT too: the parser validates, it does not
 *     trust the CRC.
 * Every failure leaves *out NULL and a new message in the context. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TU_CONTEXT_PER_TEST
static char marker[512];

static void mark(void)
{
    ck_assert_int_eq(tn_ctx_set_threads(ctx, 0), TN_E_INVALID_ARG);
    snprintf(marker, sizeof marker, "%s", tn_ctx_errmsg(ctx));
}

static void put_u64(unsigned char *b, size_t off, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static void put_f64(unsigned char *b, size_t off, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    put_u64(b, off, v);
}

/* ---- files ---- */

static void spit(const char *path, const unsigned char *b, size_t len)
{
    /* A new file each time: ext4 flushes a file truncated and rewritten in
     * place on close (auto_da_alloc), which costs milliseconds per file. */
    unlink(path);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    if (len) ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* The names in dir other than . and .., sorted, joined by '/'. */
static void list_dir(const char *dir, char *out, size_t cap)
{
    char names[16][256];
    size_t n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        ck_assert_msg(n < 16, "too many files in %s", dir);
        snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)         /* insertion sort */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[256];
            memcpy(t, names[j], sizeof t);
            memcpy(names[j], names[j - 1], sizeof t);
            memcpy(names[j - 1], t, sizeof t);
        }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strncat(out, "/", cap - strlen(out) - 1);
        strncat(out, names[i], cap - strlen(out) - 1);
    }
}

static void remove_dir(char *dir, const char *const *files, size_t nfiles)
{
    for (size_t i = 0; i < nfiles; i++) {
        char *p = tu_join(dir, files[i]);
        unlink(p);
        free(p);
    }
    ck_assert_msg(rmdir(dir) == 0, "%s not empty at the end", dir);
    free(dir);
}

/* Loading path must fail with `want`, *out NULL, and a new message. */
static void expect_load_fails_(const char *path, tn_status want, const char *what, int line)
{
    double garbage;
    tn_net *out = (tn_net *)&garbage;
    mark();
    const tn_status st = tn_net_load(ctx, path, &out);
    const char *m = tn_ctx_errmsg(ctx);
    ck_assert_msg(st == want, "line %d: %s: load -> %s, expected %s (%s)", line, what,
                  tn_status_string(st), tn_status_string(want), m);
    ck_assert_msg(out == NULL, "line %d: %s: *out not NULL after failure", line, what);
    ck_assert_msg(m[0] != '\0' && strcmp(m, marker) != 0, "line %d: %s: no message", line, what);
    if (st == TN_OK) tn_net_free(out);
}
#define EXPECT_LOAD_FAILS(path, want, what) expect_load_fails_((path), (want), (what), __LINE__)

/* ---- networks ---- */

#define N_ARCH 7

/* _i-th test architecture: both parameterizations, every activation, a
 * layer list longer than the initial capacity, an image input, explicit
 * and default settings, and trained (not freshly drawn) parameters. */
static tn_net *arch(int which)
{
    tn_net *net = NULL;
    switch (which) {
    case 0: {   /* ReLU, NTK, every setting default (sigma_w resolved to sqrt 2) */
        const size_t w[] = {7, 3};
        const size_t d = 5;
        TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
        TN_CK(ctx, tn_net_add_dense(net, w[0]));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_dense(net, w[1]));
        TN_CK(ctx, tn_net_init(net, 1));
        break;
    }
    case 1: {   /* tanh, standard, explicit sigma_w and sigma_b */
        const size_t d = 5;
        TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
        TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
        TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_W, 1.3));
        TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.2));
        TN_CK(ctx, tn_net_add_dense(net, 6));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_dense(net, 4));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_dense(net, 2));
        TN_CK(ctx, tn_net_init(net, 2));
        break;
    }
    case 2: {   /* every other activation, 13 layers, a leaky slope, sigma_b 0 */
        const size_t d = 3;
        const tn_activation acts[] = {TN_ACT_LEAKY_RELU, TN_ACT_GELU, TN_ACT_SOFTPLUS,
                                      TN_ACT_SIGMOID, TN_ACT_ERF, TN_ACT_IDENTITY};
        TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
        TN_CK(ctx, tn_net_set(net, TN_NET_LEAKY_SLOPE, 0.2));
        TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.0));
        for (size_t i = 0; i < 6; i++) {
            TN_CK(ctx, tn_net_add_dense(net, 4));
            TN_CK(ctx, tn_net_add_activation(net, acts[i]));
        }
        TN_CK(ctx, tn_net_add_dense(net, 2));
        TN_CK(ctx, tn_net_init(net, 3));
        break;
    }
    case 3: {   /* image input {H, W, C}, standard */
        const size_t shape[3] = {3, 4, 2};
        TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
        TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
        TN_CK(ctx, tn_net_add_dense(net, 5));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_dense(net, 3));
        TN_CK(ctx, tn_net_init(net, 4));
        break;
    }
    case 4: {   /* the smallest net: one dense layer of width 1 */
        const size_t d = 2;
        TN_CK(ctx, tn_net_create(ctx, &d, 1, &net));
        TN_CK(ctx, tn_net_add_dense(net, 1));
        TN_CK(ctx, tn_net_init(net, 5));
        break;
    }
    case 6: {   /* a residual CNN: strided SAME conv, a projection shortcut, pooling */
        const size_t shape[3] = {6, 5, 2};
        size_t in, main;
        TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
        TN_CK(ctx, tn_net_add_conv2d(net, 3, 3, 3, 1, TN_PAD_SAME));
        TN_CK(ctx, tn_net_current(net, &in));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_RELU));
        TN_CK(ctx, tn_net_add_conv2d(net, 4, 3, 2, 2, TN_PAD_SAME));
        TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
        TN_CK(ctx, tn_net_add_conv2d(net, 4, 2, 2, 1, TN_PAD_SAME));
        TN_CK(ctx, tn_net_current(net, &main));
        TN_CK(ctx, tn_net_branch(net, in));
        TN_CK(ctx, tn_net_add_conv2d(net, 4, 1, 1, 2, TN_PAD_VALID));
        TN_CK(ctx, tn_net_add_sum(net, main));
        TN_CK(ctx, tn_net_add_avg_pool2d(net, 2, 2, 1, TN_PAD_VALID));
        TN_CK(ctx, tn_net_add_global_avg_pool(net));
        TN_CK(ctx, tn_net_add_dense(net, 3));
        TN_CK(ctx, tn_net_init(net, 7));
        break;
    }
    default: {  /* trained: theta no longer what any seed draws */
        const size_t w[] = {6, 2};
        net = tu_mlp(ctx, 4, w, 2, TN_ACT_SOFTPLUS, TN_PARAM_NTK, 6);
        tn_trainer *tr = NULL;
        TN_CK(ctx, tn_trainer_create(net, &tr));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_OPTIMIZER, TN_OPT_ADAM));
        TN_CK(ctx, tn_trainer_set(tr, TN_TRAIN_LEARNING_RATE, 0.1));
        double *x = tu_random(8 * 4, 1, 1.0), *y = tu_random(8 * 2, 2, 1.0);
        for (int s = 0; s < 3; s++) TN_CK(ctx, tn_trainer_step(tr, x, y, 8, NULL));
        free(x), free(y);
        tn_trainer_free(tr);
        break;
    }
    }
    return net;
}

static int same_params(const tn_net *a, const tn_net *b)
{
    const size_t P = tn_net_num_params(a);
    if (P != tn_net_num_params(b)) return 0;
    double *ta = tu_params(ctx, a), *tb = tu_params(ctx, b);
    const int same = memcmp(ta, tb, P * sizeof(double)) == 0;
    free(ta), free(tb);
    return same;
}

/*=====================================================================
 * Round trips
 *===================================================================*/

START_TEST(round_trip_is_bit_exact)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn"), *path2 = tu_join(dir, "again.tnn");
    tn_net *net = arch(_i), *back = NULL;
    TN_CK(ctx, tn_net_save(net, path));
    TN_CK(ctx, tn_net_load(ctx, path, &back));
    ck_assert_ptr_nonnull(back);

    const size_t P = tn_net_num_params(net), O = tn_net_output_dim(net),
                 d = tn_net_input_size(net), n = 6;
    ck_assert_uint_eq(tn_net_num_params(back), P);
    ck_assert_uint_eq(tn_net_output_dim(back), O);
    ck_assert_uint_eq(tn_net_input_size(back), d);
    const tn_net_param ps[] = {TN_NET_PARAMETERIZATION, TN_NET_SIGMA_W, TN_NET_SIGMA_B,
                               TN_NET_LEAKY_SLOPE};
    for (size_t i = 0; i < 4; i++) {
        double a, b;
        TN_CK(ctx, tn_net_get(net, ps[i], &a));
        TN_CK(ctx, tn_net_get(back, ps[i], &b));
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "arch %d: setting %d %.17g -> %.17g", _i,
                      (int)ps[i], a, b);
    }
    ck_assert_msg(same_params(net, back), "arch %d: theta differs", _i);

    /* The same function, bit for bit: forward, JVP, VJP. */
    double *x = tu_random(n * d, 7, 1.0), *t = tu_random(P, 8, 1.0), *u = tu_random(n * O, 9, 1.0);
    double *ya = malloc(n * O * sizeof(double)), *yb = malloc(n * O * sizeof(double));
    double *ga = malloc(P * sizeof(double)), *gb = malloc(P * sizeof(double));
    TN_CK(ctx, tn_net_forward(net, x, n, ya));
    TN_CK(ctx, tn_net_forward(back, x, n, yb));
    ck_assert_msg(memcmp(ya, yb, n * O * sizeof(double)) == 0, "arch %d: forward differs", _i);
    TN_CK(ctx, tn_net_jvp(net, x, n, t, ya));
    TN_CK(ctx, tn_net_jvp(back, x, n, t, yb));
    ck_assert_msg(memcmp(ya, yb, n * O * sizeof(double)) == 0, "arch %d: jvp differs", _i);
    TN_CK(ctx, tn_net_vjp(net, x, n, u, ga));
    TN_CK(ctx, tn_net_vjp(back, x, n, u, gb));
    ck_assert_msg(memcmp(ga, gb, P * sizeof(double)) == 0, "arch %d: vjp differs", _i);

    /* Saving the loaded net writes the same bytes: nothing (shape, the
     * "sigma_w set" flag, layer kinds) was lost or normalized on the way. */
    TN_CK(ctx, tn_net_save(back, path2));
    size_t la, lb;
    unsigned char *a = tu_slurp(path, &la), *b = tu_slurp(path2, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_msg(memcmp(a, b, la) == 0, "arch %d: re-saved file differs", _i);
    /* The checksum is zlib's CRC-32 of everything before it. */
    ck_assert_uint_eq(tu_get_u32(a, la - 4), tu_crc32(a, la - 4));

    /* The loaded net is initialized and trains exactly like the original. */
    tn_trainer *ta = NULL, *tb = NULL;
    TN_CK(ctx, tn_trainer_create(net, &ta));
    TN_CK(ctx, tn_trainer_create(back, &tb));
    TN_CK(ctx, tn_trainer_step(ta, x, u, n, NULL));
    TN_CK(ctx, tn_trainer_step(tb, x, u, n, NULL));
    ck_assert(same_params(net, back));
    tn_trainer_free(ta);
    tn_trainer_free(tb);

    free(a), free(b), free(x), free(t), free(u), free(ya), free(yb), free(ga), free(gb);
    tn_net_free(back);
    tn_net_free(net);
    static const char *const files[] = {"net.tnn", "again.tnn"};
    remove_dir(dir, files, 2);
    free(path), free(path2);
}
END_TEST

/* Saving over an existing file replaces it whole, through a temporary file
 * in the same directory that must not survive the call. */
START_TEST(save_overwrites_atomically)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn");
    char listing[1024];
    tn_net *a = arch(0), *b = arch(1), *back = NULL;
    TN_CK(ctx, tn_net_save(a, path));
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "net.tnn");
    TN_CK(ctx, tn_net_save(b, path));
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "net.tnn");
    TN_CK(ctx, tn_net_load(ctx, path, &back));
    ck_assert(same_params(back, b));
    ck_assert_uint_eq(tn_net_output_dim(back), tn_net_output_dim(b));
    tn_net_free(back);
    /* And back again, to a shorter file: nothing of the longer one remains. */
    TN_CK(ctx, tn_net_save(a, path));
    TN_CK(ctx, tn_net_load(ctx, path, &back));
    ck_assert(same_params(back, a));
    tn_net_free(back);
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "net.tnn");

    /* A save that fails at the last step (the target is a directory, so the
     * rename fails) removes its temporary file. */
    char *sub = tu_join(dir, "sub");
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    mark();
    ck_assert_int_eq(tn_net_save(a, sub), TN_E_IO);
    ck_assert(strcmp(tn_ctx_errmsg(ctx), marker) != 0);
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "net.tnn/sub");
    ck_assert_int_eq(rmdir(sub), 0);
    free(sub);

    tn_net_free(a);
    tn_net_free(b);
    static const char *const files[] = {"net.tnn"};
    remove_dir(dir, files, 1);
    free(path);
}
END_TEST

START_TEST(io_errors)
{
    char *dir = tu_make_dir("test_io");
    tn_net *net = arch(0);

    /* A file that does not exist. */
    char *missing = tu_join(dir, "missing.tnn");
    EXPECT_LOAD_FAILS(missing, TN_E_IO, "missing file");

    /* Saving into a directory that does not exist: nothing is created. */
    char *nodir = tu_join(dir, "no/such/dir/net.tnn");
    mark();
    ck_assert_int_eq(tn_net_save(net, nodir), TN_E_IO);
    ck_assert(strcmp(tn_ctx_errmsg(ctx), marker) != 0 && tn_ctx_errmsg(ctx)[0] != '\0');
    char listing[1024];
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "");

    /* An unwritable directory (meaningless for root, who writes anyway). */
    if (geteuid() != 0) {
        char *ro = tu_join(dir, "ro"), *inro = tu_join(dir, "ro/net.tnn");
        ck_assert_int_eq(mkdir(ro, 0500), 0);
        mark();
        ck_assert_int_eq(tn_net_save(net, inro), TN_E_IO);
        ck_assert(strcmp(tn_ctx_errmsg(ctx), marker) != 0);
        ck_assert_int_eq(rmdir(ro), 0);
        free(ro), free(inro);
    }

    tn_net_free(net);
    remove_dir(dir, NULL, 0);
    free(missing), free(nodir);
}
END_TEST

/* A directory opens (fopen "rb" succeeds on Linux) but cannot be read:
 * "cannot open or read" is TN_E_IO.  (Seeking to the end of a directory
 * gives no meaningful size, so a reader must not allocate by it.) */
START_TEST(load_a_directory)
{
    /* The test directory itself: it exists already, so nothing needs
     * cleaning up even if the load aborts (ASan aborts on absurd sizes). */
    const char *base = getenv("TN_TEST_TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    EXPECT_LOAD_FAILS(base, TN_E_IO, "a directory");
}
END_TEST

/* A FIFO is not a regular file: refused at once.  Opening one for reading
 * blocks until a writer comes, so a loader that opens before it checks
 * would wait forever; the alarm turns that into a failure of this test. */
START_TEST(load_a_fifo)
{
    char *dir = tu_make_dir("test_io"), *fifo = tu_join(dir, "fifo.tnn");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    alarm(20);
    EXPECT_LOAD_FAILS(fifo, TN_E_IO, "a FIFO");
    alarm(0);
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "not a regular file"));
    static const char *const files[] = {"fifo.tnn"};
    remove_dir(dir, files, 1);
    free(fifo);
}
END_TEST

/* A save that fails mid-write (here: the file size limit, EFBIG, in a
 * child process) reports TN_E_IO naming the write, leaves the file it was
 * replacing as it was, and removes its temporary. */
START_TEST(failed_write_leaves_the_old_file)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn");
    tn_net *small = arch(4), *big = arch(2);
    TN_CK(ctx, tn_net_save(small, path));
    size_t len_small;
    unsigned char *before = tu_slurp(path, &len_small);
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The limit makes write() fail with EFBIG past it instead of
         * killing the process with SIGXFSZ. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)len_small + 16, (rlim_t)len_small + 16};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
        const tn_status st = tn_net_save(big, path);
        const int named = strstr(tn_ctx_errmsg(ctx), "writing") != NULL;
        /* The child frees its copies too: under valgrind a leak found at
         * its exit would turn its status into valgrind's error code. */
        tn_net_free(small);
        tn_net_free(big);
        free(before), free(path), free(dir);
        _exit(st == TN_E_IO && named ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    size_t len;
    unsigned char *after = tu_slurp(path, &len);
    ck_assert(len == len_small && memcmp(before, after, len) == 0);
    char listing[1024];
    list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "net.tnn");
    free(before), free(after);
    tn_net_free(small);
    tn_net_free(big);
    static const char *const files[] = {"net.tnn"};
    remove_dir(dir, files, 1);
    free(path);
}
END_TEST

/* A pid that no process has: a child's, after it has been reaped. */
static long dead_pid(void)
{
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    ck_assert(kill(pid, 0) == -1 && errno == ESRCH);
    return (long)pid;
}

static void touch(const char *dir, const char *name)
{
    char *p = tu_join(dir, name);
    spit(p, (const unsigned char *)"partial", 7);
    free(p);
}

/* Temporaries of killed saves are removed by the next save to the same
 * path -- only the provably orphaned ones: a dead pid and no lock held.
 * Everything else stays: live pids, a dead pid's file locked by a live
 * process (a writer on another host or in another pid namespace), names
 * of another form, another path's temporaries. */
START_TEST(orphaned_temporaries_are_removed)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn");
    tn_net *net = arch(0);
    const long dead = dead_pid(), dead2 = dead_pid();
    char orphan[64], orphan2[64], locked[64], live[64], other[64];
    snprintf(orphan, sizeof orphan, "net.tnn.%ld.0.tmp", dead);
    snprintf(orphan2, sizeof orphan2, "net.tnn.%ld.17.tmp", dead2);
    snprintf(locked, sizeof locked, "net.tnn.%ld.1.tmp", dead);
    snprintf(live, sizeof live, "net.tnn.%ld.0.tmp", (long)getppid());
    snprintf(other, sizeof other, "other.tnn.%ld.0.tmp", dead);
    const char *keep[] = {live, other, "net.tnn.tmp", "net.tnn.12x.0.tmp", "net.tnn.0.0.tmp",
                          "net.tnn.5.0.tmp.bak", locked};
    touch(dir, orphan);
    touch(dir, orphan2);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) touch(dir, keep[i]);

    /* A live process holds a write lock on `locked` until told to stop. */
    int go[2], ready[2];
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(ready), 0);
    const pid_t holder = fork();
    ck_assert_int_ge(holder, 0);
    if (holder == 0) {
        char *lp = tu_join(dir, locked);
        const int fd = open(lp, O_WRONLY);
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        free(lp);
        char c = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');

    TN_CK(ctx, tn_net_save(net, path));
    char listing[1024];
    list_dir(dir, listing, sizeof listing);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        ck_assert_msg(strstr(listing, keep[i]) != NULL, "%s was removed: %s", keep[i], listing);
    ck_assert_msg(strstr(listing, orphan) == NULL, "%s left: %s", orphan, listing);
    ck_assert_msg(strstr(listing, orphan2) == NULL, "%s left: %s", orphan2, listing);

    /* Once the lock holder is gone, its file is an orphan too, and the next
     * save removes it. */
    ck_assert_int_eq(write(go[1], "x", 1), 1);
    ck_assert_int_eq(waitpid(holder, NULL, 0), holder);
    TN_CK(ctx, tn_net_save(net, path));
    list_dir(dir, listing, sizeof listing);
    ck_assert_msg(strstr(listing, locked) == NULL, "%s left: %s", locked, listing);
    ck_assert_msg(strstr(listing, live) != NULL, "%s removed: %s", live, listing);
    close(go[0]), close(go[1]), close(ready[0]), close(ready[1]);

    tn_net_free(net);
    const char *files[] = {"net.tnn", live, other, "net.tnn.tmp", "net.tnn.12x.0.tmp",
                           "net.tnn.0.0.tmp", "net.tnn.5.0.tmp.bak"};
    remove_dir(dir, files, sizeof files / sizeof files[0]);
    free(path);
}
END_TEST

/*=====================================================================
 * Damaged files
 *===================================================================*/

START_TEST(not_a_net_file)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "x.tnn"), *good = tu_join(dir, "good.tnn");
    tn_net *net = arch(0);
    TN_CK(ctx, tn_net_save(net, good));
    size_t len;
    unsigned char *b = tu_slurp(good, &len);

    /* The wrong magic, with the checksum made valid again. */
    b[1] = 'X';
    tu_reseal(b, len);
    spit(path, b, len);
    EXPECT_LOAD_FAILS(path, TN_E_FORMAT, "wrong magic");
    /* Text: the 0D 0A in the magic is what a text-mode transfer mangles. */
    const char text[] = "hello, this is not a network\n";
    spit(path, (const unsigned char *)text, sizeof text - 1);
    EXPECT_LOAD_FAILS(path, TN_E_FORMAT, "text file");
    spit(path, b, 0);
    EXPECT_LOAD_FAILS(path, TN_E_FORMAT, "empty file");

    free(b);
    tn_net_free(net);
    static const char *const files[] = {"x.tnn", "good.tnn"};
    remove_dir(dir, files, 2);
    free(path), free(good);
}
END_TEST

START_TEST(every_truncation_is_a_format_error)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn"), *cut = tu_join(dir, "cut.tnn");
    tn_net *net = arch(_i);
    TN_CK(ctx, tn_net_save(net, path));
    size_t len;
    unsigned char *b = tu_slurp(path, &len);
    for (size_t k = 0; k < len; k++) {
        char what[96];
        snprintf(what, sizeof what, "arch %d cut to %zu of %zu bytes", _i, k, len);
        spit(cut, b, k);
        EXPECT_LOAD_FAILS(cut, TN_E_FORMAT, what);
    }
    /* Longer is as wrong as shorter: a byte appended. */
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0;
    spit(cut, longer, len + 1);
    EXPECT_LOAD_FAILS(cut, TN_E_FORMAT, "one byte appended");
    free(longer), free(b);
    tn_net_free(net);
    static const char *const files[] = {"net.tnn", "cut.tnn"};
    remove_dir(dir, files, 2);
    free(path), free(cut);
}
END_TEST

/* What changing byte i to v must give (see the top of the file). */
static tn_status expected_for_change(const unsigned char *orig, size_t i, unsigned char v)
{
    if (i < 8 || i >= 12) return TN_E_FORMAT;
    unsigned char ver[4];
    memcpy(ver, orig + 8, 4);
    ver[i - 8] = v;
    const uint32_t version = tu_get_u32(ver, 0);
    /* 0 is not a valid version; 1 and 2 are read, and then the checksum fails. */
    return version > 2 ? TN_E_VERSION : TN_E_FORMAT;
}

START_TEST(every_byte_flip_is_detected)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn"), *bad = tu_join(dir, "bad.tnn");
    tn_net *net = arch(_i);
    TN_CK(ctx, tn_net_save(net, path));
    size_t len;
    unsigned char *orig = tu_slurp(path, &len), *b = malloc(len);
    ck_assert_uint_eq(tu_get_u32(orig, 8), 2);             /* this test knows version 2 */
    /* Every byte for files up to 2 KiB, else a stride that still visits
     * every field of the header and the checksum. */
    const size_t stride = len <= 2048 ? 1 : 7;
    for (size_t i = 0; i < len; i += (i < 128 || i + 8 >= len) ? 1 : stride) {
        /* All bits of the byte, then the lowest bit only. */
        const unsigned char masks[2] = {0xff, (unsigned char)(1u << (i % 8))};
        for (int m = 0; m < 2; m++) {
            memcpy(b, orig, len);
            b[i] ^= masks[m];
            spit(bad, b, len);
            char what[80];
            snprintf(what, sizeof what, "arch %d byte %zu of %zu ^ %#x", _i, i, len, masks[m]);
            EXPECT_LOAD_FAILS(bad, expected_for_change(orig, i, b[i]), what);
        }
    }
    free(orig), free(b);
    tn_net_free(net);
    static const char *const files[] = {"net.tnn", "bad.tnn"};
    remove_dir(dir, files, 2);
    free(path), free(bad);
}
END_TEST

/* The version check on its own: a valid file whose version is raised, with
 * the checksum recomputed so that nothing else is wrong. */
START_TEST(newer_version_is_refused)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn"), *bad = tu_join(dir, "bad.tnn");
    tn_net *net = arch(1);
    TN_CK(ctx, tn_net_save(net, path));
    size_t len;
    unsigned char *b = tu_slurp(path, &len);

    /* First: the fix-up itself yields files the loader accepts (a parameter
     * byte changed, checksum recomputed, loads, with that one change). */
    const size_t P = tn_net_num_params(net), theta_off = len - 4 - 8 * P;
    b[theta_off + 3] ^= 0x10;
    tu_reseal(b, len);
    spit(bad, b, len);
    tn_net *back = NULL;
    TN_CK(ctx, tn_net_load(ctx, bad, &back));
    ck_assert(!same_params(net, back));
    tn_net_free(back);
    b[theta_off + 3] ^= 0x10;
    tu_reseal(b, len);

    const uint32_t newer[] = {3, 4, 0x100, 0xffffffffu};
    for (size_t i = 0; i < 4; i++) {
        tu_put_u32(b, 8, newer[i]);
        tu_reseal(b, len);
        spit(bad, b, len);
        char what[64];
        snprintf(what, sizeof what, "version %u", (unsigned)newer[i]);
        EXPECT_LOAD_FAILS(bad, TN_E_VERSION, what);
        /* The message says which version the file has. */
        char num[16];
        snprintf(num, sizeof num, "%u", (unsigned)newer[i]);
        ck_assert_msg(strstr(tn_ctx_errmsg(ctx), num) != NULL, "message '%s' lacks %s",
                      tn_ctx_errmsg(ctx), num);
    }
    tu_put_u32(b, 8, 0);
    tu_reseal(b, len);
    spit(bad, b, len);
    EXPECT_LOAD_FAILS(bad, TN_E_FORMAT, "version 0");
    /* Version 2 again: loads. */
    tu_put_u32(b, 8, 2);
    tu_reseal(b, len);
    spit(bad, b, len);
    TN_CK(ctx, tn_net_load(ctx, bad, &back));
    ck_assert(same_params(net, back));
    tn_net_free(back);

    free(b);
    tn_net_free(net);
    static const char *const files[] = {"net.tnn", "bad.tnn"};
    remove_dir(dir, files, 2);
    free(path), free(bad);
}
END_TEST

/* Fields that contradict each other or their ranges, under a valid
 * checksum.  Offsets for architecture 0 (ndim 1, d = 5; nodes dense 7,
 * ReLU, dense 3; P = 5*7+7 + 7*3+3 = 66):
 *   12 ndim, 16 shape[0], 24 parameterization, 28 sigma_w-set,
 *   32 sigma_w, 40 sigma_b, 48 slope, 56 node count,
 *   node 1 at 64 (kind, 68 inputs, 72 input id, 80 attributes, 84 width),
 *   node 2 at 92 (kind, 96, 100 input id, 108, 112 activation),
 *   node 3 at 120 (kind, 124, 128 input id, 136, 140 width),
 *   148 output node, 156 P, 164 theta, 692 CRC (len 696). */
START_TEST(inconsistent_fields_are_format_errors)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn"), *bad = tu_join(dir, "bad.tnn");
    tn_net *net = arch(0);
    ck_assert_uint_eq(tn_net_num_params(net), 66);
    TN_CK(ctx, tn_net_save(net, path));
    size_t len;
    unsigned char *orig = tu_slurp(path, &len), *b = malloc(len + 16);
    ck_assert_uint_eq(len, 164 + 8 * 66 + 4);

    enum { U32, U64, F64 };
    const struct {
        const char *what;
        size_t off;
        int type;
        double v;
    } cases[] = {
        {"ndim 2", 12, U32, 2},
        {"ndim 0", 12, U32, 0},
        {"input dimension 0", 16, U64, 0},
        {"input dimension changed (P no longer matches)", 16, U64, 6},
        {"input dimension 2^62 (sizes overflow)", 16, U64, 4611686018427387904.0},
        {"parameterization 2", 24, U32, 2},
        {"sigma_w-set flag 2", 28, U32, 2},
        {"sigma_w 0", 32, F64, 0},
        {"sigma_w -1", 32, F64, -1},
        {"sigma_w NaN", 32, F64, NAN},
        {"sigma_w inf", 32, F64, INFINITY},
        {"sigma_b -0.5", 40, F64, -0.5},
        {"sigma_b NaN", 40, F64, NAN},
        {"slope -1", 48, F64, -1},
        {"slope inf", 48, F64, INFINITY},
        {"no nodes", 56, U64, 0},
        {"one node fewer", 56, U64, 2},
        {"one node more", 56, U64, 4},
        {"2^40 nodes", 56, U64, 1099511627776.0},
        {"node kind 0 (a second input)", 64, U32, 0},
        {"node kind 8 (none)", 64, U32, 8},
        {"node kind 7 (sum) with one input", 64, U32, 7},
        {"dense with 2 inputs", 68, U32, 2},
        {"dense reading itself", 72, U64, 1},
        {"activation reading a later node", 100, U64, 3},
        {"activation reading node 2^63", 100, U64, 9223372036854775808.0},
        {"dense with 2 attributes", 80, U32, 2},
        {"dense width 0", 84, U64, 0},
        {"dense width changed", 84, U64, 8},
        {"dense width 2^62 (the parameter count overflows)", 84, U64, 4611686018427387904.0},
        {"activation 8", 112, U64, 8},
        {"activation 2^32 - 1", 112, U64, 4294967295.0},
        {"activation node made dense", 92, U32, 1},
        {"activation node made a conv2d", 92, U32, 3},
        {"the second dense reading the input (the ReLU leads nowhere)", 128, U64, 0},
        {"output node 2, not the last", 148, U64, 2},
        {"output node 4", 148, U64, 4},
        {"P one more", 156, U64, 67},
        {"P one less", 156, U64, 65},
        {"P 0", 156, U64, 0},
        {"theta NaN", 164, F64, NAN},
        {"theta inf", 164 + 8 * 65, F64, -INFINITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, orig, len);
        if (cases[i].type == U32) tu_put_u32(b, cases[i].off, (uint32_t)cases[i].v);
        else if (cases[i].type == U64) put_u64(b, cases[i].off, (uint64_t)cases[i].v);
        else put_f64(b, cases[i].off, cases[i].v);
        tu_reseal(b, len);
        spit(bad, b, len);
        EXPECT_LOAD_FAILS(bad, TN_E_FORMAT, cases[i].what);
    }
    /* Sizes that overflow are damage, not a lack of memory (TN_E_NOMEM
     * would invite a retry): a dense layer whose parameter count overflows
     * or exceeds the file, and (below) an input shape whose size does. */
    const uint64_t widths[] = {(uint64_t)1 << 62, (uint64_t)1 << 63, UINT64_MAX, 1u << 30};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        memcpy(b, orig, len);
        put_u64(b, 84, widths[i]);      /* node 1's width */
        tu_reseal(b, len);
        spit(bad, b, len);
        EXPECT_LOAD_FAILS(bad, TN_E_FORMAT, "a dense width whose parameters overflow");
    }
    /* A bias scale that makes sigma_b theta_b infinite (NTK parameterization). */
    memcpy(b, orig, len);
    put_f64(b, 40, 1e308);
    tu_reseal(b, len);
    spit(bad, b, len);
    EXPECT_LOAD_FAILS(bad, TN_E_FORMAT, "sigma_b 1e308: bias scale times theta overflows");
    /* Extra bytes before the checksum (a valid checksum over them). */
    memcpy(b, orig, len - 4);
    memset(b + len - 4, 0, 8);
    tu_reseal(b, len + 8);
    spit(bad, b, len + 8);
    EXPECT_LOAD_FAILS(bad, TN_E_FORMAT, "8 extra bytes");
    /* A parameter dropped (and P adjusted down) no longer fits the layers. */
    memcpy(b, orig, len - 12);
    put_u64(b, 156, 65);
    tu_reseal(b, len - 8);
    spit(bad, b, len - 8);
    EXPECT_LOAD_FAILS(bad, TN_E_FORMAT, "a parameter dropped");

    free(orig), free(b);
    tn_net_free(net);
    static const char *const files[] = {"net.tnn", "bad.tnn"};
    remove_dir(dir, files, 2);
    free(path), free(bad);
}
END_TEST

/* A network written by libtaylornet 0.1 (format version 1; tests/data,
 * made by: {3, 4, 2} input, standard parameterization, sigma_b 0.3, dense
 * 5, tanh, dense 4, leaky ReLU, dense 3, tn_net_init seed 2024) loads as the
 * same network this library builds from the same calls: the same
 * parameters (the draw is reproducible) and the same outputs, bit for bit;
 * saved again, it is written as version 2. */
START_TEST(version_1_files_load)
{
    const char *data = getenv("TN_TEST_DATA");
    ck_assert_msg(data != NULL, "TN_TEST_DATA is not set (tests/meson.build sets it)");
    char *path = tu_join(data, "net-v1.tnn");
    tn_net *old = NULL, *net = NULL;
    TN_CK(ctx, tn_net_load(ctx, path, &old));
    const size_t shape[3] = {3, 4, 2};
    TN_CK(ctx, tn_net_create(ctx, shape, 3, &net));
    TN_CK(ctx, tn_net_set(net, TN_NET_PARAMETERIZATION, TN_PARAM_STANDARD));
    TN_CK(ctx, tn_net_set(net, TN_NET_SIGMA_B, 0.3));
    TN_CK(ctx, tn_net_add_dense(net, 5));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_TANH));
    TN_CK(ctx, tn_net_add_dense(net, 4));
    TN_CK(ctx, tn_net_add_activation(net, TN_ACT_LEAKY_RELU));
    TN_CK(ctx, tn_net_add_dense(net, 3));
    TN_CK(ctx, tn_net_init(net, 2024));
    ck_assert(same_params(old, net));
    double x[24], ya[3], yb[3];
    for (int i = 0; i < 24; i++) x[i] = 0.1 * i - 1.0;
    TN_CK(ctx, tn_net_forward(old, x, 1, ya));
    TN_CK(ctx, tn_net_forward(net, x, 1, yb));
    ck_assert(memcmp(ya, yb, sizeof ya) == 0);
    /* What 0.1 printed for this input when it wrote the file, on BLIS's
     * generic kernels: another kernel set (the library picks the CPU's
     * best, docs/guide/performance.md) sums in another order and agrees to
     * rounding, the 1e-12 every result keeps between kernel sets
     * (test_kernels). */
    const double want[3] = {-0.32619989028650592, -0.032083810296963056, 0.79960818253847121};
    ck_assert_double_le(tu_rel_err(ya, want, 3, 1e-300), 1e-12);
    char *dir = tu_make_dir("test_io"), *again = tu_join(dir, "again.tnn");
    TN_CK(ctx, tn_net_save(old, again));
    size_t len;
    unsigned char *b = tu_slurp(again, &len);
    ck_assert_uint_eq(tu_get_u32(b, 8), 2);
    free(b);
    tn_net_free(old);
    tn_net_free(net);
    static const char *const files[] = {"again.tnn"};
    remove_dir(dir, files, 1);
    free(again), free(path);
}
END_TEST

/* An image input whose H W C overflows size_t. */
START_TEST(overflowing_input_shape_is_a_format_error)
{
    char *dir = tu_make_dir("test_io"), *path = tu_join(dir, "net.tnn");
    tn_net *net = arch(3);      /* {3, 4, 2}: shape at 16, 24, 32 */
    TN_CK(ctx, tn_net_save(net, path));
    size_t len;
    unsigned char *b = tu_slurp(path, &len);
    for (int i = 0; i < 3; i++) put_u64(b, 16 + 8 * (size_t)i, (uint64_t)1 << 32);
    tu_reseal(b, len);
    spit(path, b, len);
    EXPECT_LOAD_FAILS(path, TN_E_FORMAT, "input shape 2^32 x 2^32 x 2^32");
    ck_assert_ptr_nonnull(strstr(tn_ctx_errmsg(ctx), "overflows"));
    free(b);
    tn_net_free(net);
    static const char *const files[] = {"net.tnn"};
    remove_dir(dir, files, 1);
    free(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase_create("round trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, round_trip_is_bit_exact, 0, N_ARCH);
    tcase_add_test(tc, save_overwrites_atomically);
    tcase_add_test(tc, io_errors);
    tcase_add_test(tc, load_a_directory);
    tcase_add_test(tc, version_1_files_load);
    tcase_add_test(tc, load_a_fifo);
    tcase_add_test(tc, orphaned_temporaries_are_removed);
    tcase_add_test(tc, failed_write_leaves_the_old_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("damaged files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, not_a_net_file);
    tcase_add_loop_test(tc, every_truncation_is_a_format_error, 0, N_ARCH);
    tcase_add_loop_test(tc, every_byte_flip_is_detected, 0, N_ARCH);
    tcase_add_test(tc, newer_version_is_refused);
    tcase_add_test(tc, inconsistent_fields_are_format_errors);
    tcase_add_test(tc, overflowing_input_shape_is_a_format_error);
    suite_add_tcase(s, tc);

    return tu_run(s);
}
