#include "base/dist.h"
#include "base/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef HD_MPI
#include <mpi.h>
#endif

static int group_rank = 0, group_size = 1;

int dist_rank(void) { return group_rank; }
int dist_size(void) { return group_size; }

/* A non-negative decimal integer below INT_MAX, nothing else. */
static int env_int(const char *name, int *out)
{
    const char *v = getenv(name);
    if (!v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 0 || n >= INT_MAX)
        return hd_fail("environment variable %s='%s' is not a rank or size", name, v);
    *out = (int)n;
    return 1;
}

int dist_launcher(int *rank, int *size, const char **launcher)
{
    /* rank variable, size variable, name; srun sets SLURM_STEP_NUM_TASKS for
     * the tasks of a job step only, not for the batch script, where
     * SLURM_PROCID = 0 and SLURM_NTASKS would claim a share of the job */
    static const char *const known[][3] = {
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "mpirun (Open MPI)"},
        {"PMI_RANK", "PMI_SIZE", "an MPI launcher (PMI)"},
        {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "srun"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        int r = 0, n = 0;
        int has_r = env_int(known[i][0], &r), has_n = env_int(known[i][1], &n);
        if (has_r < 0 || has_n < 0) return -1;
        if (!has_r || !has_n) continue;
        if (n < 1 || r >= n)
            return hd_fail("%s=%d and %s=%d: not a rank of that many processes", known[i][0], r,
                           known[i][1], n);
        *rank = r;
        *size = n;
        if (launcher) *launcher = known[i][2];
        return 1;
    }
    return 0;
}

#ifndef HD_MPI

int dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* several copies of a tool built without MPI would each run the whole
     * job alone, writing the same files */
    int rank, size;
    const char *by;
    if (dist_launcher(&rank, &size, &by) > 0 && size > 1)
        hd_die("started as rank %d of %d by %s, but this %s was built without MPI: every "
               "process would run the whole job alone; build it with 'make MPI=1' and run "
               "bin-mpi/%s",
               rank, size, by, hd_progname, hd_progname);
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

/* A launcher that says it started n > 1 processes while MPI made a world of
 * one: srun without a PMI plugin Open MPI understands (no PMIx variables,
 * so MPI is never started here, or started as a singleton), or an mpirun of
 * another MPI.  Every process would then train the whole job alone and
 * write the same files: refuse with the fix. */
static void check_world(int world)
{
    int rank, size;
    const char *by;
    if (world > 1 || dist_launcher(&rank, &size, &by) <= 0 || size <= 1) return;
    int srun = getenv("SLURM_STEP_NUM_TASKS") && !getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE");
    hd_die("started as rank %d of %d by %s, but MPI sees a world of 1 process: every process "
           "would run the whole job alone; %s",
           rank, size, by,
           srun ? "start it with 'srun --mpi=pmix' (Open MPI needs PMIx; 'srun --mpi=list' names "
                  "the plugins this Slurm has)"
                : "start it with the mpirun of the Open MPI it was built with ('mpicc --showme' "
                  "names it)");
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
    if (joined) return group_size;
    if (!launched_by_mpi()) {
        check_world(1);
        return group_size;
    }
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        hd_die("MPI_Init failed (launched by mpirun, but MPI could not start)");
    joined = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &group_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &group_size);
    /* MPI_ERRORS_ARE_FATAL is the default: a failed collective ends the job */
    atexit(finalize_at_exit);
    check_world(group_size);
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
