/* llama_model_pack_layers: hd-train keeps the frozen layers [L, N) as the
 * weight file stores them and converts one layer at a time.  What is
 * checked, on the fixture models of both loaders (a GGUF of mixed quant
 * types, a sharded bf16 Hugging Face directory, an fp32 one): the packed
 * layers give the same hidden states, logits and input gradients bit for
 * bit (the conversion is the loader's own, so nothing else is acceptable);
 * fp32 files are left alone; a file that is not the model's is refused
 * with the model unchanged; a released layer stays released. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "model/llama_forward.h"
#include "model/llama_load.h"
#include "model/llama_pack.h"
#include "llama_test_models.h"

/* Hidden states of every layer, and the gradient reaching layer `from`'s
 * input from a fixed upstream gradient at the top, running [from, N). */
typedef struct {
    float *hidden; /* [(N + 1) * B * T * d] */
    float *dx;     /* [B * T * d] */
} Pass;

static Pass run(const LlamaModel *m, const LlamaActivations *start, int from)
{
    const LlamaConfig *c = &m->cfg;
    const int N = c->n_layers;
    const size_t plane = (size_t)B * T * c->hidden_size;
    Pass p = {calloc((N + 1) * plane, sizeof(float)), calloc(plane, sizeof(float))};
    LlamaActivations *a = llama_acts_create(c, B, T, 0);
    assert_non_null(a);
    assert_int_equal(llama_forward_range(m, a, from == 0 ? batch_ids : NULL,
                                         from == 0 ? NULL : llama_residual(start, from), batch_mask,
                                         NULL, B, T, from, N),
                     0);
    for (int l = from; l <= N; l++) memcpy(p.hidden + l * plane, llama_hidden_state(a, l), plane * sizeof(float));
    for (size_t i = 0; i < plane; i++) p.dx[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
    assert_int_equal(llama_backward_range(m, a, p.dx, from, N, NULL), 0);
    llama_acts_free(a);
    return p;
}

static void same_bits_after_packing(const char *path, int expect_packed)
{
    LlamaModel m;
    if (llama_load(&m, path) != 0) fail_msg("%s", hd_last_error());
    make_batch();
    const LlamaConfig *c = &m.cfg;
    const int N = c->n_layers, from = N > 1 ? 1 : 0;
    const size_t plane = (size_t)B * T * c->hidden_size;
    LlamaActivations *start = llama_acts_create(c, B, T, 0);
    assert_int_equal(llama_forward(&m, start, batch_ids, batch_mask, NULL, B, T), 0);
    Pass before = run(&m, start, from);

    long long unpacked = llama_model_pack_layers(&m, path, from, N);
    print_message("# %s: layers [%d, %d) packed, %lld fp32 bytes no longer held\n", path, from, N, unpacked);
    assert_true(unpacked >= 0);
    if (!expect_packed) {
        assert_int_equal(unpacked, 0);
        assert_null(m.packed);
    } else {
        assert_true(unpacked > 0);
        assert_true(llama_model_layer_packed(&m, N - 1));
        if (from > 0) assert_false(llama_model_layer_packed(&m, 0));
        assert_int_equal(llama_model_check_layers(&m, 0, N), 0);
    }
    Pass after = run(&m, start, from);
    assert_memory_equal(after.hidden + from * plane, before.hidden + from * plane,
                        (N + 1 - from) * plane * sizeof(float));
    assert_memory_equal(after.dx, before.dx, plane * sizeof(float));
    /* again, with the scratch holding the last layer from the backward */
    Pass again = run(&m, start, from);
    assert_memory_equal(again.hidden + from * plane, before.hidden + from * plane,
                        (N + 1 - from) * plane * sizeof(float));
    free(before.hidden), free(before.dx), free(after.hidden), free(after.dx);
    free(again.hidden), free(again.dx);
    llama_acts_free(start);
    llama_model_free(&m);
}

static void gguf_mixed_types(void **state)
{
    (void)state;
    same_bits_after_packing("tests/fixtures/gguf/tiny-mixed.gguf", 1);
}

static void hf_bf16_shards(void **state)
{
    (void)state;
    same_bits_after_packing("tests/fixtures/tiny-llama-bf16", 1);
}

static void hf_f32_is_left_alone(void **state)
{
    (void)state;
    same_bits_after_packing(TINY_DIR, 0);
}

/* Another model's file: refused, and the model still runs as loaded. */
static void wrong_file_is_refused(void **state)
{
    (void)state;
    LlamaModel m;
    const char *path = "tests/fixtures/tiny-llama-bf16";
    if (llama_load(&m, path) != 0) fail_msg("%s", hd_last_error());
    const int N = m.cfg.n_layers;
    assert_int_equal(llama_model_pack_layers(&m, "tests/fixtures/gguf/tiny-mixed.gguf", 1, N), -1);
    print_message("# %s\n", hd_last_error());
    assert_non_null(strstr(hd_last_error(), "tiny-mixed.gguf"));
    assert_null(m.packed);
    assert_non_null(m.layers[1].wq);
    assert_int_equal(llama_model_pack_layers(&m, "tests/fixtures/no-such-model", 1, N), -1);
    assert_non_null(strstr(hd_last_error(), "no-such-model"));
    assert_int_equal(llama_model_pack_layers(&m, path, 0, N + 1), -1);
    assert_null(m.packed);
    llama_model_free(&m);
}

/* Released layers stay released: running them is still the release's error. */
static void released_layers_stay_released(void **state)
{
    (void)state;
    LlamaModel m;
    const char *path = "tests/fixtures/tiny-llama-bf16";
    if (llama_load(&m, path) != 0) fail_msg("%s", hd_last_error());
    const int N = m.cfg.n_layers;
    llama_model_release_layers(&m, 0, 1);
    assert_true(llama_model_pack_layers(&m, path, 0, N) > 0);
    assert_false(llama_model_layer_packed(&m, 0));
    assert_true(llama_model_layer_packed(&m, 1));
    assert_int_equal(llama_model_check_layers(&m, 0, 1), -1);
    assert_non_null(strstr(hd_last_error(), "layer 0 were released"));
    assert_int_equal(llama_model_check_layers(&m, 1, N), 0);
    assert_int_equal(llama_model_pack_layers(&m, path, 1, N), -1); /* once */
    llama_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gguf_mixed_types),
        cmocka_unit_test(hf_bf16_shards),
        cmocka_unit_test(hf_f32_is_left_alone),
        cmocka_unit_test(wrong_file_is_refused),
        cmocka_unit_test(released_layers_stay_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
