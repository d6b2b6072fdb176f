/* test_kernels_env.c -- TAYLORNET_KERNELS (taylornet.h: tn_blas_info,
 * tn_ctx_create).  The variable is read once per process, so each case runs
 * this program again as a child with the variable set (by the test, never by
 * the library), and the child reports what the library made of it:
 *
 *   status=<tn_ctx_create's status> ctx=<1 if a context came back>
 *   works=<1 if a forward pass through that context succeeds>
 *   info=<tn_blas_info()>  msg=<tn_ctx_errmsg>
 *
 * What is asserted: unset and "auto" select the same set; "generic"
 * selects it and says so; a name that is no kernel set gives
 * TN_E_INVALID_ARG and a set the CPU lacks (Xeon Phi's knl) TN_E_UNSUPPORTED,
 * each with a context that holds a message naming the variable and the
 * value, which still works (on the automatic choice), and tn_blas_info says
 * "refused".  Under -Dblis=shared only auto is accepted. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

static const char *self;

static int child(void)
{
    tn_ctx *ctx = NULL;
    const tn_status st = tn_ctx_create(&ctx);
    int works = 0;
    if (ctx != NULL) {
        const size_t d = 3;
        tn_net *net = NULL;
        double x[3] = {1, 2, 3}, y[2];
        works = tn_net_create(ctx, &d, 1, &net) == TN_OK && tn_net_add_dense(net, 2) == TN_OK &&
                tn_net_init(net, 1) == TN_OK && tn_net_forward(net, x, 1, y) == TN_OK;
        tn_net_free(net);
    }
    printf("status=%d ctx=%d works=%d\ninfo=%s\nmsg=%s\n", (int)st, ctx != NULL, works,
           tn_blas_info(), ctx ? tn_ctx_errmsg(ctx) : "");
    tn_ctx_free(ctx);
    return 0;
}

typedef struct report {
    int status, ctx, works;
    char info[400], msg[400];
} report;

/* Runs the child with TAYLORNET_KERNELS=value (NULL: unset). */
static report run(const char *value)
{
    char cmd[1024];
    if (value)
        snprintf(cmd, sizeof cmd, "env TAYLORNET_KERNELS='%s' '%s' child", value, self);
    else
        snprintf(cmd, sizeof cmd, "env -u TAYLORNET_KERNELS '%s' child", self);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    report r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(fscanf(p, "status=%d ctx=%d works=%d\n", &r.status, &r.ctx, &r.works), 3);
    ck_assert_ptr_nonnull(fgets(r.info, sizeof r.info, p));
    ck_assert_ptr_nonnull(fgets(r.msg, sizeof r.msg, p));
    ck_assert_int_eq(pclose(p), 0);
    ck_assert(strncmp(r.info, "info=", 5) == 0 && strncmp(r.msg, "msg=", 4) == 0);
    r.info[strcspn(r.info, "\n")] = '\0';
    r.msg[strcspn(r.msg, "\n")] = '\0';
    memmove(r.info, r.info + 5, strlen(r.info + 5) + 1);
    memmove(r.msg, r.msg + 4, strlen(r.msg + 4) + 1);
    printf("TAYLORNET_KERNELS=%s: status %d, %s | %s\n", value ? value : "(unset)", r.status,
           r.info, r.msg);
    return r;
}

START_TEST(unset_and_auto_agree)
{
    const report a = run(NULL), b = run("auto"), c = run("");
    ck_assert_int_eq(a.status, TN_OK);
    ck_assert_int_eq(b.status, TN_OK);
    ck_assert_int_eq(c.status, TN_OK);
    ck_assert(a.works && b.works && c.works);
    ck_assert_str_eq(a.info, b.info);
    ck_assert_str_eq(a.info, c.info);
    ck_assert_ptr_null(strstr(a.info, "TAYLORNET_KERNELS"));
    ck_assert_str_eq(a.msg, "");
}
END_TEST

START_TEST(generic_is_selected)
{
    const report r = run("generic");
#ifdef TNI_BLIS_STATIC
    ck_assert_int_eq(r.status, TN_OK);
    ck_assert_ptr_nonnull(strstr(r.info, "generic kernels"));
    ck_assert_ptr_nonnull(strstr(r.info, "TAYLORNET_KERNELS=generic"));
    ck_assert_str_eq(r.msg, "");
#else
    ck_assert_int_eq(r.status, TN_E_UNSUPPORTED);
#endif
    ck_assert(r.ctx && r.works);
}
END_TEST

START_TEST(not_a_set_is_refused_with_a_message)
{
    const report r = run("zen9");
    ck_assert_int_eq(r.status, TN_E_INVALID_ARG);
    ck_assert(r.ctx && r.works);
    ck_assert_ptr_nonnull(strstr(r.msg, "tn_ctx_create: TAYLORNET_KERNELS=zen9"));
    ck_assert_ptr_nonnull(strstr(r.info, "TAYLORNET_KERNELS=zen9 refused"));
#ifdef TNI_BLIS_STATIC
    ck_assert_ptr_nonnull(strstr(r.msg, "is not a kernel set; use auto, generic"));
#endif
}
END_TEST

START_TEST(a_set_the_cpu_lacks_is_refused_with_a_message)
{
    const report r = run("knl");
    ck_assert_int_eq(r.status, TN_E_UNSUPPORTED);
    ck_assert(r.ctx && r.works);
    ck_assert_ptr_nonnull(strstr(r.msg, "TAYLORNET_KERNELS=knl"));
#ifdef TNI_BLIS_STATIC
    ck_assert_ptr_nonnull(strstr(r.msg, "this CPU lacks AVX-512ER/PF"));
#endif
    ck_assert_ptr_nonnull(strstr(r.info, "refused"));
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) return child();
    self = argv[0];
    Suite *s = suite_create("kernels_env");
    TCase *tc = tcase_create("env");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unset_and_auto_agree);
    tcase_add_test(tc, generic_is_selected);
    tcase_add_test(tc, not_a_set_is_refused_with_a_message);
    tcase_add_test(tc, a_set_the_cpu_lacks_is_refused_with_a_message);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
