/* The process group: the ranks of one data-parallel job.
 *
 * Built with `make MPI=1` (HD_MPI), a tool started by an MPI launcher
 * (mpirun, mpiexec, srun --mpi=pmix) joins MPI_COMM_WORLD; started any
 * other way, or built without MPI, it is a group of one: rank 0 of size 1,
 * and every collective below is a no-op.  So the single-process path needs
 * no MPI library at run time, and the tool's code reads the same for both.
 *
 * Failure: once a group of more than one rank exists, hd_die() and
 * hd_usage_error() on any rank end the whole job (MPI_Abort with the exit
 * status), so that the other ranks never wait forever in a collective that
 * the dead rank will not join.  Messages of rank r > 0 are prefixed
 * `TOOL[r]: ` so that the log says which rank failed.
 *
 * Collectives are called by the main thread only (MPI_THREAD_FUNNELED),
 * by every rank, in the same order. */
#ifndef HD_DIST_H
#define HD_DIST_H

#include <stddef.h>
#include <stdint.h>

/* Joins the group when launched by an MPI launcher (call after
 * hd_cli_init, before reading argv); the group is left at exit.  Returns
 * the group's size.  Dies with a message when MPI cannot start. */
int dist_init(int *argc, char ***argv);
int dist_rank(void);
int dist_size(void);
/* The rank and size a launcher gave this process, read from the
 * environment (no MPI needed, any build): mpirun of Open MPI
 * (OMPI_COMM_WORLD_RANK/SIZE), MPICH's hydra or srun --mpi=pmi2
 * (PMI_RANK/PMI_SIZE), a task of srun (SLURM_PROCID/SLURM_STEP_NUM_TASKS;
 * a batch script itself is no task).  1 with *rank, *size and the
 * launcher's name (launcher may be NULL), 0 when started otherwise, -1
 * with a message on values that are not a rank of a size.  A build without
 * MPI started as several ranks refuses to run in dist_init; cache-acts and
 * hd-score take their shard from it. */
int dist_launcher(int *rank, int *size, const char **launcher);
/* 1 when this build can talk MPI (hd-train --version lists "mpi"). */
int dist_compiled(void);

/* In place: buf[i] = sum (max) over the ranks of buf[i]. */
void dist_allreduce_sum_f32(float *buf, size_t n);
void dist_allreduce_sum_f64(double *buf, size_t n);
void dist_allreduce_sum_i64(int64_t *buf, size_t n);
void dist_allreduce_max_i64(int64_t *buf, size_t n);
/* ---- the CUDA path's collectives (common/base/dist_nccl.c): NCCL over the
 * same group, in builds with MPI, CUDA and NCCL (make MPI=1 with the CUDA
 * toolkit; dist_nccl_compiled() says so).  A group of one needs none of it
 * in any build: its calls do nothing. ---- */
int dist_nccl_compiled(void);
/* Picks this rank's GPU (its rank on its node, modulo the node's devices)
 * and builds the communicator: rank 0 makes the NCCL unique id and MPI
 * broadcasts it.  Collective: every rank calls it.  -1 with a message. */
int dist_nccl_init(void);
/* The device dist_nccl_init picked, -1 before (or without NCCL). */
int dist_nccl_device(void);
/* In place on device memory: buf[i] = sum over the ranks of buf[i];
 * queued on the default stream after the work before it, and waited for.
 * Initialises on first use. */
int dist_allreduce_sum_f32_device(float *buf, size_t n);
void dist_nccl_finalize(void);

/* Every rank waits until all have arrived. */
void dist_barrier(void);

/* Ends every rank of the job with `status` (a single process: exit). */
void dist_abort(int status) __attribute__((noreturn));
/* Leaves the group (idempotent; also run at exit). */
void dist_finalize(void);

#endif
