/* common/hypernet: the whole HyperDAS step (G, head, subspace module,
 * intervention, frozen target layers, loss) and its backward.
 *
 * (Parity with the PyTorch reference: test_hypernet_reference.c.)
 *
 * Finite differences on a tiny random configuration (V=32, d=16, H=4,
 *    Hkv=2, Lt=3, Lh=2, L=2, k=4), for each subspace module: for every
 *    trainable tensor, 4-point central differences (Richardson, truncation
 *    O(h^4)) of the fp32 loss at the tensor's 3 largest-gradient elements
 *    and along one random unit direction through all of it, against the
 *    analytic gradient.  The model cannot run in fp64, so the quotient
 *    carries the fp32 rounding of the loss (~5 x 1e-7), ~2e-5 after the
 *    division by the step: errors are therefore normalised by max(the
 *    tensor's largest gradient, FD_FLOOR = 5e-3), and h = 1e-2 for tensors
 *    whose largest gradient is >= 1e-2 (curvature dominates there), 3e-2
 *    below (rounding dominates).  FD_TOL = 1e-2; measured worst 4.2e-3, while
 *    a wrong sign, index or missing term gives ~1.  The sparsity term is off
 *    here (it jumps where a row sum crosses 1); the fixtures cover it.
 *    (The per-op checks in test_hypernet_ops are the tight, fp64 ones.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "hypernet/hypernet.h"
#include "model/llama_forward.h"
#include "model/llama_load.h"

#include "hypernet_test_batch.h"

#define FD_TOL 1e-2
#define FD_STEP 3e-2
#define FD_FLOOR 5e-3

/* ---- 1. finite differences on a tiny random configuration ---- */

static void fd_check_model(HnSubspace sub)
{
    /* thousands of forwards of a tiny model: a thread team only adds
     * scheduling latency (seconds on a loaded machine), no speed */
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    LlamaModel m;
    tiny_target(&m);
    HypernetConfig cfg = hypernet_default_config(&m.cfg);
    cfg.n_layers = 2, cfg.intervention_layer = 2, cfg.das_dim = 4, cfg.subspace = sub;
    cfg.sub_ffn = 12;
    Hypernet *hn = hypernet_create(&cfg, &m.cfg);
    assert_non_null(hn);
    assert_int_equal(hypernet_init(hn, &m, 0, 0.3f, 11), 0);
    Batch x;
    tiny_batch(&x, &m, cfg.intervention_layer);
    Step s = {hn, hn_acts_create(hn, 3, 5, 7, 6), &m, &x.batch, hn_default_options()};
    assert_non_null(s.acts);
    /* no sparsity term: it jumps where a source row's total weight crosses 1,
     * which finite differences cannot step over (its gradient is checked
     * in test_hypernet_ops and by the fixtures, lambda = 0.15 and 0.825) */
    s.opt.sparsity_weight = 0.0f;
    s.opt.mask_temperature = 0.7f;
    hypernet_zero_grad(hn);
    double L0 = step_loss(&s);
    assert_int_equal(hypernet_backward(hn, s.acts, &m), 0);
    double worst = 0, worst_dir = 0;
    const char *worst_name = "";
    for (int i = 0; i < hypernet_param_count(hn); i++) {
        const HnParam *p = hypernet_param(hn, i);
        if (!p->grad) continue;
        /* scale: the tensor's largest gradient */
        double gmax = 0;
        for (size_t j = 0; j < p->numel; j++)
            if (x_free(p, j)) gmax = fmax(gmax, fabs(p->grad[j]));
        if (gmax == 0) fail_msg("%s: all-zero gradient", p->name);
        /* its 3 largest elements, one at a time */
        size_t top[3] = {0, 0, 0};
        double topv[3] = {-1, -1, -1};
        for (size_t j = 0; j < p->numel; j++) {
            if (!x_free(p, j)) continue;
            double a = fabs(p->grad[j]);
            for (int q = 0; q < 3; q++)
                if (a > topv[q]) {
                    for (int z = 2; z > q; z--) top[z] = top[z - 1], topv[z] = topv[z - 1];
                    top[q] = j, topv[q] = a;
                    break;
                }
        }
        /* the step: truncation grows with the curvature of the large-gradient
         * tensors, rounding noise matters for the small-gradient ones */
        const double h = gmax >= 1e-2 ? FD_STEP / 3 : FD_STEP;
        double err = 0;
        for (int q = 0; q < 3 && topv[q] >= 0; q++) {
            float one = 1.0f;
            double fd = fd_along(&s, p->data + top[q], &one, 1, h);
            err = fmax(err, fabs(fd - p->grad[top[q]]) / fmax(gmax, FD_FLOOR));
        }
        /* one random direction through the whole tensor */
        float *dir = calloc(p->numel, sizeof *dir);
        double gd = 0, dn = 0, gn = 0;
        for (size_t j = 0; j < p->numel; j++) {
            if (!x_free(p, j)) continue;
            dir[j] = urand();
            dn += (double)dir[j] * dir[j];
        }
        for (size_t j = 0; j < p->numel; j++) {
            dir[j] /= (float)sqrt(dn);
            gd += (double)dir[j] * p->grad[j];
            if (x_free(p, j)) gn += (double)p->grad[j] * p->grad[j];
        }
        double fd = fd_along(&s, p->data, dir, p->numel, h);
        double err_dir = fabs(fd - gd) / fmax(sqrt(gn), FD_FLOOR);
        free(dir);
        if (err > worst) worst = err, worst_name = p->name;
        worst_dir = fmax(worst_dir, err_dir);
        if (!(err <= FD_TOL && err_dir <= FD_TOL))
            fail_msg("%s %s: FD error %.3e (elements) %.3e (direction) above %.0e",
                     hn_subspace_name(sub), p->name, err, err_dir, FD_TOL);
    }
    print_message("# FD %-8s loss %.4f: %d tensors, max err %.2e (%s), direction %.2e (tol %.0e)\n",
                  hn_subspace_name(sub), L0, hypernet_param_count(hn), worst, worst_name,
                  worst_dir, FD_TOL);
    batch_free(&x);
    hn_acts_free(s.acts);
    hypernet_free(hn);
    llama_model_free(&m);
    omp_set_num_threads(threads);
}

static void fd_model_reflect(void **state)
{
    (void)state;
    fd_check_model(HN_SUBSPACE_REFLECT);
}
static void fd_model_das(void **state)
{
    (void)state;
    fd_check_model(HN_SUBSPACE_DAS);
}
static void fd_model_mask(void **state)
{
    (void)state;
    fd_check_model(HN_SUBSPACE_MASK);
}
static void fd_model_none(void **state)
{
    (void)state;
    fd_check_model(HN_SUBSPACE_NONE);
}

/* Rows of a batch do not interact: row 0 alone gives row 0's W and new hs[L]. */
static void rows_are_independent(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    HnActs *a = hn_acts_create(hn, 3, 5, 7, 6);
    HnOptions opt = hn_default_options();
    HnLoss l3, l1;
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l3), 0);
    HnView v;
    hypernet_view(a, &v);
    const int P = 7 * 7, Bd = 7 * 16;
    float *W = malloc(P * sizeof *W), *nh = malloc(Bd * sizeof *nh);
    memcpy(W, v.W, P * sizeof *W);
    memcpy(nh, v.new_hidden, Bd * sizeof *nh);
    HnBatch one = x.batch;
    one.b = 1; /* row 0: every tensor starts with it */
    assert_int_equal(hypernet_forward(hn, a, &m, &one, &opt, &l1), 0);
    hypernet_view(a, &v);
    for (int i = 0; i < P; i++) assert_float_equal(v.W[i], W[i], 1e-6);
    for (int i = 0; i < Bd; i++) assert_float_equal(v.new_hidden[i], nh[i], 1e-5);
    free(W), free(nh);
    batch_free(&x);
    hn_acts_free(a);
    hypernet_free(hn);
    llama_model_free(&m);
}

static void bad_input_is_an_error(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    HypernetConfig cfg = hypernet_default_config(&m.cfg);
    cfg.n_layers = 2, cfg.das_dim = 4, cfg.sub_ffn = 12;
    cfg.intervention_layer = 0; /* hyperdas(7) 14.25: L = 0 is refused with a subspace module */
    assert_null(hypernet_create(&cfg, &m.cfg));
    assert_non_null(strstr(hd_last_error(), "intervention layer 0"));
    cfg.intervention_layer = 3; /* hs[Lt] is the final-norm output */
    assert_null(hypernet_create(&cfg, &m.cfg));
    cfg.intervention_layer = 2, cfg.n_layers = 4;
    assert_null(hypernet_create(&cfg, &m.cfg));
    cfg.n_layers = 2, cfg.das_dim = 17;
    assert_null(hypernet_create(&cfg, &m.cfg));
    cfg.das_dim = 4;
    Hypernet *hn = hypernet_create(&cfg, &m.cfg);
    assert_non_null(hn);
    assert_int_equal(hypernet_init(hn, &m, 1, 0.02f, 1), 0); /* from scratch */
    Batch x;
    tiny_batch(&x, &m, 2);
    HnActs *a = hn_acts_create(hn, 3, 5, 7, 6);
    HnOptions opt = hn_default_options();
    HnLoss l;
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l), 0);
    x.instr_ids[3] = 99;
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l), -1);
    assert_non_null(strstr(hd_last_error(), "outside the vocabulary"));
    assert_int_equal(hypernet_backward(hn, a, &m), -1); /* no forward to go back through */
    x.instr_ids[3] = 5;
    x.base_intv[2] = 7;
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l), -1);
    assert_non_null(strstr(hd_last_error(), "base intervention mask"));
    x.base_intv[2] = 1;
    x.instr_mask[4] = 0; /* row 0 ends with a pad */
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l), -1);
    x.instr_mask[4] = 1;
    x.src_states[100] = NAN;
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l), -1);
    assert_non_null(strstr(hd_last_error(), "not finite"));
    x.src_states[100] = 0;
    HnBatch big = x.batch;
    big.B = 8;
    assert_int_equal(hypernet_forward(hn, a, &m, &big, &opt, &l), -1);
    for (int i = 0; i < 3 * 7; i++) x.labels[i] = -100;
    assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &l), -1);
    assert_non_null(strstr(hd_last_error(), "no label"));
    batch_free(&x);
    hn_acts_free(a);
    hypernet_free(hn);
    llama_model_free(&m);
}

static void param_table_and_groups(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    HypernetConfig cfg = hypernet_default_config(&m.cfg);
    cfg.n_layers = 2, cfg.intervention_layer = 2, cfg.das_dim = 4, cfg.sub_ffn = 12;
    cfg.subspace = HN_SUBSPACE_MASK;
    Hypernet *hn = hypernet_create(&cfg, &m.cfg);
    assert_int_equal(hypernet_param_count(hn), 1 + 2 * 19 + 1 + 3 + 5 + 1);
    size_t total = 0;
    for (int i = 0; i < hypernet_param_count(hn); i++) {
        const HnParam *p = hypernet_param(hn, i);
        if (p->group == HN_GROUP_BUFFER) {
            assert_null(p->grad);
            assert_string_equal(p->name, "das.rotate.Q0");
            continue;
        }
        assert_int_equal(p->offset, total); /* dense, in table order */
        assert_ptr_equal(p->data, hn->params + p->offset);
        assert_ptr_equal(p->grad, hn->grads + p->offset);
        total += p->numel;
    }
    assert_int_equal(total, hn->n_params);
    const HnParam *p = hypernet_param_find(hn, "hyper.layers.1.base_cross_attn.k_proj.weight");
    assert_non_null(p);
    assert_ptr_equal(p->data, hn->w.layers[1].base_cross.wk);
    assert_int_equal(p->shape[0], 8);
    assert_int_equal(p->shape[1], 16);
    assert_int_equal(hypernet_param_find(hn, "das.mask_mlp.up_proj.weight")->group, HN_GROUP_MASK);
    assert_int_equal(hypernet_param_find(hn, "das.mask_norm.weight")->group, HN_GROUP_MAIN);
    assert_int_equal(hypernet_param_find(hn, "das.rotate.X")->group, HN_GROUP_ROTATE);
    AdamWSpan spans[64];
    const float lr[3] = {1, 2, 3}, wd[3] = {0.1f, 0.2f, 0.3f};
    int n = hypernet_adamw_spans(hn, lr, wd, spans);
    assert_int_equal(n, hypernet_param_count(hn) - 1);
    assert_true(spans[n - 1].lr == 3 && spans[n - 1].weight_decay == 0.3f); /* mask down_proj */
    /* init from the target: both cross blocks copy the self-attention, independently */
    assert_int_equal(hypernet_init(hn, &m, 0, 0.02f, 3), 0);
    assert_memory_equal(hn->w.layers[1].src_cross.wq, m.layers[1].wq, 16 * 16 * sizeof(float));
    assert_memory_equal(hn->w.layers[1].base_cross.norm, m.layers[1].attn_norm, 16 * sizeof(float));
    assert_true(hn->w.layers[1].src_cross.wq != hn->w.layers[1].self_attn.wq);
    /* X = -I, so R = Q0[:, :k], orthonormal */
    float R[16 * 4];
    hypernet_rotation(hn, R);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 4; j++) assert_float_equal(R[i * 4 + j], hn->rot_base[i * 16 + j], 1e-6);
    hypernet_free(hn);
    llama_model_free(&m);
}

/* hd-train's CPU step updates embedding rows that no batch has used with
 * the weight decay alone (hypernet_adamw_spans_split): three real steps,
 * each applied once with those spans and once with one full span per
 * tensor, must leave the same parameters and moments, bit for bit, and
 * some rows must have been left to the decay.  The moments of a resumed
 * run mark the same rows (hypernet_note_moments). */
static void adamw_split_spans_keep_every_value(void **state)
{
    (void)state;
    LlamaModel m;
    Batch x;
    Hypernet *hn = tiny_hypernet(&m, &x);
    HnActs *a = hn_acts_create(hn, 3, 5, 7, 6);
    HnOptions opt = hn_default_options();
    const size_t n = hn->n_params;
    float *pb = malloc(n * sizeof *pb), *ma = calloc(n, sizeof *ma), *va = calloc(n, sizeof *va);
    float *mb = calloc(n, sizeof *mb), *vb = calloc(n, sizeof *vb);
    memcpy(pb, hn->params, n * sizeof *pb);
    AdamWSpan full[64], *split = NULL;
    int cap = 0, decay_rows = 0;
    const float lr[3] = {3e-2f, 1e-2f, 1e-2f}, wd[3] = {0.1f, 0.0f, 0.1f};
    AdamWConfig acfg = adamw_default_config();
    for (int step = 1; step <= 3; step++) {
        if (step > 1) {
            batch_free(&x);
            tiny_batch(&x, &m, hn->cfg.intervention_layer);
        }
        HnLoss loss;
        hypernet_zero_grad(hn);
        assert_int_equal(hypernet_forward(hn, a, &m, &x.batch, &opt, &loss), 0);
        assert_int_equal(hypernet_backward(hn, a, &m), 0);
        int nf = hypernet_adamw_spans(hn, lr, wd, full);
        int ns = hypernet_adamw_spans_split(hn, lr, wd, &split, &cap);
        assert_true(ns > nf);
        decay_rows = 0;
        for (int i = 0; i < ns; i++)
            if (split[i].decay_only) decay_rows += (int)(split[i].count / (size_t)m.cfg.hidden_size);
        adamw_step(hn->params, hn->grads, 0.5f, ma, va, split, ns, &acfg, step);
        adamw_step(pb, hn->grads, 0.5f, mb, vb, full, nf, &acfg, step);
        assert_memory_equal(hn->params, pb, n * sizeof *pb);
        assert_memory_equal(ma, mb, n * sizeof *ma);
        assert_memory_equal(va, vb, n * sizeof *va);
    }
    assert_true(decay_rows > 0 && decay_rows < m.cfg.vocab_size);
    /* a resumed run: the rows with moments are marked again */
    Hypernet *again = hypernet_create(&hn->cfg, &m.cfg);
    hypernet_note_moments(again, ma, va);
    for (int r = 0; r < m.cfg.vocab_size; r++) {
        const float *mr = ma + (hn->w.tok_embed - hn->params) + (size_t)r * m.cfg.hidden_size;
        int nonzero = 0;
        for (int j = 0; j < m.cfg.hidden_size; j++) nonzero |= mr[j] != 0.0f;
        assert_int_equal(again->embed_row_moved[r], nonzero);
        if (nonzero) assert_int_equal(hn->embed_row_moved[r], 1);
    }
    hypernet_free(again);
    free(split), free(pb), free(ma), free(va), free(mb), free(vb);
    batch_free(&x);
    hn_acts_free(a);
    hypernet_free(hn);
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(param_table_and_groups),
        cmocka_unit_test(adamw_split_spans_keep_every_value),
        cmocka_unit_test(bad_input_is_an_error),
        cmocka_unit_test(rows_are_independent),
        cmocka_unit_test(fd_model_reflect),
        cmocka_unit_test(fd_model_das),
        cmocka_unit_test(fd_model_mask),
        cmocka_unit_test(fd_model_none),
    };
    return cmocka_run_group_tests_name("hypernet", tests, NULL, NULL);
}
