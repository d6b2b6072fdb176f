/* kernels.c -- the kernel set of the library's own BLIS (kernels.h). */
#include "kernels.h"
#include "../core/core.h"

#include <blis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define TNI_X86 1
#endif

/* A kernel set: its BLIS id, whether this BLIS was built with it, the
 * instructions it needs and whether this CPU has them (and the OS saves
 * their registers: GCC's and Clang's __builtin_cpu_supports check XCR0). */
typedef struct kset {
    const char *name;
    arch_t id;
    int built;
    const char *isa;
    int (*cpu_has)(void);
} kset;

static int cpu_any(void)
{
    return 1;
}

#ifdef TNI_X86
static int cpu_ssse3(void)
{
    return __builtin_cpu_supports("ssse3");
}
static int cpu_avx(void)
{
    return __builtin_cpu_supports("avx");
}
static int cpu_avx2_fma(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int cpu_avx512(void)
{
    /* What BLIS's skx kernels and its own skx test use. */
    return cpu_avx2_fma() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
static int cpu_avx512_phi(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512er") &&
           __builtin_cpu_supports("avx512pf");
}
#else
#define cpu_avx512_phi NULL
#define cpu_ssse3 NULL
#define cpu_avx NULL
#define cpu_avx2_fma NULL
#define cpu_avx512 NULL
#endif

#ifdef BLIS_CONFIG_PENRYN
#define TNI_HAS_PENRYN 1
#else
#define TNI_HAS_PENRYN 0
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
#define TNI_HAS_SANDYBRIDGE 1
#else
#define TNI_HAS_SANDYBRIDGE 0
#endif
#ifdef BLIS_CONFIG_HASWELL
#define TNI_HAS_HASWELL 1
#else
#define TNI_HAS_HASWELL 0
#endif
#ifdef BLIS_CONFIG_ZEN
#define TNI_HAS_ZEN 1
#else
#define TNI_HAS_ZEN 0
#endif
#ifdef BLIS_CONFIG_ZEN2
#define TNI_HAS_ZEN2 1
#else
#define TNI_HAS_ZEN2 0
#endif
#ifdef BLIS_CONFIG_ZEN3
#define TNI_HAS_ZEN3 1
#else
#define TNI_HAS_ZEN3 0
#endif
#ifdef BLIS_CONFIG_SKX
#define TNI_HAS_SKX 1
#else
#define TNI_HAS_SKX 0
#endif
#ifdef BLIS_CONFIG_KNL
#define TNI_HAS_KNL 1
#else
#define TNI_HAS_KNL 0
#endif

/* The sets TAYLORNET_KERNELS may name, slowest first (knl, Xeon Phi's, is
 * never auto's choice on other CPUs: it needs instructions they lack). */
static const kset sets[] = {
    {"generic", BLIS_ARCH_GENERIC, 1, "portable C", cpu_any},
    {"penryn", BLIS_ARCH_PENRYN, TNI_HAS_PENRYN, "SSSE3", cpu_ssse3},
    {"sandybridge", BLIS_ARCH_SANDYBRIDGE, TNI_HAS_SANDYBRIDGE, "AVX", cpu_avx},
    {"haswell", BLIS_ARCH_HASWELL, TNI_HAS_HASWELL, "AVX2, FMA", cpu_avx2_fma},
    {"zen", BLIS_ARCH_ZEN, TNI_HAS_ZEN, "AVX2, FMA", cpu_avx2_fma},
    {"zen2", BLIS_ARCH_ZEN2, TNI_HAS_ZEN2, "AVX2, FMA", cpu_avx2_fma},
    {"zen3", BLIS_ARCH_ZEN3, TNI_HAS_ZEN3, "AVX2, FMA", cpu_avx2_fma},
    {"skx", BLIS_ARCH_SKX, TNI_HAS_SKX, "AVX-512", cpu_avx512},
    {"knl", BLIS_ARCH_KNL, TNI_HAS_KNL, "AVX-512ER/PF of Xeon Phi", cpu_avx512_phi},
};
#define NSETS (sizeof sets / sizeof sets[0])

static inline int usable(const kset *k)
{
    return k->built && k->cpu_has != NULL && k->cpu_has();
}

static const kset *by_name(const char *name)
{
    for (size_t i = 0; i < NSETS; i++)
        if (strcmp(sets[i].name, name) == 0) return &sets[i];
    return NULL;
}

static const kset *by_id(arch_t id)
{
    for (size_t i = 0; i < NSETS; i++)
        if (sets[i].id == id) return &sets[i];
    return NULL;
}

/* The choice, made once (choose()); `current` moves only in tests. */
static pthread_once_t chosen = PTHREAD_ONCE_INIT;
static kset other;                  /* a set BLIS picked that the table lacks */
static const kset *best, *current;
static tn_status env_status = TN_OK;
static char env_msg[320];
static char info[200];

#ifdef TNI_BLIS_STATIC

/* What auto picks: BLIS's own choice when it recognises the CPU, else the
 * widest set whose instructions the CPU has. */
static const kset *auto_choice(void)
{
    const arch_t blis_id = bli_cpuid_query_id();
    if (blis_id != BLIS_ARCH_GENERIC) {
        const kset *k = by_id(blis_id);
        if (k != NULL && k->built) return k;
        other = (kset){bli_arch_string(blis_id), blis_id, 1, "chosen by BLIS", cpu_any};
        return &other;
    }
    static const char *const order[] = {"skx", "zen3", "haswell"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const kset *k = by_name(order[i]);
#ifdef TNI_X86
        /* zen3's blocksizes suit AMD's caches, haswell's Intel's. */
        if (strcmp(k->name, "zen3") == 0 && !__builtin_cpu_is("amd")) continue;
#endif
        if (usable(k)) return k;
    }
    return by_id(BLIS_ARCH_GENERIC);
}

static void list_usable(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NSETS && used < size; i++)
        if (usable(&sets[i]))
            used += (size_t)snprintf(buf + used, size - used, ", %s", sets[i].name);
}

static void choose(void)
{
#ifdef TNI_X86
    __builtin_cpu_init();
#endif
    best = auto_choice();
    current = best;
    const char *env = getenv("TAYLORNET_KERNELS");
    if (env != NULL && env[0] != '\0' && strcmp(env, "auto") != 0) {
        char avail[160];
        list_usable(avail, sizeof avail);
        const kset *k = by_name(env);
        if (k == NULL) {
            env_status = TN_E_INVALID_ARG;
            snprintf(env_msg, sizeof env_msg,
                     "TAYLORNET_KERNELS=%.40s is not a kernel set; use auto%s", env, avail);
        } else if (!k->built) {
            env_status = TN_E_UNSUPPORTED;
            snprintf(env_msg, sizeof env_msg,
                     "TAYLORNET_KERNELS=%s: this BLIS (%s) was built without the %s kernels; "
                     "use auto%s", k->name, bli_info_get_version_str(), k->name, avail);
        } else if (!usable(k)) {
            env_status = TN_E_UNSUPPORTED;
            snprintf(env_msg, sizeof env_msg,
                     "TAYLORNET_KERNELS=%s: this CPU lacks %s, which the %s kernels need; "
                     "use auto%s", k->name, k->isa, k->name, avail);
        } else {
            current = k;
        }
    }
    if (env_status != TN_OK)
        snprintf(info, sizeof info, "BLIS %s, %s kernels (%s; TAYLORNET_KERNELS=%.40s refused)",
                 bli_info_get_version_str(), current->name, current->isa, env);
    else if (current != best)
        snprintf(info, sizeof info, "BLIS %s, %s kernels (%s; TAYLORNET_KERNELS=%s)",
                 bli_info_get_version_str(), current->name, current->isa, current->name);
    else
        snprintf(info, sizeof info, "BLIS %s, %s kernels (%s)", bli_info_get_version_str(),
                 current->name, current->isa);
}

/* The library's BLIS asks this for its kernel set (the link maps BLIS's
 * bli_arch_query_id here with --wrap), so everything that copy runs -- our
 * typed calls and the BLAS calls inside LAPACK -- uses the selected set.
 * It must not call into BLIS: BLIS calls it during its own initialization. */
arch_t __wrap_bli_arch_query_id(void);
arch_t __wrap_bli_arch_query_id(void)
{
    pthread_once(&chosen, choose);
    return current->id;
}

static pthread_once_t blis_ready = PTHREAD_ONCE_INIT;

static void init_blis(void)
{
    pthread_once(&chosen, choose);
    bli_init();
    /* This copy of BLIS is ours alone: its default thread count (what the
     * BLAS calls inside LAPACK use) is one, whatever OMP_NUM_THREADS or
     * BLIS_NUM_THREADS say to the host's BLIS.  The library's own products
     * are threaded by kernel/parallel.c. */
    bli_thread_set_num_threads(1);
}

void *tni_kernels_cntx(void)
{
    pthread_once(&blis_ready, init_blis);
    return bli_gks_lookup_nat_cntx(current->id);
}

void *tni_kernels_best_cntx(void)
{
    pthread_once(&blis_ready, init_blis);
    return bli_gks_lookup_nat_cntx(best->id);
}

int tni_kernels_select_for_test(const char *name)
{
    pthread_once(&blis_ready, init_blis);
    const kset *k = by_name(name);
    if (k == NULL || !usable(k)) return -1;
    current = k;
    return 0;
}

#else /* the system's shared libblis: BLIS chooses, nothing can be selected */

static void choose(void)
{
    const arch_t id = bli_arch_query_id();
    const kset *k = by_id(id);
    if (k == NULL) {
        other = (kset){bli_arch_string(id), id, 1, "chosen by BLIS", cpu_any};
        k = &other;
    }
    best = current = k;
    const char *env = getenv("TAYLORNET_KERNELS");
    if (env != NULL && env[0] != '\0' && strcmp(env, "auto") != 0) {
        env_status = by_name(env) != NULL ? TN_E_UNSUPPORTED : TN_E_INVALID_ARG;
        snprintf(env_msg, sizeof env_msg,
                 "TAYLORNET_KERNELS=%.40s: this build uses the shared BLIS library, which "
                 "chooses its kernels itself; only auto is accepted (build with -Dblis=static "
                 "to select kernels)", env);
    }
    snprintf(info, sizeof info, "BLIS %s (shared library), %s kernels (%s, chosen by BLIS%s%.40s%s)",
             bli_info_get_version_str(), current->name, current->isa,
             env_status != TN_OK ? "; TAYLORNET_KERNELS=" : "", env_status != TN_OK ? env : "",
             env_status != TN_OK ? " refused" : "");
}

void *tni_kernels_cntx(void)
{
    return NULL;
}

void *tni_kernels_best_cntx(void)
{
    return NULL;
}

int tni_kernels_select_for_test(const char *name)
{
    pthread_once(&chosen, choose);
    return strcmp(name, current->name) == 0 ? 0 : -1;
}

#endif

const char *tni_kernels_name(void)
{
    pthread_once(&chosen, choose);
    return current->name;
}

tn_status tni_kernels_error(const char **msg)
{
    pthread_once(&chosen, choose);
    *msg = env_msg;
    return env_status;
}

int tni_kernels_available(const char **names, int max)
{
    pthread_once(&chosen, choose);
    int n = 0;
#ifdef TNI_BLIS_STATIC
    for (size_t i = 0; i < NSETS && n < max; i++)
        if (usable(&sets[i])) names[n++] = sets[i].name;
#else
    if (max > 0) names[n++] = current->name;
#endif
    return n;
}

TN_API const char *tn_blas_info(void)
{
    pthread_once(&chosen, choose);
    return info;
}
