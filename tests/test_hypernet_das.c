/* The DAS/MDAS baseline method of common/hypernet (hyperdas(7) 8): no
 * hypernetwork, one learned rotation R applied at the entity's last token
 * of base and source.
 *
 * - Its parameters are das.rotate.X alone (+ the Q0 buffer); a DAS
 *   configuration with G layers or another subspace is refused.
 * - The forward is the formula of hyperdas(7) 8: at the base entity position
 *   out = xb + (ys R - xb R) R^T with ys the source's entity state, the
 *   base unchanged elsewhere (checked in fp64 against the C output; the
 *   tolerance 1e-5 relative covers fp32 accumulation over d = 16).
 * - The identity intervention (source = base) changes nothing: the new
 *   hidden state equals the base's exactly and the loss equals that of a
 *   run with R's projection of a zero difference.
 * - The gradient of X matches 4-point central differences (same scheme and
 *   normalisation as test_hypernet.c, tolerance FD_TOL = 1e-2 of the
 *   largest gradient; measured in the note).
 * - The random control picks exactly one visible (source, base) pair. */
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

#include "hypernet_test_batch.h"

#define FD_TOL 1e-2
#define FD_FLOOR 5e-3

static void only_the_rotation_is_trained(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    Hypernet *hn = das_test_hypernet(&m, 2, 4);
    assert_int_equal(hypernet_param_count(hn), 2);
    assert_string_equal(hypernet_param(hn, 0)->name, "das.rotate.X");
    assert_string_equal(hypernet_param(hn, 1)->name, "das.rotate.Q0");
    assert_int_equal(hypernet_param(hn, 1)->group, HN_GROUP_BUFFER);
    assert_int_equal(hn->n_params, 16 * 4);
    hypernet_free(hn);
    /* DAS with G layers, or with another subspace module: refused */
    HypernetConfig cfg = hypernet_default_config(&m.cfg);
    cfg.method = HN_METHOD_DAS, cfg.n_layers = 1, cfg.subspace = HN_SUBSPACE_DAS;
    cfg.intervention_layer = 2, cfg.das_dim = 4;
    assert_null(hypernet_create(&cfg, &m.cfg));
    assert_non_null(strstr(hd_last_error(), "DAS method"));
    cfg.n_layers = 0, cfg.subspace = HN_SUBSPACE_REFLECT;
    assert_null(hypernet_create(&cfg, &m.cfg));
    assert_int_equal(hn_method_from_name("mdas"), HN_METHOD_DAS);
    assert_int_equal(hn_method_from_name("hyperdas"), HN_METHOD_HYPERDAS);
    assert_int_equal(hn_method_from_name("boundless"), -1);
    llama_model_free(&m);
}

static void forward_is_the_das_formula(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    const int L = 2, k = 4, d = m.cfg.hidden_size;
    Hypernet *hn = das_test_hypernet(&m, L, k);
    Batch x;
    tiny_batch(&x, &m, L);
    HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.S);
    assert_non_null(a);
    HnOptions opt = hn_default_options(); /* SELECT_SOFT: the entity tokens for DAS */
    HnLoss loss;
    if (hypernet_forward(hn, a, &m, &x.batch, &opt, &loss)) fail_msg("%s", hd_last_error());
    assert_true(loss.sparsity == 0.0f);
    HnView v;
    hypernet_view(a, &v);
    float *R = malloc((size_t)d * k * sizeof *R);
    hypernet_rotation(hn, R);
    const int nl = x.nl;
    double worst = 0;
    for (int r = 0; r < x.b; r++)
        for (int t = 0; t < x.B; t++) {
            const float *xb = x.base_states + (((size_t)r * x.B + t) * nl + L) * d;
            const float *got = v.new_hidden + ((size_t)r * x.B + t) * d;
            double want[16];
            for (int i = 0; i < d; i++) want[i] = xb[i];
            if (t == x.base_pos[r]) {
                const float *ys = x.src_ys + ((size_t)r * x.S + x.src_pos[r]) * d;
                for (int j = 0; j < k; j++) {
                    double p = 0;
                    for (int i = 0; i < d; i++) p += ((double)ys[i] - xb[i]) * R[(size_t)i * k + j];
                    for (int i = 0; i < d; i++) want[i] += p * R[(size_t)i * k + j];
                }
            }
            double scale = 0;
            for (int i = 0; i < d; i++) scale = fmax(scale, fabs(want[i]));
            for (int i = 0; i < d; i++) worst = fmax(worst, fabs(got[i] - want[i]) / scale);
        }
    /* and the intervention did change the entity positions */
    double moved = 0;
    for (int r = 0; r < x.b; r++) {
        const float *xb = x.base_states + (((size_t)r * x.B + x.base_pos[r]) * nl + L) * d;
        const float *got = v.new_hidden + ((size_t)r * x.B + x.base_pos[r]) * d;
        for (int i = 0; i < d; i++) moved = fmax(moved, fabs(got[i] - xb[i]));
    }
    printf("# DAS forward vs fp64 formula: max rel err %.2e (largest change %.3g)\n", worst, moved);
    assert_true(moved > 1e-2);
    assert_true(worst < 1e-5);
    free(R);
    hn_acts_free(a);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

static void identity_intervention_changes_nothing(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    const int L = 2;
    Hypernet *hn = das_test_hypernet(&m, L, 4);
    Batch x;
    tiny_batch(&x, &m, L);
    /* source := base: same states, the same entity position */
    HnBatch h = x.batch;
    h.S = x.B;
    h.src_states = x.base_states;
    h.src_ys = NULL;
    h.src_intv_mask = x.base_intv;
    h.src_entity_pos = x.base_pos;
    HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.B);
    assert_non_null(a);
    HnOptions opt = hn_default_options();
    HnLoss loss;
    if (hypernet_forward(hn, a, &m, &h, &opt, &loss)) fail_msg("%s", hd_last_error());
    HnView v;
    hypernet_view(a, &v);
    const int nl = x.nl, d = m.cfg.hidden_size;
    for (int i = 0; i < x.b * x.B; i++)
        assert_memory_equal(v.new_hidden + (size_t)i * d,
                            x.base_states + ((size_t)i * nl + L) * d, d * sizeof(float));
    hn_acts_free(a);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

static void rotation_gradient_matches_finite_differences(void **state)
{
    (void)state;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    LlamaModel m;
    tiny_target(&m);
    Hypernet *hn = das_test_hypernet(&m, 2, 4);
    Batch x;
    tiny_batch(&x, &m, 2);
    Step s = {hn, hn_acts_create(hn, x.b, x.E, x.B, x.S), &m, &x.batch, hn_default_options()};
    assert_non_null(s.acts);
    s.opt.causal_weight = 1.0f, s.opt.iso_weight = 1.0f;
    hypernet_zero_grad(hn);
    step_loss(&s);
    assert_int_equal(hypernet_backward(hn, s.acts, &m), 0);
    const HnParam *p = hypernet_param_find(hn, "das.rotate.X");
    double gmax = 0;
    for (size_t j = 0; j < p->numel; j++)
        if (x_free(p, j)) gmax = fmax(gmax, fabs(p->grad[j]));
    assert_true(gmax > 0);
    double worst = 0;
    for (size_t j = 0; j < p->numel; j++) {
        if (!x_free(p, j)) continue;
        float one = 1.0f;
        double fd = fd_along(&s, p->data + j, &one, 1, 1e-2);
        worst = fmax(worst, fabs(fd - p->grad[j]) / fmax(gmax, FD_FLOOR));
    }
    printf("# DAS dL/dX vs finite differences: max err %.2e of the largest gradient %.3g\n",
           worst, gmax);
    assert_true(worst < FD_TOL);
    omp_set_num_threads(threads);
    hn_acts_free(s.acts);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

static void random_control_picks_one_visible_pair(void **state)
{
    (void)state;
    LlamaModel m;
    tiny_target(&m);
    Hypernet *hn = das_test_hypernet(&m, 2, 4);
    Batch x;
    tiny_batch(&x, &m, 2);
    HnActs *a = hn_acts_create(hn, x.b, x.E, x.B, x.S);
    HnOptions opt = hn_default_options();
    opt.mode = SELECT_RANDOM;
    HnLoss loss;
    if (hypernet_forward(hn, a, &m, &x.batch, &opt, &loss)) fail_msg("%s", hd_last_error());
    HnView v;
    hypernet_view(a, &v);
    const int S = x.S, B = x.B;
    for (int r = 0; r < x.b; r++) {
        const float *w = v.W_used + (size_t)r * (S + 1) * B;
        int n = 0;
        for (int s = 0; s < S; s++)
            for (int t = 0; t < B; t++)
                if (w[(size_t)s * B + t] != 0.0f) {
                    n++;
                    assert_true(w[(size_t)s * B + t] == 1.0f);
                    assert_true(x.src_intv[r * S + s] && x.base_intv[r * B + t]);
                    assert_true(w[(size_t)S * B + t] == 0.0f);
                }
        assert_int_equal(n, 1);
    }
    hn_acts_free(a);
    batch_free(&x);
    hypernet_free(hn);
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(only_the_rotation_is_trained),
        cmocka_unit_test(forward_is_the_das_formula),
        cmocka_unit_test(identity_intervention_changes_nothing),
        cmocka_unit_test(rotation_gradient_matches_finite_differences),
        cmocka_unit_test(random_control_picks_one_visible_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
