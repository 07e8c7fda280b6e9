/* Data parallelism without MPI: a batch cut into shares whose forward is
 * normalised by the whole batch's counts (HnOptions.global_label_tokens,
 * .global_examples) gives loss parts and gradients that add up to the whole
 * batch's -- what data-parallel hd-train relies on before its all-reduce.
 * The tiny random configuration of test_hypernet (V=32, d=16, Lt=3, Lh=2,
 * L=1, k=4), batch of 3 cut as 2 ranks would cut it: rows {0, 2} and {1}.
 * The whole batch sums the same terms in another order, so the tolerances
 * are fp32 ones: loss parts 1e-5 relative, gradients 1e-4 of each tensor's
 * largest (measured: equal to 7 digits, 3.5e-6; a share's sparsity term
 * left unscaled gives 2-5e-2).  Also: the process group of a single
 * process (common/base/dist.h) is rank 0 of 1 and its collectives change
 * nothing.  And the memory-saving paths that must not change a gradient
 * bit: hypernet_zero_grad's partial zeroing of the embedding gradient and
 * the target layers recomputed in the backward. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dist.h"
#include "base/error.h"
#include "hypernet/hypernet.h"
#include "model/llama_forward.h"
#include "model/llama_load.h"

/* the shared helpers include finite-difference ones this file does not use */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "hypernet_test_batch.h"
#pragma GCC diagnostic pop

#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-4

/* Rows rows[0..n) of a batch, copied into buffers of its own. */
typedef struct {
    HnBatch hb;
    void *bufs[16];
    int nbuf;
} Share;

static const void *take_rows(Share *s, const void *src, size_t row_bytes, const int *rows, int n)
{
    char *dst = malloc(row_bytes * (size_t)n);
    for (int i = 0; i < n; i++)
        memcpy(dst + row_bytes * i, (const char *)src + row_bytes * rows[i], row_bytes);
    s->bufs[s->nbuf++] = dst;
    return dst;
}

static void share_make(Share *s, const HnBatch *x, int nl, int d, const int *rows, int n)
{
    memset(s, 0, sizeof *s);
    HnBatch *h = &s->hb;
    *h = *x;
    h->b = n;
    const size_t E = (size_t)x->E * sizeof(int), B = (size_t)x->B * sizeof(int),
                 S = (size_t)x->S * sizeof(int), one = sizeof(int);
    h->instr_ids = take_rows(s, x->instr_ids, E, rows, n);
    h->instr_mask = take_rows(s, x->instr_mask, E, rows, n);
    h->base_attn_mask = take_rows(s, x->base_attn_mask, B, rows, n);
    h->base_intv_mask = take_rows(s, x->base_intv_mask, B, rows, n);
    h->labels = take_rows(s, x->labels, B, rows, n);
    h->src_intv_mask = take_rows(s, x->src_intv_mask, S, rows, n);
    h->is_causal = take_rows(s, x->is_causal, one, rows, n);
    h->base_entity_pos = take_rows(s, x->base_entity_pos, one, rows, n);
    h->src_entity_pos = take_rows(s, x->src_entity_pos, one, rows, n);
    h->base_states = take_rows(s, x->base_states, (size_t)x->B * nl * d * sizeof(float), rows, n);
    h->src_states = take_rows(s, x->src_states, (size_t)x->S * nl * d * sizeof(float), rows, n);
    h->src_ys = take_rows(s, x->src_ys, (size_t)x->S * d * sizeof(float), rows, n);
}

static void share_free(Share *s)
{
    for (int i = 0; i < s->nbuf; i++) free(s->bufs[i]);
}

static double rel_err(double got, double want)
{
    return fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1.0);
}

static void shares_add_up_to_the_batch(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    HnActs *a = hn_acts_create(hn, 3, 5, 7, 6);
    HnOptions opt = hn_default_options();
    opt.sparsity_weight = 0.7f;

    HnLoss whole;
    hypernet_zero_grad(hn);
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &whole), 0);
    assert_int_equal(hypernet_backward(hn, a, &m), 0);
    assert_true(whole.sparsity > 0.0f);
    float *want = malloc(hn->n_params * sizeof *want);
    memcpy(want, hn->grads, hn->n_params * sizeof *want);

    const int rows[2][2] = {{0, 2}, {1, -1}}, n_rows[2] = {2, 1};
    opt.global_examples = x.batch.b;
    opt.global_label_tokens = hn_batch_label_tokens(&x.batch);
    assert_int_equal(opt.global_label_tokens, whole.n_label_tokens);
    double pred = 0, sparsity = 0;
    int tokens = 0;
    hypernet_zero_grad(hn);
    for (int r = 0; r < 2; r++) { /* grads += each share's */
        Share s;
        share_make(&s, &x.batch, x.nl, x.d, rows[r], n_rows[r]);
        HnLoss part;
        assert_int_equal(hypernet_forward(hn, a, &m, &s.hb, &opt, &part), 0);
        assert_int_equal(hypernet_backward(hn, a, &m), 0);
        pred += part.pred, sparsity += part.sparsity, tokens += part.n_label_tokens;
        share_free(&s);
    }
    assert_int_equal(tokens, whole.n_label_tokens);
    print_message("pred loss %.7g vs %.7g, sparsity %.7g vs %.7g\n", pred, whole.pred, sparsity,
                  whole.sparsity);
    assert_true(rel_err(pred, whole.pred) < LOSS_TOL);
    assert_true(rel_err(sparsity, whole.sparsity) < LOSS_TOL);
    double worst = 0;
    for (int i = 0; i < hypernet_param_count(hn); i++) {
        const HnParam *p = hypernet_param(hn, i);
        if (!p->grad) continue;
        double gmax = 0, dmax = 0;
        for (size_t j = 0; j < p->numel; j++) {
            double w = want[p->offset + j], g = p->grad[j];
            gmax = fmax(gmax, fabs(w));
            dmax = fmax(dmax, fabs(g - w));
        }
        double err = gmax > 0 ? dmax / gmax : dmax;
        if (err > GRAD_TOL) print_message("%s: %.3g\n", p->name, err);
        worst = fmax(worst, err);
    }
    print_message("gradients: worst %.3g of the tensor's largest\n", worst);
    assert_true(worst < GRAD_TOL);

    /* a share larger than the global batch it claims to be part of */
    Share s;
    share_make(&s, &x.batch, x.nl, x.d, rows[0], 2);
    HnLoss l;
    opt.global_examples = 1;
    assert_int_equal(hypernet_forward(hn, a, &m, &s.hb, &opt, &l), -1);
    assert_non_null(strstr(hd_last_error(), "smaller than this share"));
    share_free(&s);

    free(want);
    batch_free(&x);
    hn_acts_free(a);
    hypernet_free(hn);
    llama_model_free(&m);
}

/* hypernet_zero_grad clears only the embedding rows the backward wrote (so
 * rows no batch uses never become resident): gradients after zeroing equal
 * those of a hypernetwork that never saw the earlier batch, bit for bit,
 * and after hypernet_grads_written (an all-reduce wrote every value) the
 * whole buffer is cleared. */
static void zero_grad_clears_what_was_written(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    HnActs *a = hn_acts_create(hn, 3, 5, 7, 6);
    HnOptions opt = hn_default_options();
    const int one_row[1] = {1};
    Share s;
    share_make(&s, &x.batch, x.nl, x.d, one_row, 1);
    HnLoss loss;
    const size_t bytes = hn->n_params * sizeof(float);
    const size_t d = (size_t)m.cfg.hidden_size, V = (size_t)m.cfg.vocab_size;

    hypernet_zero_grad(hn); /* fresh buffers: row 1 alone */
    assert_int_equal(hypernet_forward(hn, a, &m, &s.hb, &opt, &loss), 0);
    assert_int_equal(hypernet_backward(hn, a, &m), 0);
    float *want = malloc(bytes);
    memcpy(want, hn->grads, bytes);

    hypernet_zero_grad(hn); /* the whole batch writes rows row 1 does not use */
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &loss), 0);
    assert_int_equal(hypernet_backward(hn, a, &m), 0);
    const float *emb_want = want + (hn->g.tok_embed - hn->grads);
    int extra_rows = 0;
    for (size_t r = 0; r < V; r++) {
        int here = 0, there = 0;
        for (size_t j = 0; j < d; j++) {
            here |= hn->g.tok_embed[r * d + j] != 0.0f;
            there |= emb_want[r * d + j] != 0.0f;
        }
        extra_rows += here && !there;
    }
    print_message("embedding rows with a gradient from the whole batch only: %d\n", extra_rows);
    assert_true(extra_rows > 0); /* else this test could not fail */

    hypernet_zero_grad(hn);
    assert_int_equal(hypernet_forward(hn, a, &m, &s.hb, &opt, &loss), 0);
    assert_int_equal(hypernet_backward(hn, a, &m), 0);
    assert_memory_equal(hn->grads, want, bytes);

    for (size_t i = 0; i < hn->n_params; i++) hn->grads[i] = 1.0f; /* as an all-reduce */
    hypernet_grads_written(hn);
    hypernet_zero_grad(hn);
    for (size_t i = 0; i < hn->n_params; i++) assert_true(hn->grads[i] == 0.0f);

    free(want);
    share_free(&s);
    batch_free(&x);
    hn_acts_free(a);
    hypernet_free(hn);
    llama_model_free(&m);
}

/* hn_acts_create_recomputing (hd-train --recompute-target): the target's
 * layers rerun in the backward give the same loss and gradients, bit for
 * bit, as kept internals. */
static void recomputed_target_layers_give_the_same_gradients(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    HnOptions opt = hn_default_options();
    opt.sparsity_weight = 0.7f;
    HnActs *acts[2] = {hn_acts_create(hn, 3, 5, 7, 6), hn_acts_create_recomputing(hn, 3, 5, 7, 6)};
    const size_t bytes = hn->n_params * sizeof(float);
    float *grads[2];
    HnLoss loss[2];
    for (int i = 0; i < 2; i++) {
        hypernet_zero_grad(hn);
        assert_int_equal(hypernet_forward(hn, acts[i], &m, &x.batch, &opt, &loss[i]), 0);
        assert_int_equal(hypernet_backward(hn, acts[i], &m), 0);
        grads[i] = malloc(bytes);
        memcpy(grads[i], hn->grads, bytes);
    }
    assert_true(loss[0].total == loss[1].total && loss[0].pred == loss[1].pred);
    assert_memory_equal(grads[0], grads[1], bytes);
    double norm = 0;
    for (size_t i = 0; i < hn->n_params; i++) norm += (double)grads[0][i] * grads[0][i];
    assert_true(norm > 0);
    for (int i = 0; i < 2; i++) free(grads[i]), hn_acts_free(acts[i]);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

/* Outside mpirun (and in any build without MPI) the group is one process. */
static void a_single_process_is_a_group_of_one(void **state)
{
    (void)state;
    int argc = 1;
    char *args[] = {"test_hypernet_shards", NULL}, **argv = args;
    assert_int_equal(dist_init(&argc, &argv), 1);
    assert_int_equal(dist_rank(), 0);
    assert_int_equal(dist_size(), 1);
#ifdef HD_MPI
    assert_int_equal(dist_compiled(), 1);
#else
    assert_int_equal(dist_compiled(), 0);
#endif
    float f[2] = {1.5f, -2.0f};
    double g[1] = {3.25};
    int64_t k[2] = {7, -9};
    dist_allreduce_sum_f32(f, 2);
    dist_allreduce_sum_f64(g, 1);
    dist_allreduce_sum_i64(k, 1);
    dist_allreduce_max_i64(k + 1, 1);
    dist_barrier();
    assert_true(f[0] == 1.5f && f[1] == -2.0f && g[0] == 3.25 && k[0] == 7 && k[1] == -9);
    assert_null(hd_exit_hook); /* hd_die exits this process alone */
    dist_finalize();
}

int main(void)
{
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK")) {
        fprintf(stderr, "test_hypernet_shards: run it without mpirun\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shares_add_up_to_the_batch),
        cmocka_unit_test(zero_grad_clears_what_was_written),
        cmocka_unit_test(recomputed_target_layers_give_the_same_gradients),
        cmocka_unit_test(a_single_process_is_a_group_of_one),
    };
    return cmocka_run_group_tests_name("hypernet_shards", tests, NULL, NULL);
}
