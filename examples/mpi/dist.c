/* dist.c -- ranks, failure and progress (dist.h): what every distributed
 * program needs, ScaLAPACK or not. */
#include "dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int dist_rank, dist_size;

void dist_init(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &dist_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &dist_size);
}

_Noreturn void dist_die(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rank %d: %s\nrank %d: aborting the job\n", dist_rank, msg, dist_rank);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);   /* not reached: MPI_Abort does not return */
}

_Noreturn void dist_fail_all(const char *fmt, ...)
{
    if (dist_rank == 0) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
    }
    MPI_Finalize();
    exit(1);
}

double dist_cpu_seconds(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

void dist_say(const char *fmt, ...)
{
    if (dist_rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

void dist_progress_start(dist_progress *p, const char *what)
{
    p->what = what;
    p->start = p->last = MPI_Wtime();
}

void dist_progress_update(dist_progress *p, double fraction)
{
    const double now = MPI_Wtime();
    if (dist_rank != 0 || (now - p->last < 2.0 && fraction < 1.0)) return;
    p->last = now;
    const double spent = now - p->start;
    if (fraction >= 1.0)
        dist_say("%s: done in %.2f s\n", p->what, spent);
    else if (fraction > 0)
        dist_say("%s: %5.1f%%, %.1f s, about %.0f s left\n", p->what, 100 * fraction, spent,
                 spent * (1 - fraction) / fraction);
}
