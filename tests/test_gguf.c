/* GGUF reader: every metadata type, tensor placement and alignment, one
 * clear error for each kind of malformed file (every truncation point of a
 * valid file included), dequantisation bit-exact against gguf-py, and the
 * real SmolLM2 file's metadata when `make model` has fetched it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "cpu/dequant.h"
#include "formats/gguf.h"
#include "loader_test_util.h"
#include "formats/safetensors.h"

#define SMOLLM2 "models/SmolLM2-135M-Instruct.Q4_1.gguf"

/* The valid reference file: all 13 value types, arrays, three tensors. */
static const float F32_DATA[8] = {1, -2, 3.5f, 0, 1e-3f, -1e3f, 7, 8};
static void build_valid(Buf *o)
{
    memset(o, 0, sizeof *o);
    put_header(o, 3, 3, 16);
    put_key(o, "general.architecture", GGUF_STRING), put_str(o, "llama");
    put_key(o, "t.u8", GGUF_UINT8), put_le(o, 200, 1);
    put_key(o, "t.i8", GGUF_INT8), put_le(o, (uint8_t)-5, 1);
    put_key(o, "t.u16", GGUF_UINT16), put_le(o, 60000, 2);
    put_key(o, "t.i16", GGUF_INT16), put_le(o, (uint16_t)-300, 2);
    put_key(o, "t.u32", GGUF_UINT32), put_u32(o, 4000000000u);
    put_key(o, "t.i32", GGUF_INT32), put_u32(o, (uint32_t)-70000);
    put_key(o, "t.f32", GGUF_FLOAT32), put_f32(o, 0.5f);
    put_key(o, "t.bool", GGUF_BOOL), put_le(o, 1, 1);
    put_key(o, "t.u64", GGUF_UINT64), put_u64(o, 1ull << 40);
    put_key(o, "t.i64", GGUF_INT64), put_u64(o, (uint64_t)-(1ll << 40));
    double d = 0.25;
    uint64_t du;
    memcpy(&du, &d, 8);
    put_key(o, "t.f64", GGUF_FLOAT64), put_u64(o, du);
    put_key(o, "t.strs", GGUF_ARRAY), put_u32(o, GGUF_STRING), put_u64(o, 3);
    put_str(o, "a"), put_str(o, "b\xc4\xa0" "c"), put_str(o, "");
    put_key(o, "t.ints", GGUF_ARRAY), put_u32(o, GGUF_INT32), put_u64(o, 3);
    put_u32(o, 1), put_u32(o, (uint32_t)-2), put_u32(o, 3);
    put_key(o, "t.floats", GGUF_ARRAY), put_u32(o, GGUF_FLOAT32), put_u64(o, 2);
    put_f32(o, 0.5f), put_f32(o, -1);
    put_key(o, "general.alignment", GGUF_UINT32), put_u32(o, 64);
    put_tensor(o, "t.f32", 2, (uint64_t[]){4, 2}, GGML_F32, 0);
    put_tensor(o, "t.q8", 2, (uint64_t[]){32, 1}, GGML_Q8_0, 64);
    put_tensor(o, "t.f16", 1, (uint64_t[]){3}, GGML_F16, 128);
    pad_to(o, 64);
    for (int i = 0; i < 8; i++) put_f32(o, F32_DATA[i]);
    pad_to(o, 64);
    put_le(o, 0x3800, 2);                       /* Q8_0 block: d = 0.5 */
    for (int j = 0; j < 32; j++) put_le(o, (uint8_t)(j - 16), 1);
    pad_to(o, 64);
    put_le(o, 0x3c00, 2), put_le(o, 0xc000, 2), put_le(o, 0x7c00, 2);   /* 1, -2, inf */
}

static void parses_all_value_types(void **state)
{
    (void)state;
    Buf o;
    build_valid(&o);
    GgufFile g;
    assert_int_equal(gguf_parse(&g, o.b, o.n, "mem.gguf"), 0);
    assert_int_equal(g.version, 3);
    assert_int_equal(g.alignment, 64);
    assert_int_equal(g.n_kvs, 16);
    int64_t i;
    double f;
    int b;
    char *s;
    assert_int_equal(gguf_get_int(&g, "t.u8", &i), 0), assert_int_equal(i, 200);
    assert_int_equal(gguf_get_int(&g, "t.i8", &i), 0), assert_int_equal(i, -5);
    assert_int_equal(gguf_get_int(&g, "t.u16", &i), 0), assert_int_equal(i, 60000);
    assert_int_equal(gguf_get_int(&g, "t.i16", &i), 0), assert_int_equal(i, -300);
    assert_int_equal(gguf_get_int(&g, "t.u32", &i), 0), assert_int_equal(i, 4000000000ll);
    assert_int_equal(gguf_get_int(&g, "t.i32", &i), 0), assert_int_equal(i, -70000);
    assert_int_equal(gguf_get_int(&g, "t.u64", &i), 0), assert_int_equal(i, 1ll << 40);
    assert_int_equal(gguf_get_int(&g, "t.i64", &i), 0), assert_int_equal(i, -(1ll << 40));
    assert_int_equal(gguf_get_float(&g, "t.f32", &f), 0), assert_true(f == 0.5);
    assert_int_equal(gguf_get_float(&g, "t.f64", &f), 0), assert_true(f == 0.25);
    assert_int_equal(gguf_get_float(&g, "t.i16", &f), 0), assert_true(f == -300);
    assert_int_equal(gguf_get_bool(&g, "t.bool", &b), 0), assert_int_equal(b, 1);
    assert_int_equal(gguf_get_string(&g, "general.architecture", &s), 0);
    assert_string_equal(s, "llama");
    free(s);
    const GgufKV *a;
    assert_int_equal(gguf_get_array(&g, "t.strs", GGUF_STRING, &a), 0);
    assert_int_equal(a->n, 3);
    assert_int_equal(a->strs[1].len, 4);
    assert_memory_equal(a->strs[1].ptr, "b\xc4\xa0" "c", 4);
    assert_int_equal(a->strs[2].len, 0);
    assert_int_equal(gguf_get_array(&g, "t.ints", GGUF_INT32, &a), 0);
    assert_int_equal(gguf_array_int(a, 1), -2);
    assert_true(gguf_array_float(a, 2) == 3);
    assert_int_equal(gguf_get_array(&g, "t.floats", GGUF_FLOAT32, &a), 0);
    assert_true(gguf_array_float(a, 1) == -1);

    /* wrong types and missing keys say which key and what */
    assert_int_equal(gguf_get_string(&g, "t.u8", &s), -1);
    assert_error_mentions("mem.gguf", "'t.u8'", "UINT8", "STRING");
    assert_int_equal(gguf_get_int(&g, "t.f32", &i), -1);
    assert_error_mentions("'t.f32'", "FLOAT32");
    assert_int_equal(gguf_get_int(&g, "nope", &i), -1);
    assert_error_mentions("missing metadata 'nope'");
    assert_int_equal(gguf_get_array(&g, "t.ints", GGUF_STRING, &a), -1);
    assert_error_mentions("array of INT32");

    /* tensors: sorted lookup, shapes innermost first, data */
    assert_int_equal(g.n_tensors, 3);
    const GgufTensor *t = gguf_find_tensor(&g, "t.f32");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 4);
    assert_int_equal(t->ne[1], 2);
    float out[32];
    gguf_tensor_to_f32(t, out);
    assert_memory_equal(out, F32_DATA, sizeof F32_DATA);
    gguf_tensor_rows_to_f32(t, 1, 1, out);
    assert_memory_equal(out, F32_DATA + 4, 16);
    t = gguf_find_tensor(&g, "t.q8");
    assert_int_equal(t->nbytes, 34);
    gguf_tensor_to_f32(t, out);
    for (int j = 0; j < 32; j++) assert_true(out[j] == 0.5f * (float)(j - 16));
    t = gguf_find_tensor(&g, "t.f16");
    gguf_tensor_to_f32(t, out);
    assert_true(out[0] == 1 && out[1] == -2 && isinf(out[2]));
    assert_null(gguf_find_tensor(&g, "t.none"));
    gguf_close(&g);

    /* the same from a file */
    const char *path = scratch_path("valid.gguf");
    write_bytes(path, o.b, o.n);
    assert_int_equal(gguf_open(&g, path), 0);
    assert_int_equal(g.n_tensors, 3);
    gguf_close(&g);
    free(o.b);
}

/* Every proper prefix of a valid file is an error, never a crash. */
static void every_truncation_is_an_error(void **state)
{
    (void)state;
    Buf o;
    build_valid(&o);
    for (size_t n = 0; n < o.n; n++) {
        unsigned char *copy = malloc(n ? n : 1);   /* exact size: ASan sees overreads */
        memcpy(copy, o.b, n);
        GgufFile g;
        int rc = gguf_parse(&g, copy, n, "cut.gguf");
        if (rc != -1) fprintf(stderr, "prefix of %zu bytes parsed\n", n);
        assert_int_equal(rc, -1);
        assert_error_mentions("cut.gguf: ");
        gguf_close(&g);
        free(copy);
    }
    /* a cut inside the data section is reported as such */
    GgufFile g;
    assert_int_equal(gguf_parse(&g, o.b, o.n - 1, "cut.gguf"), -1);
    assert_error_mentions("'t.f16'", "beyond the end of the file", "truncated");
    gguf_close(&g);
    assert_int_equal(gguf_parse(&g, o.b, 30, "cut.gguf"), -1);
    assert_error_mentions("truncated");
    gguf_close(&g);
    free(o.b);
}

/* A file with one tensor of the given type/shape/offset after 1 key. */
static void build_one_tensor(Buf *o, uint32_t version, int nd, const uint64_t *ne, uint32_t type, uint64_t offset,
                             size_t data_len)
{
    memset(o, 0, sizeof *o);
    put_header(o, version, 1, 1);
    put_key(o, "general.architecture", GGUF_STRING), put_str(o, "llama");
    put_tensor(o, "w", nd, ne, type, offset);
    pad_to(o, 32);
    for (size_t i = 0; i < data_len; i++) put(o, "\x11", 1);
}

static void expect_parse_error(Buf *o, const char *what, const char *tensor)
{
    GgufFile g;
    assert_int_equal(gguf_parse(&g, o->b, o->n, "bad.gguf"), -1);
    if (tensor) assert_error_mentions("bad.gguf: ", what, tensor);
    else assert_error_mentions("bad.gguf: ", what);
    gguf_close(&g);
    free(o->b);
}

static void rejects_malformed_files(void **state)
{
    (void)state;
    Buf o;
    build_one_tensor(&o, 3, 2, (uint64_t[]){32, 2}, GGML_Q4_1, 0, 40);
    GgufFile g;
    assert_int_equal(gguf_parse(&g, o.b, o.n, "ok.gguf"), 0);
    gguf_close(&g);
    free(o.b);

    build_one_tensor(&o, 3, 2, (uint64_t[]){32, 2}, 99, 0, 40);
    expect_parse_error(&o, "unknown ggml type 99", "'w'");
    build_one_tensor(&o, 3, 2, (uint64_t[]){256, 2}, 14, 0, 420);
    expect_parse_error(&o, "Q6_K (14) is not supported", "'w'");
    build_one_tensor(&o, 3, 2, (uint64_t[]){16, 2}, GGML_Q8_0, 0, 68);
    expect_parse_error(&o, "not a multiple of the Q8_0 block size 32", "'w'");
    build_one_tensor(&o, 3, 5, (uint64_t[]){1, 1, 1, 1, 1}, GGML_F32, 0, 4);
    expect_parse_error(&o, "5 dimensions", "'w'");
    build_one_tensor(&o, 3, 2, (uint64_t[]){1ull << 40, 1ull << 40}, GGML_F32, 0, 4);
    expect_parse_error(&o, "overflow", "'w'");
    build_one_tensor(&o, 3, 1, (uint64_t[]){4}, GGML_F32, 8, 64);
    expect_parse_error(&o, "offset 8 is not a multiple of the alignment 32", "'w'");
    build_one_tensor(&o, 3, 1, (uint64_t[]){4}, GGML_F32, 1ull << 62, 64);
    expect_parse_error(&o, "beyond the end of the file", "'w'");
    build_one_tensor(&o, 1, 1, (uint64_t[]){4}, GGML_F32, 0, 16);
    expect_parse_error(&o, "version 1", NULL);
    build_one_tensor(&o, 0x03000000, 1, (uint64_t[]){4}, GGML_F32, 0, 16);
    expect_parse_error(&o, "big-endian", NULL);
    build_one_tensor(&o, 3, 1, (uint64_t[]){4}, GGML_F32, 0, 16);
    memcpy(o.b, "GGML", 4);
    expect_parse_error(&o, "bad magic", NULL);

    /* two tensors sharing bytes */
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 2, 0);
    put_tensor(&o, "a", 1, (uint64_t[]){16}, GGML_F32, 0);
    put_tensor(&o, "b", 1, (uint64_t[]){8}, GGML_F32, 32);
    pad_to(&o, 32);
    for (int i = 0; i < 64; i++) put(&o, "\0", 1);
    expect_parse_error(&o, "overlap", "'a'");
    /* the same tensor twice */
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 2, 0);
    put_tensor(&o, "a", 1, (uint64_t[]){8}, GGML_F32, 0);
    put_tensor(&o, "a", 1, (uint64_t[]){8}, GGML_F32, 32);
    pad_to(&o, 32);
    for (int i = 0; i < 64; i++) put(&o, "\0", 1);
    expect_parse_error(&o, "'a' appears twice", NULL);

    /* metadata problems */
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 1);
    put_key(&o, "general.alignment", GGUF_UINT32), put_u32(&o, 48);
    expect_parse_error(&o, "power of two", NULL);
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 2);
    put_key(&o, "k", GGUF_UINT8), put_le(&o, 1, 1);
    put_key(&o, "k", GGUF_UINT8), put_le(&o, 2, 1);
    expect_parse_error(&o, "'k' appears twice", NULL);
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 1);
    put_key(&o, "nest", GGUF_ARRAY), put_u32(&o, GGUF_ARRAY), put_u64(&o, 1);
    expect_parse_error(&o, "'nest'", NULL);
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 1);
    put_key(&o, "odd", 77), put_u32(&o, 0);
    expect_parse_error(&o, "'odd': unknown value type 77", NULL);
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 1);
    put_key(&o, "many", GGUF_ARRAY), put_u32(&o, GGUF_STRING), put_u64(&o, 1ull << 60);
    expect_parse_error(&o, "'many'", "past the end");
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 0, 1);
    put_key(&o, "long", GGUF_STRING), put_u64(&o, 1ull << 63);
    expect_parse_error(&o, "'long'", "past the end");
    memset(&o, 0, sizeof o);
    put_header(&o, 3, 1ull << 50, 1ull << 50);
    expect_parse_error(&o, "more than the file can hold", NULL);

    assert_int_equal(gguf_open(&g, scratch_path("absent.gguf")), -1);
    assert_error_mentions("absent.gguf", "cannot open");
    gguf_close(&g);
}

/* ---- dequantisation against gguf-py (tests/ref/gen_dequant_blocks.py) ---- */

static void check_case(const StFile *f, const char *name, void (*fn)(const void *, float *, size_t))
{
    char key[64];
    snprintf(key, sizeof key, "%s.raw", name);
    const StTensor *raw = st_find(f, key);
    snprintf(key, sizeof key, "%s.f32", name);
    const StTensor *want = st_find(f, key);
    assert_non_null(raw);
    assert_non_null(want);
    size_t n = want->numel;
    float *got = malloc(n * sizeof(float)), *ref = malloc(n * sizeof(float));
    fn(raw->data, got, n);
    st_tensor_to_f32(want, ref);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &ref[i], 4) != 0 && bad++ < 5)
            fprintf(stderr, "%s[%zu]: %a != %a\n", name, i, got[i], ref[i]);
    assert_int_equal(bad, 0);
    free(got);
    free(ref);
}

static void dequant_matches_gguf_py(void **state)
{
    (void)state;
    StFile f;
    assert_int_equal(st_open(&f, "tests/fixtures/dequant/blocks.safetensors"), 0);
    check_case(&f, "q4_1.real", dequant_q4_1);
    check_case(&f, "q8_0.real", dequant_q8_0);
    check_case(&f, "q4_0.rand", dequant_q4_0);
    check_case(&f, "q4_1.rand", dequant_q4_1);
    check_case(&f, "q8_0.rand", dequant_q8_0);
    check_case(&f, "f16", dequant_f16);
    check_case(&f, "bf16", dequant_bf16);
    st_close(&f);
}

/* ---- the real file ---- */

static void smollm2_metadata(void **state)
{
    (void)state;
    if (!file_exists(SMOLLM2)) skip();   /* needs `make model` */
    GgufFile g;
    assert_int_equal(gguf_open(&g, SMOLLM2), 0);
    assert_int_equal(g.n_tensors, 272);
    char *s;
    assert_int_equal(gguf_get_string(&g, "general.architecture", &s), 0);
    assert_string_equal(s, "llama");
    free(s);
    assert_int_equal(gguf_get_string(&g, "tokenizer.ggml.model", &s), 0);
    assert_string_equal(s, "gpt2");
    free(s);
    assert_int_equal(gguf_get_string(&g, "tokenizer.ggml.pre", &s), 0);
    assert_string_equal(s, "smollm");
    free(s);
    const GgufKV *a;
    assert_int_equal(gguf_get_array(&g, "tokenizer.ggml.tokens", GGUF_STRING, &a), 0);
    assert_int_equal(a->n, 49152);
    assert_int_equal(gguf_get_array(&g, "tokenizer.ggml.token_type", GGUF_INT32, &a), 0);
    assert_int_equal(a->n, 49152);
    assert_int_equal(gguf_get_array(&g, "tokenizer.ggml.merges", GGUF_STRING, &a), 0);
    assert_true(a->n > 40000);
    int64_t v;
    assert_int_equal(gguf_get_int(&g, "llama.block_count", &v), 0), assert_int_equal(v, 30);
    assert_int_equal(gguf_get_int(&g, "llama.attention.head_count_kv", &v), 0), assert_int_equal(v, 3);
    assert_int_equal(gguf_find_tensor(&g, "token_embd.weight")->type, GGML_Q8_0);
    assert_int_equal(gguf_find_tensor(&g, "token_embd.weight")->ne[0], 576);
    assert_int_equal(gguf_find_tensor(&g, "token_embd.weight")->ne[1], 49152);
    assert_int_equal(gguf_find_tensor(&g, "blk.7.attn_q.weight")->type, GGML_Q4_1);
    assert_int_equal(gguf_find_tensor(&g, "blk.7.ffn_down.weight")->ne[0], 1536);
    assert_int_equal(gguf_find_tensor(&g, "blk.7.ffn_norm.weight")->type, GGML_F32);
    assert_int_equal(gguf_find_tensor(&g, "output_norm.weight")->type, GGML_F32);
    assert_null(gguf_find_tensor(&g, "output.weight"));
    gguf_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_all_value_types),
        cmocka_unit_test(every_truncation_is_an_error),
        cmocka_unit_test(rejects_malformed_files),
        cmocka_unit_test(dequant_matches_gguf_py),
        cmocka_unit_test(smollm2_metadata),
    };
    return cmocka_run_group_tests_name("gguf", tests, scratch_setup, scratch_cleanup);
}
