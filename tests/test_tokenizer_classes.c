/* Tokenizer parity with Hugging Face `tokenizers` where a Unicode character
 * class decides the split (fixture tests/fixtures/tokenizer/classes.json,
 * written by tests/ref/gen_tokenizer_fixtures.py: see class_corpus()):
 *
 *  - whitespace: HF's regexes (Oniguruma) take \s as the White_Space
 *    property; PCRE2's \s under UCP also matches U+180E, which would change
 *    the pieces of '420    \u180ewith' for Llama 3, 3.1 and SmolLM2;
 *  - digits: HF's Digits pre-tokenizer is Rust's char::is_numeric
 *    (Unicode 15), which splits off the Kawi, Kaktovik and Nag Mundari
 *    digits that PCRE2 10.42's tables (Unicode 14) do not know.
 *
 * The tiny tokenizers always run (tokenizer.json and GGUF-style arrays):
 * tiny_classes_smollm and tiny_classes_llama3, trained with merges across
 * every such boundary, turn any piece HF does not cut into other ids; the
 * real ones run when ../shared/tokenizers and models/ hold them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

#define FIX "tests/fixtures/tokenizer"
#define SHARED "../shared/tokenizers"
#define SMOL_GGUF "models/SmolLM2-135M-Instruct.Q4_1.gguf"

static void print_text(const char *s, size_t n)
{
    printf("#   text \"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') printf("\\x%02x", c);
        else putchar(c);
    }
    printf("\"\n");
}

/* Encodes every string of the fixture with t and compares ids and byte
 * offsets with the entry of `name`; returns how many strings differ. */
static size_t compare(const char *name, const char *how, const Tokenizer *t)
{
    json_t *root = load_json(FIX "/classes.json");
    json_t *strings = json_object_get(root, "strings");
    json_t *expect = json_object_get(json_object_get(root, "tokenizers"), name);
    assert_true(json_is_array(strings) && json_is_array(expect));
    assert_int_equal(json_array_size(strings), json_array_size(expect));
    TokenList tl = {0};
    size_t bad = 0, n = json_array_size(strings);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(strings, i), *e = json_array_get(expect, i);
        json_t *ids = json_object_get(e, "ids"), *offs = json_object_get(e, "offsets");
        assert_int_equal(tokenizer_encode(t, json_string_value(s), json_string_length(s), 0, &tl), 0);
        int ok = json_array_size(ids) == tl.n && json_array_size(offs) == 2 * tl.n;
        for (size_t k = 0; ok && k < tl.n; k++)
            ok = json_integer_value(json_array_get(ids, k)) == tl.ids[k] &&
                 json_integer_value(json_array_get(offs, 2 * k)) == tl.start[k] &&
                 json_integer_value(json_array_get(offs, 2 * k + 1)) == tl.end[k];
        if (!ok && bad++ < 8) {
            printf("# %s (%s): string %zu differs\n", name, how, i);
            print_text(json_string_value(s), json_string_length(s));
            printf("#   want");
            for (size_t k = 0; k < json_array_size(ids); k++)
                printf(" %lld", json_integer_value(json_array_get(ids, k)));
            printf("\n#   got ");
            for (size_t k = 0; k < tl.n; k++) printf(" %d", tl.ids[k]);
            printf("\n");
        }
    }
    printf("# %s (%s): %zu strings, %zu differ\n", name, how, n, bad);
    token_list_free(&tl);
    json_decref(root);
    return bad;
}

static void from_json(const char *name, const char *path)
{
    if (!exists(path)) {
        printf("# %s: %s is missing: skipped\n", name, path);
        skip();
    }
    Tokenizer *t = tokenizer_load_json(path, NULL);
    if (!t) fail_msg("%s", hd_last_error());
    assert_int_equal(compare(name, "tokenizer.json", t), 0);
    tokenizer_free(t);
}

/* The GGUF path for a tiny tokenizer: tokenizer.ggml.pre decides the
 * pre-tokenizer there, with the same patterns. */
static void from_arrays(const char *name, const char *model, const char *pre)
{
    char path[256];
    snprintf(path, sizeof path, FIX "/%s.json", name);
    JsonArrays j;
    arrays_from_json(&j, path, 1);
    j.a.model = model;
    j.a.pre = pre;
    j.a.unk_id = !strcmp(model, "llama") ? 0 : -1;
    Tokenizer *t = tokenizer_from_arrays(&j.a, name);
    if (!t) fail_msg("%s", hd_last_error());
    assert_int_equal(compare(name, "arrays", t), 0);
    tokenizer_free(t);
    arrays_free(&j);
}

static void tiny_bytelevel(void **state)
{
    (void)state;
    from_json("tiny_bytelevel", FIX "/tiny_bytelevel.json");
    from_arrays("tiny_bytelevel", "gpt2", "smollm");
}

static void tiny_llama3(void **state)
{
    (void)state;
    from_json("tiny_llama3", FIX "/tiny_llama3.json");
    from_arrays("tiny_llama3", "gpt2", "llama-bpe");
}

/* SmolLM2's and Llama 3's pre-tokenizers on vocabularies that show every cut. */
static void tiny_classes_smollm(void **state)
{
    (void)state;
    from_json("tiny_classes_smollm", FIX "/tiny_classes_smollm.json");
    from_arrays("tiny_classes_smollm", "gpt2", "smollm");
}

static void tiny_classes_llama3(void **state)
{
    (void)state;
    from_json("tiny_classes_llama3", FIX "/tiny_classes_llama3.json");
    from_arrays("tiny_classes_llama3", "gpt2", "llama-bpe");
}

static void tiny_spm(void **state)
{
    (void)state;
    from_json("tiny_spm", FIX "/tiny_spm.json");
}

static void llama2(void **state) { (void)state; from_json("llama2", SHARED "/llama2/tokenizer.json"); }
static void llama3(void **state) { (void)state; from_json("llama3", SHARED "/llama3/tokenizer.json"); }
static void llama31(void **state) { (void)state; from_json("llama3.1", SHARED "/llama3.1/tokenizer.json"); }

static void smollm2_gguf(void **state)
{
    (void)state;
    if (!exists(SMOL_GGUF)) {
        printf("# smollm2: %s is missing (make model): skipped\n", SMOL_GGUF);
        skip();
    }
    GgufFile g;
    if (gguf_open(&g, SMOL_GGUF)) fail_msg("%s", hd_last_error());
    Tokenizer *t = tokenizer_from_gguf(&g);
    if (!t) fail_msg("%s", hd_last_error());
    gguf_close(&g);
    assert_int_equal(compare("smollm2", "GGUF", t), 0);
    tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_classes_smollm), cmocka_unit_test(tiny_classes_llama3),
        cmocka_unit_test(tiny_bytelevel), cmocka_unit_test(tiny_llama3), cmocka_unit_test(tiny_spm),
        cmocka_unit_test(llama2),         cmocka_unit_test(llama3),      cmocka_unit_test(llama31),
        cmocka_unit_test(smollm2_gguf),
    };
    return cmocka_run_group_tests_name("tokenizer_classes", tests, NULL, NULL);
}
