/*
 * excheck.h -- the harness of the tests of the examples' support code
 * (test_examples.c, test_compare.c): checks that count their failures
 * instead of stopping at the first, and a private temporary directory.
 *
 *     excheck_make_dir("tn_examples");      a fresh directory under $TMPDIR
 *     EXPECT(x == 1);                       counted, reported with its line
 *     fopen(in_dir("a.csv"), "w");          a path in that directory
 *     return excheck_finish(names, n);      removes the files and the
 *                                           directory; the exit status
 * Needs _POSIX_C_SOURCE 200809L (mkdtemp) before the first include.
 */
#ifndef EXCHECK_H
#define EXCHECK_H

#include "support/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
static char dir[256];

#define EXPECT(cond)                                                            \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond);  \
            failures++;                                                         \
        }                                                                       \
    } while (0)

/* The path of `name` in the test directory (a static buffer: use it before
 * the next call). */
static inline const char *in_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Makes the test directory, $TMPDIR/<prefix>_XXXXXX (/tmp without TMPDIR). */
static inline void excheck_make_dir(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (mkdtemp(dir) == NULL) ex_die("mkdtemp %s: %s", dir, strerror(errno));
}

/* Removes the n files a test may have made, then the directory; prints the
 * outcome and returns main's exit status. */
static inline int excheck_finish(const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) unlink(in_dir(names[i]));
    if (rmdir(dir) != 0) fprintf(stderr, "warning: rmdir %s: %s\n", dir, strerror(errno));
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return EXIT_FAILURE;
    }
    printf("all checks passed\n");
    return EXIT_SUCCESS;
}

#endif
