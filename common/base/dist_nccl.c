/* NCCL for the CUDA path's collectives: one communicator over the MPI
 * process group (common/base/dist.c), its unique id made by rank 0 and
 * broadcast over MPI, one GPU per rank.  Built when MPI, CUDA and NCCL are
 * all there (HD_NCCL, set by the Makefile); otherwise a group of one works
 * (nothing to reduce) and a larger group is refused with a message. */
#include "base/dist.h"
#include "base/error.h"

#include <stddef.h>

#ifdef HD_NCCL

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

static ncclComm_t comm;
static int comm_ready, nccl_device = -1;

int dist_nccl_compiled(void) { return 1; }

static int nccl_check(ncclResult_t rc, const char *what)
{
    if (rc == ncclSuccess) return 0;
    return hd_fail("%s: NCCL error %d (%s)", what, (int)rc, ncclGetErrorString(rc));
}

int dist_nccl_init(void)
{
    if (comm_ready || dist_size() == 1) return 0;
    /* this rank's GPU: its rank among the ranks of its node, modulo the
     * node's devices (srun --gpus-per-task and CUDA_VISIBLE_DEVICES shrink
     * the list each rank sees) */
    MPI_Comm node;
    int local = 0, n_dev = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, dist_rank(), MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev < 1)
        return hd_fail("NCCL: rank %d sees no CUDA device", dist_rank());
    nccl_device = local % n_dev;
    if (cudaSetDevice(nccl_device) != cudaSuccess)
        return hd_fail("NCCL: rank %d cannot use CUDA device %d", dist_rank(), nccl_device);
    ncclUniqueId id;
    if (dist_rank() == 0 && nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId")) return -1;
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (nccl_check(ncclCommInitRank(&comm, dist_size(), id, dist_rank()), "ncclCommInitRank"))
        return -1;
    comm_ready = 1;
    return 0;
}

int dist_nccl_device(void) { return nccl_device; }

int dist_allreduce_sum_f32_device(float *buf, size_t n)
{
    if (dist_size() == 1 || n == 0) return 0;
    if (!comm_ready && dist_nccl_init()) return -1;
    /* the default stream, where the CUDA ops queue their work */
    if (nccl_check(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm, 0), "ncclAllReduce"))
        return -1;
    if (cudaStreamSynchronize(0) != cudaSuccess)
        return hd_fail("ncclAllReduce: %s", cudaGetErrorString(cudaGetLastError()));
    return 0;
}

void dist_nccl_finalize(void)
{
    if (comm_ready) ncclCommDestroy(comm);
    comm_ready = 0;
}

#else /* no NCCL in this build */

int dist_nccl_compiled(void) { return 0; }

static int no_nccl(void)
{
    return hd_fail("this build has no NCCL (it needs make MPI=1 with the CUDA toolkit's NCCL): "
                   "%d ranks cannot reduce GPU buffers",
                   dist_size());
}

int dist_nccl_init(void) { return dist_size() == 1 ? 0 : no_nccl(); }
int dist_nccl_device(void) { return -1; }

int dist_allreduce_sum_f32_device(float *buf, size_t n)
{
    (void)buf;
    if (dist_size() == 1 || n == 0) return 0;
    return no_nccl();
}

void dist_nccl_finalize(void) {}

#endif
