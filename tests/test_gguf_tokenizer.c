/* The tokenizer built from GGUF metadata: a hand-made vocabulary, missing
 * keys, and SmolLM2's own tokenizer against the ids transformers produced
 * for the reference prompts (tests/fixtures/smollm2). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "tokenizer/gguf_tokenizer.h"
#include "loader_test_util.h"
#include "formats/safetensors.h"

#define SMOLLM2 "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static void put_str_array(Buf *o, const char *key, const char *const *s, int n)
{
    put_key(o, key, GGUF_ARRAY), put_u32(o, GGUF_STRING), put_u64(o, (uint64_t)n);
    for (int i = 0; i < n; i++) put_str(o, s[i]);
}

static void tiny_vocabulary(void **state)
{
    (void)state;
    const char *tokens[] = {"a", "b", "ab", "<|end|>"};
    const char *merges[] = {"a b"};
    Buf o = {0};
    put_header(&o, 3, 0, 6);
    put_key(&o, "tokenizer.ggml.model", GGUF_STRING), put_str(&o, "gpt2");
    put_str_array(&o, "tokenizer.ggml.tokens", tokens, 4);
    put_str_array(&o, "tokenizer.ggml.merges", merges, 1);
    put_key(&o, "tokenizer.ggml.token_type", GGUF_ARRAY), put_u32(&o, GGUF_INT32), put_u64(&o, 4);
    put_u32(&o, 1), put_u32(&o, 1), put_u32(&o, 1), put_u32(&o, 3);
    put_key(&o, "tokenizer.ggml.eos_token_id", GGUF_UINT32), put_u32(&o, 3);
    put_key(&o, "tokenizer.ggml.add_bos_token", GGUF_BOOL), put_le(&o, 0, 1);
    GgufFile g;
    assert_int_equal(gguf_parse(&g, o.b, o.n, "tok.gguf"), 0);
    Tokenizer *t = tokenizer_from_gguf(&g);
    if (!t) fprintf(stderr, "%s\n", hd_last_error());
    assert_non_null(t);
    assert_int_equal(tokenizer_eos_id(t), 3);
    assert_int_equal(tokenizer_bos_id(t), -1);
    TokenList list = {0};
    assert_int_equal(tokenizer_encode(t, "abab<|end|>", 11, 1, &list), 0);
    assert_int_equal(list.n, 3);
    assert_int_equal(list.ids[0], 2);
    assert_int_equal(list.ids[1], 2);
    assert_int_equal(list.ids[2], 3);
    token_list_free(&list);
    tokenizer_free(t);
    gguf_close(&g);
    free(o.b);

    /* no tokens: one message naming the key */
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 1);
    put_key(&o, "tokenizer.ggml.model", GGUF_STRING), put_str(&o, "gpt2");
    assert_int_equal(gguf_parse(&g, o.b, o.n, "notok.gguf"), 0);
    assert_null(tokenizer_from_gguf(&g));
    assert_error_mentions("notok.gguf", "tokenizer.ggml.tokens");
    gguf_close(&g);
    free(o.b);
}

static void smollm2_tokenizer_matches_fixture_ids(void **state)
{
    (void)state;
    if (!file_exists(SMOLLM2)) skip();   /* needs `make model` */
    Tokenizer *t = tokenizer_load_gguf(SMOLLM2);
    if (!t) fprintf(stderr, "%s\n", hd_last_error());
    assert_non_null(t);
    assert_int_equal(tokenizer_vocab_size(t), 49152);
    StFile ref;
    assert_int_equal(st_open(&ref, "tests/fixtures/smollm2/reference.safetensors"), 0);
    const char *prompts[] = {"The capital of France is", "Paris is a city in",
                             "The Eiffel Tower is located in the city of", "Water boils at a temperature of"};
    TokenList list = {0};
    for (int k = 0; k < 4; k++) {
        char key[32];
        snprintf(key, sizeof key, "p%d.input_ids", k);
        const StTensor *ids = st_find(&ref, key);
        assert_non_null(ids);
        assert_int_equal(tokenizer_encode(t, prompts[k], strlen(prompts[k]), 0, &list), 0);
        assert_int_equal(list.n, ids->numel);
        for (size_t i = 0; i < list.n; i++) {
            int64_t want;
            memcpy(&want, ids->data + 8 * i, 8);
            assert_int_equal(list.ids[i], want);
        }
    }
    token_list_free(&list);
    st_close(&ref);
    tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_vocabulary),
        cmocka_unit_test(smollm2_tokenizer_matches_fixture_ids),
    };
    return cmocka_run_group_tests_name("gguf_tokenizer", tests, scratch_setup, scratch_cleanup);
}
