/* Throughput of every CUDA op of kernels/cuda at two model sizes, each next
 * to a reference that bounds it:
 *   - memory-bound ops (norms, activations, residual, rope, embedding,
 *     softmax, dequant): GB/s of the bytes an op must read and write at
 *     least, next to a device-to-device cudaMemcpy (the practical ceiling);
 *   - matmul: TFLOP/s of our wrappers next to the bare cuBLAS call they make
 *     (fp32 SGEMM, TF32 SGEMM for context, and bf16 GemmEx on ready-made
 *     bf16 inputs, which shows the cost of rounding the activations);
 *   - attention, both paths (direct kernel, batched GEMMs): TFLOP/s
 *     counting causal work only (for a generation step, GB/s of K and V),
 *     next to two cuBLAS strided-batched SGEMMs (S = Q K^T, O = P V, full
 *     squares, no softmax) on the same shapes: what an unfused fp32
 *     implementation cannot beat.
 *
 * Not a test and not built by the Makefile.  Build and run (from the repo root):
 *   make build/libhyperdas.a build/libhyperdas_kernels.a build/bench/bench_cuda_kernels.o
 *   gcc -fopenmp build/bench/bench_cuda_kernels.o build/libhyperdas.a \
 *       build/libhyperdas_kernels.a -lmsgpackc -ljansson -lpcre2-8 -lopenblas -lz -lm \
 *       -lpthread -L/usr/local/cuda/lib64 -Wl,-rpath,/usr/local/cuda/lib64 \
 *       -lcublasLt -lcublas -lcudart -lstdc++ -o bin/bench_cuda_kernels
 *   bin/bench_cuda_kernels [smollm2|llama8b|all]
 * Timings: CUDA events around ITERS back-to-back calls after one warm-up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

#ifndef HD_CUDA
int main(void)
{
    fprintf(stderr, "bench_cuda_kernels: built without CUDA\n");
    return 1;
}
#else

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "cpu/dequant.h"
#include "cuda/cuda_ops.h"

enum { ITERS = 20 };

typedef struct {
    const char *name;
    int b, T;              /* batch rows x tokens: N = b T */
    int d, ffn, H, Hkv, hd;
    int V, xent_rows;      /* vocabulary, rows of logits benchmarked */
} Shape;

static const Shape SHAPES[] = {
    {"smollm2", 32, 128, 576, 1536, 9, 3, 64, 49152, 1024},
    {"llama8b", 8, 512, 4096, 14336, 32, 8, 128, 128256, 512},
};

static cudaEvent_t ev_start, ev_stop;
static cublasHandle_t ref_blas;

static void ok(int rc)
{
    if (rc) hd_die("%s", hd_last_error());
}

static void cuda_ok(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) hd_die("%s: %s", what, cudaGetErrorString(err));
}

static void blas_ok(cublasStatus_t st, const char *what)
{
    if (st != CUBLAS_STATUS_SUCCESS) hd_die("%s: cuBLAS status %d", what, (int)st);
}

static void tic(void) { cuda_ok(cudaEventRecord(ev_start, 0), "cudaEventRecord"); }

static double toc(int iters)
{
    cuda_ok(cudaEventRecord(ev_stop, 0), "cudaEventRecord");
    cuda_ok(cudaEventSynchronize(ev_stop), "GPU work");
    float ms = 0;
    cuda_ok(cudaEventElapsedTime(&ms, ev_start, ev_stop), "cudaEventElapsedTime");
    return ms / iters;
}

/* One line: name, ms per call, and GB/s or TFLOP/s (whichever is given). */
static void report(const char *shape, const char *what, double ms, double bytes, double flops)
{
    printf("%-8s %-44s %9.4f ms", shape, what, ms);
    if (bytes > 0) printf("  %8.1f GB/s", bytes / (ms * 1e-3) / 1e9);
    if (flops > 0) printf("  %8.2f TFLOP/s", flops / (ms * 1e-3) / 1e12);
    printf("\n");
    fflush(stdout);
}

/* Device buffer of n floats, uniform in [-1, 1) (a cheap LCG: speed only). */
static float *dev_random(size_t n, uint32_t seed)
{
    float *h = hd_malloc(n * sizeof *h);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h[i] = (float)(s >> 8) * (1.0f / 8388608.0f) - 1.0f;
    }
    float *d = hd_cuda_malloc(n * sizeof *d);
    if (!d) hd_die("%s", hd_last_error());
    ok(hd_cuda_upload(d, h, n * sizeof *d));
    free(h);
    return d;
}

static void *dev_alloc(size_t bytes)
{
    void *d = hd_cuda_malloc(bytes);
    if (!d) hd_die("%s", hd_last_error());
    ok(hd_cuda_zero(d, bytes));
    return d;
}

static void bench_copy(const char *sn, size_t bytes)
{
    void *a = dev_alloc(bytes), *b = dev_alloc(bytes);
    ok(hd_cuda_copy(b, a, bytes));
    tic();
    for (int i = 0; i < ITERS; i++) ok(hd_cuda_copy(b, a, bytes));
    char what[64];
    snprintf(what, sizeof what, "ref: cudaMemcpy D2D %.0f MB", bytes / 1e6);
    report(sn, what, toc(ITERS), 2.0 * bytes, 0);
    hd_cuda_free(a), hd_cuda_free(b);
}

static void bench_matmul(const Shape *s)
{
    const int N = s->b * s->T;
    const int dims[2][2] = {{s->d, s->ffn}, {s->ffn, s->d}}; /* up/gate, down */
    for (int k = 0; k < 2; k++) {
        const int C = dims[k][0], OC = dims[k][1];
        const double flops = 2.0 * N * C * OC;
        float *x = dev_random((size_t)N * C, 1), *w = dev_random((size_t)OC * C, 2);
        float *out = dev_alloc((size_t)N * OC * sizeof(float));
        float *dout = dev_random((size_t)N * OC, 3);
        float *dx = dev_alloc((size_t)N * C * sizeof(float)), *dw = dev_alloc((size_t)OC * C * sizeof(float));
        uint16_t *w16 = dev_alloc((size_t)OC * C * 2), *x16 = dev_alloc((size_t)N * C * 2);
        ok(f32_to_bf16_cuda(w16, w, (size_t)OC * C));
        ok(f32_to_bf16_cuda(x16, x, (size_t)N * C));
        char what[96];

        ok(matmul_forward_cuda(out, x, w, NULL, N, C, OC));
        tic();
        for (int i = 0; i < ITERS; i++) ok(matmul_forward_cuda(out, x, w, NULL, N, C, OC));
        snprintf(what, sizeof what, "matmul_forward fp32 %dx%dx%d", N, C, OC);
        report(s->name, what, toc(ITERS), 0, flops);

        ok(matmul_backward_cuda(dx, dw, NULL, dout, x, w, N, C, OC));
        tic();
        for (int i = 0; i < ITERS; i++) ok(matmul_backward_cuda(dx, dw, NULL, dout, x, w, N, C, OC));
        report(s->name, "matmul_backward fp32 (dinp+dweight)", toc(ITERS), 0, 2 * flops);

        const float one = 1.0f, zero = 0.0f;
        blas_ok(cublasSetMathMode(ref_blas, CUBLAS_TF32_TENSOR_OP_MATH), "math mode");
        blas_ok(cublasSgemm(ref_blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, x, C, &zero, out, OC), "sgemm");
        tic();
        for (int i = 0; i < ITERS; i++)
            blas_ok(cublasSgemm(ref_blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, x, C,
                                &zero, out, OC), "sgemm");
        report(s->name, "ref: cublasSgemm with TF32 (not used)", toc(ITERS), 0, flops);
        blas_ok(cublasSetMathMode(ref_blas, CUBLAS_DEFAULT_MATH), "math mode");

        ok(matmul_forward_bf16w_cuda(out, x, w16, NULL, N, C, OC));
        tic();
        for (int i = 0; i < ITERS; i++) ok(matmul_forward_bf16w_cuda(out, x, w16, NULL, N, C, OC));
        report(s->name, "matmul_forward_bf16w (incl. rounding x)", toc(ITERS), 0, flops);

        tic();
        for (int i = 0; i < ITERS; i++)
            blas_ok(cublasGemmEx(ref_blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w16,
                                 CUDA_R_16BF, C, x16, CUDA_R_16BF, C, &zero, out, CUDA_R_32F, OC,
                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT), "gemmex");
        report(s->name, "ref: cublasGemmEx bf16 in, fp32 out", toc(ITERS), 0, flops);

        ok(matmul_backward_bf16w_cuda(dx, dout, w16, N, C, OC));
        tic();
        for (int i = 0; i < ITERS; i++) ok(matmul_backward_bf16w_cuda(dx, dout, w16, N, C, OC));
        report(s->name, "matmul_backward_bf16w (dinp)", toc(ITERS), 0, flops);

        hd_cuda_free(x), hd_cuda_free(w), hd_cuda_free(out), hd_cuda_free(dout);
        hd_cuda_free(dx), hd_cuda_free(dw), hd_cuda_free(w16), hd_cuda_free(x16);
    }
}

static void bench_attention(const Shape *s)
{
    const int b = s->b, T = s->T, H = s->H, Hkv = s->Hkv, hd = s->hd;
    const size_t nq = (size_t)b * T * H * hd, nkv = (size_t)b * T * Hkv * hd;
    const size_t natt = (size_t)b * H * T * T;
    float *q = dev_random(nq, 4), *k = dev_random(nkv, 5), *v = dev_random(nkv, 6);
    float *dout = dev_random(nq, 7), *out = dev_alloc(nq * 4), *att = dev_alloc(natt * 4);
    float *dq = dev_alloc(nq * 4), *dk = dev_alloc(nkv * 4), *dv = dev_alloc(nkv * 4);
    /* causal: about half of the T x T scores */
    const double causal = (double)T * (T + 1) / 2;
    const double fwd_flops = 4.0 * b * H * causal * hd, bwd_flops = 2 * fwd_flops;
    char what[96];

    const char *paths[] = {"direct", "gemm"};
    for (int p = 0; p < 2; p++) {
        setenv("HD_CUDA_ATTENTION", paths[p], 1);
        ok(attention_forward_cuda(out, att, q, k, v, NULL, b, T, T, T, H, Hkv, hd));
        tic();
        for (int i = 0; i < ITERS; i++)
            ok(attention_forward_cuda(out, att, q, k, v, NULL, b, T, T, T, H, Hkv, hd));
        snprintf(what, sizeof what, "attention_forward %s b%d T%d H%d/%d hd%d", paths[p], b, T, H,
                 Hkv, hd);
        report(s->name, what, toc(ITERS), 0, fwd_flops);

        ok(attention_backward_cuda(dq, dk, dv, dout, att, q, k, v, b, T, T, T, H, Hkv, hd));
        tic();
        for (int i = 0; i < ITERS; i++)
            ok(attention_backward_cuda(dq, dk, dv, dout, att, q, k, v, b, T, T, T, H, Hkv, hd));
        snprintf(what, sizeof what, "attention_backward %s", paths[p]);
        report(s->name, what, toc(ITERS), 0, bwd_flops);

        /* one generation step: a single query against T cached keys */
        tic();
        for (int i = 0; i < ITERS; i++)
            ok(attention_forward_cuda(out, att, q, k, v, NULL, b, 1, T, T, H, Hkv, hd));
        snprintf(what, sizeof what, "attention_forward %s Tq=1 Tk=%d", paths[p], T);
        report(s->name, what, toc(ITERS), (double)b * T * Hkv * hd * 2 * 4, 0);
    }
    unsetenv("HD_CUDA_ATTENTION");

    /* cuBLAS on [b*H, T, hd] contiguous copies: S = Q K^T, O = S V. */
    const float one = 1.0f, zero = 0.0f;
    const long long sqk = (long long)T * hd, ss = (long long)T * T;
    float *kf = dev_random(nq, 8), *vf = dev_random(nq, 9);
    tic();
    for (int i = 0; i < ITERS; i++) {
        /* column-major views: S^T = K Q^T, then O^T = V^T P^T */
        blas_ok(cublasSgemmStridedBatched(ref_blas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, &one, kf,
                                          hd, sqk, q, hd, sqk, &zero, att, T, ss, b * H), "QK");
        blas_ok(cublasSgemmStridedBatched(ref_blas, CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, &one, vf,
                                          hd, sqk, att, T, ss, &zero, out, hd, sqk, b * H), "PV");
    }
    report(s->name, "ref: 2 cuBLAS batched SGEMMs (full squares)", toc(ITERS), 0,
           4.0 * b * H * (double)T * T * hd);
    hd_cuda_free(q), hd_cuda_free(k), hd_cuda_free(v), hd_cuda_free(dout), hd_cuda_free(out);
    hd_cuda_free(att), hd_cuda_free(dq), hd_cuda_free(dk), hd_cuda_free(dv);
    hd_cuda_free(kf), hd_cuda_free(vf);
}

static void bench_pointwise(const Shape *s)
{
    const int N = s->b * s->T, d = s->d, H = s->H, hd = s->hd;
    const size_t nd = (size_t)N * d, nf = (size_t)N * s->ffn;
    float *x = dev_random(nf, 10), *y = dev_random(nf, 11), *z = dev_random(nf, 12);
    float *g1 = dev_alloc(nf * 4), *g2 = dev_alloc(nf * 4), *w = dev_random(d, 13);
    float *rstd = dev_alloc((size_t)N * 4), *dw = dev_alloc((size_t)d * 4);
    char what[96];

    bench_copy(s->name, nf * 4);

    ok(rmsnorm_forward_cuda(y, rstd, x, w, N, d, 1e-5f));
    tic();
    for (int i = 0; i < ITERS; i++) ok(rmsnorm_forward_cuda(y, rstd, x, w, N, d, 1e-5f));
    snprintf(what, sizeof what, "rmsnorm_forward %dx%d", N, d);
    report(s->name, what, toc(ITERS), 2.0 * nd * 4, 0);
    tic();
    for (int i = 0; i < ITERS; i++) ok(rmsnorm_backward_cuda(g1, dw, z, x, w, rstd, N, d));
    report(s->name, "rmsnorm_backward (dinp+dweight)", toc(ITERS), 4.0 * nd * 4, 0);

    tic();
    for (int i = 0; i < ITERS; i++) ok(swiglu_forward_cuda(z, x, y, nf));
    snprintf(what, sizeof what, "swiglu_forward %zu", nf);
    report(s->name, what, toc(ITERS), 3.0 * nf * 4, 0);
    tic();
    for (int i = 0; i < ITERS; i++) ok(swiglu_backward_cuda(g1, g2, z, x, y, nf));
    report(s->name, "swiglu_backward", toc(ITERS), 7.0 * nf * 4, 0);

    tic();
    for (int i = 0; i < ITERS; i++) ok(residual_forward_cuda(z, x, y, nd));
    snprintf(what, sizeof what, "residual_forward %zu", nd);
    report(s->name, what, toc(ITERS), 3.0 * nd * 4, 0);
    tic();
    for (int i = 0; i < ITERS; i++) ok(residual_backward_cuda(g1, g2, z, nd));
    report(s->name, "residual_backward", toc(ITERS), 5.0 * nd * 4, 0);

    /* rope over the query heads, cos/sin [N, hd/2] */
    const size_t nqh = (size_t)N * H * hd;
    float *cosv = dev_random((size_t)N * hd / 2, 14), *sinv = dev_random((size_t)N * hd / 2, 15);
    tic();
    for (int i = 0; i < ITERS; i++) ok(rope_forward_cuda(x, cosv, sinv, N, H, hd));
    snprintf(what, sizeof what, "rope_forward %dx%dx%d", N, H, hd);
    report(s->name, what, toc(ITERS), 2.0 * nqh * 4, 0);
    tic();
    for (int i = 0; i < ITERS; i++) ok(rope_backward_cuda(g1, z, cosv, sinv, N, H, hd));
    report(s->name, "rope_backward", toc(ITERS), 3.0 * nqh * 4, 0);

    /* embedding of N ids out of a V x d table */
    int *ids_h = hd_malloc((size_t)N * sizeof *ids_h);
    for (int n = 0; n < N; n++) ids_h[n] = (int)(((unsigned)n * 2654435761u) % (unsigned)s->V);
    int *ids = dev_alloc((size_t)N * sizeof *ids);
    ok(hd_cuda_upload(ids, ids_h, (size_t)N * sizeof *ids));
    float *table = dev_random((size_t)s->V * d, 16), *dtable = dev_alloc((size_t)s->V * d * 4);
    tic();
    for (int i = 0; i < ITERS; i++) ok(embedding_forward_cuda(y, ids, table, N, s->V, d));
    snprintf(what, sizeof what, "embedding_forward %d ids, d %d", N, d);
    report(s->name, what, toc(ITERS), 2.0 * nd * 4, 0);
    tic();
    for (int i = 0; i < ITERS; i++) ok(embedding_backward_cuda(dtable, y, ids, N, s->V, d));
    report(s->name, "embedding_backward (atomics)", toc(ITERS), 3.0 * nd * 4, 0);

    hd_cuda_free(x), hd_cuda_free(y), hd_cuda_free(z), hd_cuda_free(g1), hd_cuda_free(g2);
    hd_cuda_free(w), hd_cuda_free(rstd), hd_cuda_free(dw), hd_cuda_free(cosv), hd_cuda_free(sinv);
    hd_cuda_free(ids), hd_cuda_free(table), hd_cuda_free(dtable);
    free(ids_h);
}

static void bench_xent(const Shape *s)
{
    const int N = s->xent_rows, V = s->V;
    const size_t n = (size_t)N * V;
    float *logits = dev_random(n, 17), *probs = dev_alloc(n * 4), *dl = dev_alloc(n * 4);
    float *losses = dev_alloc((size_t)N * 4);
    int *t_h = hd_malloc((size_t)N * sizeof *t_h);
    for (int i = 0; i < N; i++) t_h[i] = i % 5 == 0 ? -100 : (i * 7919) % V;
    int *t = dev_alloc((size_t)N * sizeof *t);
    ok(hd_cuda_upload(t, t_h, (size_t)N * sizeof *t));
    char what[96];
    ok(softmax_xent_forward_cuda(losses, probs, logits, t, N, V));
    tic();
    for (int i = 0; i < ITERS; i++) ok(softmax_xent_forward_cuda(losses, probs, logits, t, N, V));
    snprintf(what, sizeof what, "softmax_xent_forward %dx%d", N, V);
    report(s->name, what, toc(ITERS), 2.0 * n * 4, 0);
    tic();
    for (int i = 0; i < ITERS; i++) ok(softmax_xent_backward_cuda(dl, NULL, probs, t, N, V));
    report(s->name, "softmax_xent_backward", toc(ITERS), 3.0 * n * 4, 0);
    hd_cuda_free(logits), hd_cuda_free(probs), hd_cuda_free(dl), hd_cuda_free(losses);
    hd_cuda_free(t);
    free(t_h);
}

static void bench_dequant(const Shape *s)
{
    const size_t n = (size_t)s->ffn * s->d; /* one MLP matrix */
    void *src = dev_alloc(n * 2); /* the largest format: bf16 */
    float *dst = dev_alloc(n * 4);
    struct {
        const char *name;
        int (*fn)(const void *, float *, size_t);
        double bytes_per_value;
    } kinds[] = {{"dequant_q4_0", dequant_q4_0_cuda, 18.0 / 32},
                 {"dequant_q4_1", dequant_q4_1_cuda, 20.0 / 32},
                 {"dequant_q8_0", dequant_q8_0_cuda, 34.0 / 32},
                 {"dequant_bf16", dequant_bf16_cuda, 2.0}};
    /* zero bytes decode to finite values in every format */
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        ok(kinds[k].fn(src, dst, n));
        tic();
        for (int i = 0; i < ITERS; i++) ok(kinds[k].fn(src, dst, n));
        char what[96];
        snprintf(what, sizeof what, "%s %zu values", kinds[k].name, n);
        report(s->name, what, toc(ITERS), n * (kinds[k].bytes_per_value + 4.0), 0);
    }
    hd_cuda_free(src), hd_cuda_free(dst);
}

int main(int argc, char **argv)
{
    hd_progname = "bench_cuda_kernels";
    const char *which = argc > 1 ? argv[1] : "all";
    if (!hd_cuda_available()) hd_die("%s", hd_last_error());
    ok(hd_cuda_init(-1));
    printf("# device: %s; %d calls per timing, after one warm-up\n", hd_cuda_device_name(), ITERS);
    cuda_ok(cudaEventCreate(&ev_start), "cudaEventCreate");
    cuda_ok(cudaEventCreate(&ev_stop), "cudaEventCreate");
    blas_ok(cublasCreate(&ref_blas), "cublasCreate");
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        const Shape *s = &SHAPES[i];
        if (strcmp(which, "all") && strcmp(which, s->name)) continue;
        bench_pointwise(s);
        bench_xent(s);
        bench_dequant(s);
        bench_matmul(s);
        bench_attention(s);
    }
    cublasDestroy(ref_blas);
    hd_cuda_shutdown();
    return 0;
}
#endif
