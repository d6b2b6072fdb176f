/* parallel.c -- per-calling-thread worker pools (parallel.h). */
#define _GNU_SOURCE             /* sched_getaffinity, CPU_COUNT */
#include "parallel.h"
#include "../core/core.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

/* How long a waiting thread spins before it sleeps: about 20-50 us, less
 * than waking a sleeping thread costs, and little enough that a spinning
 * thread sharing a core with the thread it waits for loses nothing much. */
#define SPINS 4000
#define MAX_WORKERS 1023

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef struct pool pool;

typedef struct worker {
    pool *p;
    int index;
    unsigned start_gen;
    pthread_t tid;
    double *scratch;
} worker;

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t wake;            /* workers: a new job, or quit */
    pthread_cond_t done_cv;         /* the caller: every task has run */
    atomic_uint gen;                /* the job's number; written under mu */
    int quit;
    /* The job, written under mu with gen. */
    tni_task_fn fn;
    void *arg;
    size_t tasks;
    int want;                       /* workers 0..want-1 take part */
    /* (gen << 32) | next unclaimed task: a claim made for an old job fails. */
    _Atomic uint64_t next;
    atomic_size_t done;             /* tasks finished */
    int nworkers;
    worker w[MAX_WORKERS];
    double *scratch;                /* the calling thread's */
    unsigned fork_gen;
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t pool_key;
static int have_key;
static atomic_int cpus = 1;
static atomic_uint fork_gen;

static void pool_free(void *v);

static void after_fork_in_child(void)
{
    /* The workers did not come along: every pool is abandoned. */
    atomic_fetch_add(&fork_gen, 1);
}

void tni_threads_refresh(void)
{
    int n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n < 1) {
        const long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 && c < 100000 ? (int)c : 1;
    }
    atomic_store(&cpus, n);
}

static void init_once(void)
{
    tni_threads_refresh();
    have_key = pthread_key_create(&pool_key, pool_free) == 0;
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

int tni_threads_usable(int n)
{
    pthread_once(&once, init_once);
    const int c = atomic_load(&cpus);
    if (n > c) n = c;
    return n < 1 ? 1 : n;
}

/* Claims and runs tasks of job g until none is left. */
static void run_tasks(pool *p, unsigned g, tni_task_fn fn, void *arg, size_t tasks,
                      double *scratch)
{
    uint64_t v = atomic_load(&p->next);
    for (;;) {
        if ((unsigned)(v >> 32) != g || (v & 0xffffffffu) >= tasks) return;
        if (!atomic_compare_exchange_weak(&p->next, &v, v + 1)) continue;
        fn(arg, (size_t)(v & 0xffffffffu), scratch);
        if (atomic_fetch_add(&p->done, 1) + 1 == tasks) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
        v = atomic_load(&p->next);
    }
}

static void *worker_main(void *arg)
{
    worker *me = arg;
    pool *p = me->p;
    unsigned seen = me->start_gen;
    for (;;) {
        for (int s = 0; s < SPINS && atomic_load_explicit(&p->gen, memory_order_acquire) == seen;
             s++)
            cpu_relax();
        pthread_mutex_lock(&p->mu);
        unsigned g;
        while ((g = atomic_load(&p->gen)) == seen && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        const tni_task_fn fn = p->fn;
        void *job = p->arg;
        const size_t tasks = p->tasks;
        const int take_part = me->index < p->want;
        pthread_mutex_unlock(&p->mu);
        seen = g;
        if (take_part) run_tasks(p, g, fn, job, tasks, me->scratch);
    }
}

static void pool_free(void *v)
{
    pool *p = v;
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) {
        pthread_join(p->w[i].tid, NULL);
        tni_free(p->w[i].scratch);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    tni_free(p->scratch);
    tni_free(p);
}

/* The calling thread's pool with at least `workers` workers if it can have
 * them (fewer if thread creation fails), or NULL. */
static pool *pool_get(int workers)
{
    pthread_once(&once, init_once);
    if (!have_key) return NULL;
    pool *p = pthread_getspecific(pool_key);
    if (p != NULL && p->fork_gen != atomic_load(&fork_gen)) {
        p = NULL;   /* made before a fork: its workers are gone; leave it */
        pthread_setspecific(pool_key, NULL);
    }
    if (p == NULL) {
        p = tni_alloc(NULL, 1, sizeof *p);
        double *scratch = tni_alloc(NULL, TNI_TASK_SCRATCH, sizeof(double));
        if (p == NULL || scratch == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
            tni_free(p);
            tni_free(scratch);
            return NULL;
        }
        pthread_cond_init(&p->wake, NULL);
        pthread_cond_init(&p->done_cv, NULL);
        p->scratch = scratch;
        p->fork_gen = atomic_load(&fork_gen);
        if (pthread_setspecific(pool_key, p) != 0) {
            pool_free(p);
            return NULL;
        }
    }
    if (workers > MAX_WORKERS) workers = MAX_WORKERS;
    while (p->nworkers < workers) {
        worker *w = &p->w[p->nworkers];
        w->p = p;
        w->index = p->nworkers;
        w->start_gen = atomic_load(&p->gen);
        w->scratch = tni_alloc(NULL, TNI_TASK_SCRATCH, sizeof(double));
        if (w->scratch == NULL || pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            tni_free(w->scratch);
            break;
        }
        p->nworkers++;
    }
    return p->nworkers > 0 ? p : NULL;
}

void tni_pool_release(void)
{
    pthread_once(&once, init_once);
    if (!have_key) return;
    pool *p = pthread_getspecific(pool_key);
    if (p == NULL) return;
    pthread_setspecific(pool_key, NULL);
    if (p->fork_gen == atomic_load(&fork_gen)) pool_free(p);
}

void tni_parallel(int threads, size_t tasks, tni_task_fn fn, void *arg, double *scratch)
{
    if (tasks > 0xffffffffu) tasks = 0xffffffffu;  /* callers cut far fewer */
    threads = tni_threads_usable(threads);
    if ((size_t)threads > tasks) threads = (int)tasks;
    pool *p = threads > 1 ? pool_get(threads - 1) : NULL;
    if (p == NULL) {
        for (size_t t = 0; t < tasks; t++) fn(arg, t, scratch);
        return;
    }
    pthread_mutex_lock(&p->mu);
    const unsigned g = atomic_load(&p->gen) + 1;
    p->fn = fn;
    p->arg = arg;
    p->tasks = tasks;
    p->want = threads - 1 < p->nworkers ? threads - 1 : p->nworkers;
    atomic_store(&p->done, 0);
    atomic_store(&p->next, (uint64_t)g << 32);
    atomic_store_explicit(&p->gen, g, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_tasks(p, g, fn, arg, tasks, p->scratch);

    for (int s = 0; s < SPINS && atomic_load(&p->done) != tasks; s++) cpu_relax();
    if (atomic_load(&p->done) != tasks) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->done) != tasks) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void tni_split_range(size_t n, size_t parts, size_t align, size_t p, size_t *lo, size_t *hi)
{
    if (align == 0) align = 1;
    size_t chunk = (n + parts - 1) / parts;
    chunk = (chunk + align - 1) / align * align;
    const size_t a = p * chunk, b = a + chunk;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}
