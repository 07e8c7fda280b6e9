/* Every Unicode scalar value in context, against Hugging Face `tokenizers`
 * (fixture tests/fixtures/tokenizer/codepoints.json, written by
 * tests/ref/gen_tokenizer_unicode_sweep.py with the pinned tokenizers 0.20.3;
 * see its docstring for the context and the hashes).
 *
 * Every code point c in 0..0x10FFFF but the surrogates, NUL included, is
 * put into the fixture's context ("x\t\t{c}y 1{c}2 a{c}b '{c} {c}{c}{c}{c}\n {c}":
 * after a run of tabs, between digits, between letters, after an
 * apostrophe, four in a row, before a newline, at the end) and the ids and
 * byte offsets of the 1,112,064 strings are compared, hashed per block of
 * 4096 code points.  When a block differs the test names it and, for the
 * real tokenizers, which of its "suspects" differ, with our ids: the code
 * points where the character classes of Rust, PCRE2 and Oniguruma are
 * likely to disagree (White_Space, Z*, Cc, Cf, N*, the Unicode 15 and 16
 * digits, noncharacters), hashed one by one in the fixture.
 *
 * Tokenizers: Llama 2, 3, 3.1 (../shared/tokenizers) and SmolLM2 (its GGUF
 * in models/), skipped when the files are absent; and the committed
 * tiny_classes_smollm and tiny_classes_llama3 (tokenizer.json and the
 * GGUF-style arrays), so that a fresh clone sweeps too.  The tiny ones see
 * a wrong digit class (their merges join digits) but not every whitespace
 * one (U+180E as \s gives them the same ids: test_tokenizer_classes covers
 * it); the real ones see both.
 *
 * Runtime: 1.7-2.3 s per sweep on one core of a loaded machine, 16 s for
 * the eight sweeps, so the full sweep runs for every tokenizer and none is
 * left to `make fixtures` alone.  HD_TEST_QUICK=1 (the default under
 * AddressSanitizer; HD_TEST_QUICK=0 forces the full run) checks the Basic
 * Multilingual Plane and every 8th block above it. */
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

#include "base/cli.h"
#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

#define FIX "tests/fixtures/tokenizer/codepoints.json"
#define SHARED "../shared/tokenizers"
#define SMOL_GGUF "models/SmolLM2-135M-Instruct.Q4_1.gguf"

#define FNV_BASIS 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define MAX_CP 0x110000u

static uint64_t fnv_word(uint64_t h, uint64_t w) { return (h ^ w) * FNV_PRIME; }

static size_t utf8_put(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | c >> 18);
    out[1] = (char)(0x80 | (c >> 12 & 0x3F));
    out[2] = (char)(0x80 | (c >> 6 & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* The context with every "{c}" replaced by c. */
static size_t build(const char *ctx, uint32_t c, char *buf)
{
    char u[4];
    size_t ul = utf8_put(c, u), n = 0;
    for (const char *p = ctx; *p;) {
        if (!strncmp(p, "{c}", 3)) {
            memcpy(buf + n, u, ul);
            n += ul;
            p += 3;
        } else {
            buf[n++] = *p++;
        }
    }
    return n;
}

static void print_text(const char *s, size_t n)
{
    printf("#     text \"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') printf("\\x%02x", c);
        else putchar(c);
    }
    printf("\"\n");
}

/* Encodes every code point's string, compares the block hashes with
 * the fixture's entry `name`; returns the number of blocks that differ. */
static size_t sweep(const char *name, const Tokenizer *t)
{
    json_t *root = load_json(FIX);
    const char *ctx = json_string_value(json_object_get(root, "context"));
    uint32_t block = (uint32_t)json_integer_value(json_object_get(root, "block"));
    json_t *sus = json_object_get(root, "suspects");
    json_t *entry = json_object_get(json_object_get(root, "tokenizers"), name);
    if (!entry) fail_msg("%s: no entry %s", FIX, name);
    json_t *blocks = json_object_get(entry, "blocks");
    /* The tiny tokenizers have no per-suspect hashes: "" checks no suspect. */
    const char *sus_hash = json_string_value(json_object_get(entry, "suspects"));
    if (!sus_hash) sus_hash = "";
    assert_non_null(ctx);
    assert_true(block > 0 && MAX_CP % block == 0);
    assert_int_equal(json_array_size(blocks), MAX_CP / block);

    /* The suspects, expanded: the fixture's per-code-point hash of each. */
    size_t n_sus = 0;
    for (size_t i = 0; i < json_array_size(sus); i++) {
        json_t *r = json_array_get(sus, i);
        n_sus += (size_t)(json_integer_value(json_array_get(r, 1)) - json_integer_value(json_array_get(r, 0)) + 1);
    }
    if (!*sus_hash) n_sus = 0;
    assert_int_equal(strlen(sus_hash), 4 * n_sus);
    uint32_t *sus_cp = calloc(n_sus + 1, sizeof *sus_cp);
    size_t k = 0;
    for (size_t i = 0; n_sus && i < json_array_size(sus); i++) {
        json_t *r = json_array_get(sus, i);
        for (json_int_t c = json_integer_value(json_array_get(r, 0)); c <= json_integer_value(json_array_get(r, 1)); c++)
            sus_cp[k++] = (uint32_t)c;
    }
    sus_cp[n_sus] = UINT32_MAX;

    int quick = quick_mode();
    char *buf = malloc(strlen(ctx) * 4 + 1);
    TokenList tl = {0};
    size_t bad = 0, checked = 0, next_sus = 0, n_strings = 0;
    double t0 = hd_now_seconds();
    for (uint32_t b = 0; b < MAX_CP / block; b++) {
        uint32_t lo = b * block, hi = lo + block;
        if (quick && lo >= 0x10000 && b % 8) continue;
        while (sus_cp[next_sus] < lo) next_sus++;
        size_t first_sus = next_sus, sus_bad = 0;
        uint64_t h = FNV_BASIS;
        for (uint32_t c = lo; c < hi; c++) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            size_t n = build(ctx, c, buf);
            assert_int_equal(tokenizer_encode(t, buf, n, 0, &tl), 0);
            uint64_t a = fnv_word(FNV_BASIS, tl.n), o = a;
            for (size_t i = 0; i < tl.n; i++) {
                a = fnv_word(a, (uint32_t)tl.ids[i]);
                o = fnv_word(fnv_word(o, (uint32_t)tl.start[i]), (uint32_t)tl.end[i]);
            }
            h = fnv_word(fnv_word(h, a), o);
            n_strings++;
            if (sus_cp[next_sus] == c) {
                uint64_t one = fnv_word(fnv_word(FNV_BASIS, a), o);
                unsigned want;
                sscanf(sus_hash + 4 * next_sus, "%4x", &want);
                if ((one & 0xFFFF) != want && sus_bad++ < 6) {
                    printf("#   %s: U+%04X differs (hash %04x, want %04x)\n", name, c, (unsigned)(one & 0xFFFF), want);
                    print_text(buf, n);
                    printf("#     got ");
                    for (size_t i = 0; i < tl.n; i++) printf(" %d@%d-%d", tl.ids[i], tl.start[i], tl.end[i]);
                    printf("\n");
                }
                next_sus++;
            }
        }
        checked++;
        char got[17];
        snprintf(got, sizeof got, "%016llx", (unsigned long long)h);
        const char *want = json_string_value(json_array_get(blocks, b));
        if (!want || strcmp(got, want)) {
            bad++;
            if (n_sus)
                printf("# %s: block %u (U+%04X..U+%04X) differs: %zu of its %zu suspects differ%s\n", name, b, lo,
                       hi - 1, sus_bad, next_sus - first_sus, sus_bad ? "" : " (the code point is not a suspect)");
            else
                printf("# %s: block %u (U+%04X..U+%04X) differs\n", name, b, lo, hi - 1);
        }
    }
    printf("# %s: %zu code points in %zu blocks%s, %zu blocks differ, %.2f s\n", name, n_strings, checked,
           quick ? " (HD_TEST_QUICK)" : "", bad, hd_now_seconds() - t0);
    token_list_free(&tl);
    free(buf);
    free(sus_cp);
    json_decref(root);
    return bad;
}

/* The tiny class tokenizers, committed: tokenizer.json and the GGUF-style
 * arrays, whose tokenizer.ggml.pre picks the same patterns. */
static void tiny(const char *name, const char *pre)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/tokenizer/%s.json", name);
    Tokenizer *t = tokenizer_load_json(path, NULL);
    if (!t) fail_msg("%s", hd_last_error());
    size_t bad = sweep(name, t);
    tokenizer_free(t);
    JsonArrays j;
    arrays_from_json(&j, path, 1);
    j.a.model = "gpt2";
    j.a.pre = pre;
    j.a.unk_id = -1;
    t = tokenizer_from_arrays(&j.a, name);
    if (!t) fail_msg("%s", hd_last_error());
    printf("# %s: the same as GGUF-style arrays (pre \"%s\")\n", name, pre);
    bad += sweep(name, t);
    tokenizer_free(t);
    arrays_free(&j);
    assert_int_equal(bad, 0);
}

static void tiny_classes_smollm(void **state) { (void)state; tiny("tiny_classes_smollm", "smollm"); }
static void tiny_classes_llama3(void **state) { (void)state; tiny("tiny_classes_llama3", "llama-bpe"); }

static void from_json(const char *name)
{
    char path[512], cpath[512];
    snprintf(path, sizeof path, SHARED "/%s/tokenizer.json", name);
    snprintf(cpath, sizeof cpath, SHARED "/%s/tokenizer_config.json", name);
    if (!exists(path)) {
        printf("# %s: %s is missing (a fresh clone has no ../shared/tokenizers): skipped\n", name, path);
        skip();
    }
    Tokenizer *t = tokenizer_load_json(path, cpath);
    if (!t) fail_msg("%s", hd_last_error());
    assert_int_equal(sweep(name, t), 0);
    tokenizer_free(t);
}

static void llama2(void **state) { (void)state; from_json("llama2"); }
static void llama3(void **state) { (void)state; from_json("llama3"); }
static void llama31(void **state) { (void)state; from_json("llama3.1"); }

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
    assert_int_equal(sweep("smollm2", t), 0);
    tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_classes_smollm),
        cmocka_unit_test(tiny_classes_llama3),
        cmocka_unit_test(llama2),
        cmocka_unit_test(llama3),
        cmocka_unit_test(llama31),
        cmocka_unit_test(smollm2_gguf),
    };
    return cmocka_run_group_tests_name("tokenizer_codepoints", tests, NULL, NULL);
}
