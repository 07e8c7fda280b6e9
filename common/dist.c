#include "dist.h"
#include "error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HD_MPI
#include <mpi.h>
#endif

static int group_rank = 0, group_size = 1;

int dist_rank(void) { return group_rank; }
int dist_size(void) { return group_size; }

#ifndef HD_MPI

int dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 1;
}
int dist_compiled(void) { return 0; }
void dist_allreduce_sum_f32(float *buf, size_t n) { (void)buf, (void)n; }
void dist_allreduce_sum_f64(double *buf, size_t n) { (void)buf, (void)n; }
void dist_allreduce_sum_i64(int64_t *buf, size_t n) { (void)buf, (void)n; }
void dist_allreduce_max_i64(int64_t *buf, size_t n) { (void)buf, (void)n; }
void dist_barrier(void) {}
void dist_abort(int status) { exit(status); }
void dist_finalize(void) {}

#else

static int joined; /* MPI_Init done and MPI_Finalize not yet */

/* Set by the launchers we know: Open MPI's mpirun, PMIx (Open MPI 4+,
 * srun --mpi=pmix), PMI/PMI-2 (MPICH's hydra, srun --mpi=pmi2).  Without
 * one, the tool is a plain process and does not start MPI at all. */
static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static void abort_job(int status)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    exit(status); /* not reached */
}

static void finalize_at_exit(void) { dist_finalize(); }

int dist_init(int *argc, char ***argv)
{
    if (joined || !launched_by_mpi()) return group_size;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        hd_die("MPI_Init failed (launched by mpirun, but MPI could not start)");
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &group_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &group_size);
    /* MPI_ERRORS_ARE_FATAL is the default: a failed collective ends the job */
    atexit(finalize_at_exit);
    if (group_size > 1) {
        hd_exit_hook = abort_job;
        if (group_rank > 0) {
            static char name[256];
            snprintf(name, sizeof name, "%s[%d]", hd_progname, group_rank);
            hd_progname = name;
        }
    }
    return group_size;
}

int dist_compiled(void) { return 1; }

/* MPI counts are int: long buffers (a hypernetwork for an 8B target has
 * billions of parameters) go in chunks of 2^30 elements. */
static void allreduce(void *buf, size_t n, size_t elem, MPI_Datatype type, MPI_Op op)
{
    if (group_size == 1) return;
    const size_t chunk = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)k, type, op, MPI_COMM_WORLD);
    }
}

void dist_allreduce_sum_f32(float *buf, size_t n)
{
    allreduce(buf, n, sizeof *buf, MPI_FLOAT, MPI_SUM);
}
void dist_allreduce_sum_f64(double *buf, size_t n)
{
    allreduce(buf, n, sizeof *buf, MPI_DOUBLE, MPI_SUM);
}
void dist_allreduce_sum_i64(int64_t *buf, size_t n)
{
    allreduce(buf, n, sizeof *buf, MPI_INT64_T, MPI_SUM);
}
void dist_allreduce_max_i64(int64_t *buf, size_t n)
{
    allreduce(buf, n, sizeof *buf, MPI_INT64_T, MPI_MAX);
}

void dist_barrier(void)
{
    if (group_size > 1) MPI_Barrier(MPI_COMM_WORLD);
}

void dist_abort(int status)
{
    if (joined && group_size > 1) abort_job(status);
    exit(status);
}

void dist_finalize(void)
{
    if (!joined) return;
    joined = 0;
    hd_exit_hook = NULL;
    MPI_Finalize();
}

#endif
