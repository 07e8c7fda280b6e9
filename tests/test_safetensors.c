/* safetensors: reading Python-written files, the writer's round trip and
 * byte-exact output, every malformed-header case, sharded checkpoints. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loader_test_util.h"
#include "float16.h"
#include "formats/safetensors.h"

/* ---- Python -> C ---- */

static void assert_floats(const StFile *f, const char *name, const float *want, size_t n)
{
    const StTensor *t = st_find(f, name);
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    float got[16];
    st_tensor_to_f32(t, got);
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], 4) != 0) fprintf(stderr, "%s[%zu]: %g != %g\n", name, i, got[i], want[i]);
        assert_memory_equal(&got[i], &want[i], 4);
    }
}

static void reads_python_written_file(void **state)
{
    (void)state;
    StFile f;
    assert_int_equal(st_open(&f, "tests/fixtures/safetensors/py_written.safetensors"), 0);
    assert_int_equal(f.n_tensors, 11);
    assert_string_equal(st_metadata(&f, "note"), "written by safetensors 0.4.5");
    assert_null(st_metadata(&f, "absent"));
    const StTensor *t = st_find(&f, "f32");
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_floats(&f, "f32", (float[]){0, 1.5f, -2, 3.25f, 1e-3f, -0.0f}, 6);
    assert_floats(&f, "f64", (float[]){(float)(1.0 / 3), -INFINITY}, 2);
    assert_floats(&f, "f16", (float[]){1, -2.5f, 65504, 5.9604645e-08f}, 4);
    assert_floats(&f, "bf16", (float[]){1, -3.140625f, 0x1.2cp+126f}, 3);
    assert_floats(&f, "i64", (float[]){-5, 1099511627776.0f}, 2);
    assert_floats(&f, "i32", (float[]){-7, 7}, 2);
    assert_floats(&f, "u8", (float[]){0, 128, 255}, 3);
    assert_floats(&f, "bool", (float[]){1, 0}, 2);
    assert_floats(&f, "scalar", (float[]){7.5f}, 1);
    assert_floats(&f, "name with \xc3\xbcnicode", (float[]){42}, 1);
    t = st_find(&f, "scalar");
    assert_int_equal(t->ndim, 0);
    t = st_find(&f, "empty");
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 4);
    assert_null(st_find(&f, "nope"));
    st_close(&f);
}

/* ---- writer ---- */

static void fill_c_fixture(StWriter *w)
{
    st_writer_init(w);
    assert_int_equal(st_writer_add_f32(w, "weights", 2, (int64_t[]){2, 3}, (float[]){0.5f, -1, 2, 3.25f, 0.001f, -0.0f}), 0);
    assert_int_equal(st_writer_add_f32(w, "bias", 1, (int64_t[]){3}, (float[]){1, 2, 3}), 0);
    assert_int_equal(st_writer_add_f32(w, "scalar", 0, NULL, (float[]){-4.5f}), 0);
    assert_int_equal(st_writer_add_f32(w, "empty", 1, (int64_t[]){0}, NULL), 0);
    assert_int_equal(st_writer_add(w, "ids", ST_I64, 1, (int64_t[]){2}, (int64_t[]){7, -9}), 0);
    st_writer_set_metadata(w, "step", "41");
    st_writer_set_metadata(w, "kind", "hypernetwork");
    st_writer_set_metadata(w, "step", "42");   /* replaces */
}

static void writer_round_trip(void **state)
{
    (void)state;
    StWriter w;
    fill_c_fixture(&w);
    assert_int_equal(st_writer_add_f32(&w, "bias", 1, (int64_t[]){1}, (float[]){0}), -1);
    assert_error_mentions("bias", "twice");
    assert_int_equal(st_writer_add_f32(&w, "__metadata__", 1, (int64_t[]){1}, (float[]){0}), -1);
    const char *path = scratch_path("rt.safetensors");
    assert_int_equal(st_writer_save(&w, path), 0);
    st_writer_free(&w);

    size_t n;
    unsigned char *bytes = read_bytes(path, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | bytes[i];
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n, 8 + hlen + 6 * 4 + 3 * 4 + 4 + 0 + 16);   /* no gaps */
    free(bytes);

    StFile f;
    assert_int_equal(st_open(&f, path), 0);
    assert_int_equal(f.n_tensors, 5);
    assert_floats(&f, "weights", (float[]){0.5f, -1, 2, 3.25f, 0.001f, -0.0f}, 6);
    assert_floats(&f, "bias", (float[]){1, 2, 3}, 3);
    assert_floats(&f, "scalar", (float[]){-4.5f}, 1);
    assert_floats(&f, "ids", (float[]){7, -9}, 2);
    assert_int_equal(st_find(&f, "empty")->numel, 0);
    assert_string_equal(st_metadata(&f, "step"), "42");
    assert_string_equal(st_metadata(&f, "kind"), "hypernetwork");
    st_close(&f);
}

/* The committed c_written.safetensors is checked by Python's safetensors
 * (tests/ref/gen_safetensors_interop.py); our writer must still produce
 * exactly those bytes. */
static void writer_matches_python_checked_fixture(void **state)
{
    (void)state;
    const char *fixture = "tests/fixtures/safetensors/c_written.safetensors";
    StWriter w;
    fill_c_fixture(&w);
    if (getenv("HD_UPDATE_FIXTURES")) assert_int_equal(st_writer_save(&w, fixture), 0);
    const char *path = scratch_path("c.safetensors");
    assert_int_equal(st_writer_save(&w, path), 0);
    st_writer_free(&w);
    size_t n1, n2;
    unsigned char *a = read_bytes(fixture, &n1), *b = read_bytes(path, &n2);
    assert_non_null(a);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
}

/* A borrowed tensor is written from the caller's memory when the file is
 * saved (not when added) and is not freed by the writer (ASan would see a
 * bad free); the file equals the one written from copies. */
static void writer_borrowed_tensors_write_the_same_bytes(void **state)
{
    (void)state;
    float weights[6] = {0}, bias[3] = {1, 2, 3};
    StWriter w;
    st_writer_init(&w);
    assert_int_equal(st_writer_add_f32_borrowed(&w, "weights", 2, (int64_t[]){2, 3}, weights), 0);
    assert_int_equal(st_writer_add_f32_borrowed(&w, "bias", 1, (int64_t[]){3}, bias), 0);
    assert_int_equal(st_writer_add_f32_borrowed(&w, "bias", 1, (int64_t[]){3}, bias), -1);
    assert_int_equal(st_writer_add_f32(&w, "scalar", 0, NULL, (float[]){-4.5f}), 0);
    const float later[6] = {0.5f, -1, 2, 3.25f, 0.001f, -0.0f};
    memcpy(weights, later, sizeof weights);   /* after adding, before saving */
    const char *borrowed = scratch_path("borrowed.safetensors");
    assert_int_equal(st_writer_save(&w, borrowed), 0);
    st_writer_free(&w);

    st_writer_init(&w);
    assert_int_equal(st_writer_add_f32(&w, "weights", 2, (int64_t[]){2, 3}, later), 0);
    assert_int_equal(st_writer_add_f32(&w, "bias", 1, (int64_t[]){3}, bias), 0);
    assert_int_equal(st_writer_add_f32(&w, "scalar", 0, NULL, (float[]){-4.5f}), 0);
    const char *copied = scratch_path("copied.safetensors");
    assert_int_equal(st_writer_save(&w, copied), 0);
    st_writer_free(&w);
    size_t n1, n2;
    unsigned char *a = read_bytes(borrowed, &n1), *b = read_bytes(copied, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    assert_float_equal(bias[2], 3, 0);   /* still the caller's */
}

static void writer_reports_io_errors(void **state)
{
    (void)state;
    StWriter w;
    st_writer_init(&w);
    assert_int_equal(st_writer_save(&w, "/nonexistent-dir/x.safetensors"), -1);
    assert_error_mentions("/nonexistent-dir/x.safetensors");
    st_writer_free(&w);
}

/* ---- malformed files: one clear message each ---- */

/* Writes u64 header length (or `claimed` when nonzero), header, data. */
static const char *write_st(const char *name, const char *header, size_t data_len, uint64_t claimed)
{
    const char *path = scratch_path(name);
    size_t h = strlen(header), n = 8 + h + data_len;
    unsigned char *buf = calloc(1, n);
    uint64_t len = claimed ? claimed : h;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, header, h);
    write_bytes(path, buf, n);
    free(buf);
    return path;
}

static void expect_bad(const char *path, const char *what, const char *tensor)
{
    StFile f;
    assert_int_equal(st_open(&f, path), -1);
    if (tensor) assert_error_mentions(path, what, tensor);
    else assert_error_mentions(path, what);
    st_close(&f);
}

static void rejects_malformed_files(void **state)
{
    (void)state;
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    StFile f;
    assert_int_equal(st_open(&f, write_st("good.st", good, 8, 0)), 0);
    st_close(&f);

    expect_bad(write_st("hlen.st", good, 8, 4096), "beyond the end of the file", NULL);
    expect_bad(write_st("huge.st", good, 8, 1ull << 62), "implausible", NULL);
    expect_bad(write_st("json.st", "{\"a\":", 8, 0), "not valid JSON", NULL);
    expect_bad(write_st("array.st", "[1,2]", 0, 0), "not a JSON object", NULL);
    expect_bad(write_st("range.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0),
               "outside the 8-byte data buffer", "'w'");
    expect_bad(write_st("neg.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, 0),
               "outside", "'w'");
    expect_bad(write_st("backwards.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, 0),
               "outside", "'w'");
    expect_bad(write_st("overlap.st",
                        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0),
               "overlap", "'x'");
    expect_bad(write_st("inside.st",
                        "{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                        "\"small\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, 0),
               "overlap", "'small'");
    expect_bad(write_st("mismatch.st", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0),
               "need 6 bytes but data_offsets span 8", "'w'");
    expect_bad(write_st("dtype.st", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, 0),
               "unsupported dtype 'F8_E4M3'", "'w'");
    expect_bad(write_st("shape.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0),
               "shape[0]", "'w'");
    expect_bad(write_st("overflow.st",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, 0),
               "overflows", "'w'");
    expect_bad(write_st("nokeys.st", "{\"w\":{\"dtype\":\"F32\"}}", 0, 0), "needs dtype, shape", "'w'");
    expect_bad(write_st("dup.st",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0),
               "duplicate", NULL);
    expect_bad(write_st("meta.st", "{\"__metadata__\":{\"k\":3}}", 0, 0), "__metadata__ 'k'", NULL);
    const char *tiny = scratch_path("tiny.st");
    write_bytes(tiny, "\x08\0\0", 3);
    expect_bad(tiny, "too short", NULL);
    const char *empty = scratch_path("empty.st");
    write_bytes(empty, "", 0);
    expect_bad(empty, "too short", NULL);
    expect_bad(scratch_path("absent.st"), "cannot open", NULL);
}

static void read_f32_checks_shape(void **state)
{
    (void)state;
    StFile f;
    float out[8];
    assert_int_equal(st_open(&f, "tests/fixtures/safetensors/py_written.safetensors"), 0);
    assert_int_equal(st_read_f32(&f, "f32", 2, (int64_t[]){2, 3}, out), 0);
    assert_int_equal(st_read_f32(&f, "f32", 2, (int64_t[]){3, 2}, out), -1);
    assert_error_mentions("py_written.safetensors", "'f32'", "[2, 3]", "expected [3, 2]");
    assert_int_equal(st_read_f32(&f, "zzz", 1, (int64_t[]){1}, out), -1);
    assert_error_mentions("no tensor 'zzz'");
    st_close(&f);
}

/* ---- sharded checkpoints ---- */

static void opens_sharded_checkpoint(void **state)
{
    (void)state;
    StCheckpoint ck;
    assert_int_equal(st_checkpoint_open(&ck, "tests/fixtures/tiny-llama-f32"), 0);
    assert_true(ck.n_files >= 2);
    const StFile *file = NULL;
    const StTensor *t = st_checkpoint_find(&ck, "model.layers.2.mlp.down_proj.weight", &file);
    assert_non_null(t);
    assert_non_null(file);
    assert_int_equal(t->shape[0], 64);
    assert_int_equal(t->shape[1], 128);
    assert_non_null(st_checkpoint_find(&ck, "model.embed_tokens.weight", NULL));
    assert_non_null(st_checkpoint_find(&ck, "lm_head.weight", NULL));
    assert_null(st_checkpoint_find(&ck, "model.layers.3.mlp.down_proj.weight", NULL));
    st_checkpoint_close(&ck);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = read_bytes(from, &n);
    assert_non_null(b);
    write_bytes(to, b, n);
    free(b);
}

static void rejects_broken_checkpoints(void **state)
{
    (void)state;
    char dir[128];
    StCheckpoint ck;
    /* the index without its first shard */
    snprintf(dir, sizeof dir, "%s/noshard", scratch_dir);
    mkdir(dir, 0700);
    copy_file("tests/fixtures/tiny-llama-bf16/model.safetensors.index.json", scratch_path("noshard/model.safetensors.index.json"));
    copy_file("tests/fixtures/tiny-llama-bf16/model-00002-of-00002.safetensors",
              scratch_path("noshard/model-00002-of-00002.safetensors"));
    assert_int_equal(st_checkpoint_open(&ck, dir), -1);
    assert_error_mentions("model.safetensors.index.json", "missing shard", "model-00001-of-00002.safetensors");
    st_checkpoint_close(&ck);

    /* an index naming the wrong shard for a tensor */
    snprintf(dir, sizeof dir, "%s/wrongshard", scratch_dir);
    mkdir(dir, 0700);
    write_bytes(scratch_path("wrongshard/model.safetensors.index.json"),
                "{\"weight_map\":{\"a\":\"s.safetensors\"}}", 36);
    StWriter w;
    st_writer_init(&w);
    st_writer_add_f32(&w, "b", 1, (int64_t[]){1}, (float[]){1});
    assert_int_equal(st_writer_save(&w, scratch_path("wrongshard/s.safetensors")), 0);
    st_writer_free(&w);
    assert_int_equal(st_checkpoint_open(&ck, dir), -1);
    assert_error_mentions("tensor 'a'", "s.safetensors", "does not hold it");
    st_checkpoint_close(&ck);

    /* a shard name that leaves the directory */
    write_bytes(scratch_path("wrongshard/model.safetensors.index.json"),
                "{\"weight_map\":{\"a\":\"../s.safetensors\"}}", 39);
    assert_int_equal(st_checkpoint_open(&ck, dir), -1);
    assert_error_mentions("not a file name in this directory");
    st_checkpoint_close(&ck);

    /* nothing there at all */
    assert_int_equal(st_checkpoint_open(&ck, scratch_dir), -1);
    assert_error_mentions("neither model.safetensors");
    st_checkpoint_close(&ck);
}

/* A tensor of several of the conversion's 1 M-element chunks (the last one
 * partial), read from an odd address: every element as the one-at-a-time
 * rule gives it, for bf16, f16 and f32 (threads split the chunks). */
static void conversion_in_chunks_is_element_exact(void **state)
{
    (void)state;
    const size_t n = (2u << 20) + 12345;
    unsigned char *raw = malloc(n * 4 + 1);
    float *out = malloc(n * sizeof *out);
    const StDtype types[] = {ST_BF16, ST_F16, ST_F32};
    for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
        const size_t w = st_dtype_size(types[k]);
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)(i * 2654435761u) & (w == 2 ? 0x7bffu : 0x7f7fffffu);
            memcpy(raw + 1 + i * w, &v, w);
        }
        StTensor t = {.dtype = types[k], .ndim = 1, .shape = {(int64_t)n}, .numel = n,
                      .nbytes = n * w, .data = raw + 1};
        st_tensor_to_f32(&t, out);
        for (size_t i = 0; i < n; i++) {
            uint32_t v = 0;
            memcpy(&v, raw + 1 + i * w, w);
            float want;
            if (types[k] == ST_BF16) want = bf16_to_f32((uint16_t)v);
            else if (types[k] == ST_F16) want = f16_to_f32((uint16_t)v);
            else memcpy(&want, &v, 4);
            if (memcmp(&out[i], &want, 4) != 0) fail_msg("%s element %zu", st_dtype_name(types[k]), i);
        }
    }
    free(out);
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_python_written_file),
        cmocka_unit_test(writer_round_trip),
        cmocka_unit_test(writer_matches_python_checked_fixture),
        cmocka_unit_test(writer_borrowed_tensors_write_the_same_bytes),
        cmocka_unit_test(writer_reports_io_errors),
        cmocka_unit_test(rejects_malformed_files),
        cmocka_unit_test(read_f32_checks_shape),
        cmocka_unit_test(conversion_in_chunks_is_element_exact),
        cmocka_unit_test(opens_sharded_checkpoint),
        cmocka_unit_test(rejects_broken_checkpoints),
    };
    return cmocka_run_group_tests_name("safetensors", tests, scratch_setup, scratch_cleanup);
}
