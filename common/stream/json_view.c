#include "stream/json_view.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/tensor.h"
#include "float16.h"
#include "base/unicode.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void write_base64(FILE *out, const unsigned char *p, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        fputc(b64chars[(v >> 18) & 63], out);
        fputc(b64chars[(v >> 12) & 63], out);
        fputc(i + 1 < n ? b64chars[(v >> 6) & 63] : '=', out);
        fputc(i + 2 < n ? b64chars[v & 63] : '=', out);
    }
    fputc('"', out);
}

static void write_string(FILE *out, const char *s, size_t n)
{
    /* JSON text is UTF-8: bytes that are not (a msgpack str may hold any)
     * are shown as U+FFFD, one per maximal ill-formed subpart, as Python's
     * errors="replace" and Rust's from_utf8_lossy do, so that any record
     * prints as JSON that every parser accepts. */
    uint8_t *lossy = NULL;
    if (utf8_first_invalid((const uint8_t *)s, n) < n) {
        lossy = hd_malloc(3 * n);
        n = utf8_lossy_copy((const uint8_t *)s, n, lossy);
        s = (const char *)lossy;
    }
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20 || c == 0x7f) fprintf(out, "\\u%04x", c);
            else fputc(c, out);
        }
    }
    fputc('"', out);
    free(lossy);
}

/* Shortest-enough text that reads back to the same value, always with a
 * '.' or exponent so that a reader sees a real, not an integer. */
static void write_real(FILE *out, double v, int is_f32)
{
    if (isnan(v)) { fputs("\"NaN\"", out); return; }
    if (isinf(v)) { fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", out); return; }
    char buf[40];
    snprintf(buf, sizeof buf, is_f32 ? "%.9g" : "%.17g", v);
    fputs(buf, out);
    if (!strpbrk(buf, ".eE")) fputs(".0", out);
}

static void write_tensor_value(FILE *out, const Tensor *t, size_t i)
{
    double v = tensor_get_f64(t, i);
    if (t->dtype == DTYPE_I64) {
        int64_t x;
        memcpy(&x, (const char *)t->data + 8 * i, 8);
        fprintf(out, "%lld", (long long)x);
    } else if (t->dtype == DTYPE_I32 || t->dtype == DTYPE_U8) {
        fprintf(out, "%.0f", v);
    } else {
        write_real(out, v, 1);
    }
}

static int write_tensor(FILE *out, const msgpack_object *o, const JsonViewOptions *opt)
{
    Tensor t;
    if (tensor_decode(o, &t) < 0) return -1;
    fprintf(out, "{\"dtype\":\"%s\",\"shape\":[", dtype_name(t.dtype));
    for (int i = 0; i < t.ndim; i++) fprintf(out, "%s%lld", i ? "," : "", (long long)t.shape[i]);
    fputc(']', out);
    const msgpack_object *codec = mp_map_get(o, "codec");
    if (opt->full_tensors) {
        if (codec && codec->type == MSGPACK_OBJECT_STR) fputs(",\"codec\":\"zlib\"", out);
        fputs(",\"data\":[", out);
        for (size_t i = 0; i < t.numel; i++) {
            if (i) fputc(',', out);
            write_tensor_value(out, &t, i);
        }
        fputc(']', out);
    } else if (t.numel > 0) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        size_t n_nan = 0;
        for (size_t i = 0; i < t.numel; i++) {
            double v = tensor_get_f64(&t, i);
            if (isnan(v)) { n_nan++; continue; }
            if (v < lo) lo = v;
            if (v > hi) hi = v;
            sum += v;
        }
        fputs(",\"min\":", out);
        write_real(out, lo, 0);
        fputs(",\"max\":", out);
        write_real(out, hi, 0);
        fputs(",\"mean\":", out);
        write_real(out, t.numel > n_nan ? sum / (double)(t.numel - n_nan) : NAN, 0);
        if (n_nan) fprintf(out, ",\"nan\":%zu", n_nan);
        fputs(",\"first\":[", out);
        for (size_t i = 0; i < t.numel && i < (size_t)opt->n_first; i++) {
            if (i) fputc(',', out);
            write_tensor_value(out, &t, i);
        }
        fputc(']', out);
    }
    fputc('}', out);
    tensor_release(&t);
    return 0;
}

/* in_key: o is (part of) a map key that is not a string, being written as
 * the text of a JSON string; keys inside it that are not strings are then
 * written as bare JSON text too, not escaped into strings again, since
 * escaping at every level of nesting would double the output per level (an
 * 888-byte record of nested map keys printed 68 MB). */
static int write_value(FILE *out, const msgpack_object *o, const JsonViewOptions *opt, int depth,
                       int in_key)
{
    if (depth > 64) return hd_fail("value nested too deeply");
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", out); return 0;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", out); return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf(out, "%llu", (unsigned long long)o->via.u64); return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf(out, "%lld", (long long)o->via.i64); return 0;
    case MSGPACK_OBJECT_FLOAT32: write_real(out, o->via.f64, 1); return 0;
    case MSGPACK_OBJECT_FLOAT64: write_real(out, o->via.f64, 0); return 0;
    case MSGPACK_OBJECT_STR: write_string(out, o->via.str.ptr, o->via.str.size); return 0;
    case MSGPACK_OBJECT_BIN:
        fputs("{\"$bin\":", out);
        write_base64(out, (const unsigned char *)o->via.bin.ptr, o->via.bin.size);
        fputc('}', out);
        return 0;
    case MSGPACK_OBJECT_EXT:
        fprintf(out, "{\"$ext\":%d,\"$bin\":", o->via.ext.type);
        write_base64(out, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
        fputc('}', out);
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', out);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) fputc(',', out);
            if (write_value(out, &o->via.array.ptr[i], opt, depth + 1, in_key) < 0) return -1;
        }
        fputc(']', out);
        return 0;
    case MSGPACK_OBJECT_MAP:
        if (tensor_looks_like(o)) return write_tensor(out, o, opt);
        fputc('{', out);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i) fputc(',', out);
            if (kv->key.type == MSGPACK_OBJECT_STR) {
                write_string(out, kv->key.via.str.ptr, kv->key.via.str.size);
            } else if (in_key) {
                if (write_value(out, &kv->key, opt, depth + 1, 1) < 0) return -1;
            } else {
                /* JSON keys are strings: show other keys as their JSON text. */
                char *text = NULL;
                size_t len = 0;
                FILE *mem = open_memstream(&text, &len);
                if (!mem) return hd_fail("out of memory");
                int rc = write_value(mem, &kv->key, opt, depth + 1, 1);
                if (fclose(mem) != 0) rc = hd_fail("out of memory");
                if (rc == 0) write_string(out, text, len);
                free(text);
                if (rc < 0) return -1;
            }
            fputc(':', out);
            if (write_value(out, &kv->val, opt, depth + 1, in_key) < 0) return -1;
        }
        fputc('}', out);
        return 0;
    default:
        return hd_fail("unknown msgpack type %d", (int)o->type);
    }
}

int json_view_write(FILE *out, const msgpack_object *rec, const JsonViewOptions *opt)
{
    return write_value(out, rec, opt, 0, 0);
}

/* ------------------------------------------------------ JSON -> msgpack */

static int b64_value(int c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

static int pack_base64(msgpack_packer *pk, const char *s, int ext_type)
{
    size_t n = strlen(s);
    if (n % 4) return hd_fail("base64 text has a length that is not a multiple of 4");
    unsigned char *bytes = hd_malloc(n / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = s[i + j] == '=' ? 0 : b64_value((unsigned char)s[i + j]);
            if (v[j] < 0) { free(bytes); return hd_fail("invalid base64 character"); }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        bytes[k++] = (unsigned char)(x >> 16);
        if (s[i + 2] != '=') bytes[k++] = (unsigned char)(x >> 8);
        if (s[i + 3] != '=') bytes[k++] = (unsigned char)x;
    }
    if (ext_type >= 0) {
        msgpack_pack_ext(pk, k, (int8_t)ext_type);
        msgpack_pack_ext_body(pk, bytes, k);
    } else {
        msgpack_pack_bin(pk, k);
        msgpack_pack_bin_body(pk, bytes, k);
    }
    free(bytes);
    return 0;
}

static int number_of(json_t *v, double *out)
{
    if (json_is_number(v)) { *out = json_number_value(v); return 0; }
    const char *s = json_string_value(v);
    if (s && strcmp(s, "NaN") == 0) { *out = NAN; return 0; }
    if (s && strcmp(s, "Infinity") == 0) { *out = INFINITY; return 0; }
    if (s && strcmp(s, "-Infinity") == 0) { *out = -INFINITY; return 0; }
    return hd_fail("tensor data holds a value that is not a number");
}

static int pack_tensor_json(json_t *obj, msgpack_packer *pk)
{
    json_t *jd = json_object_get(obj, "dtype"), *js = json_object_get(obj, "shape");
    json_t *data = json_object_get(obj, "data");
    DType dt;
    if (!json_is_string(jd) || dtype_parse(json_string_value(jd), strlen(json_string_value(jd)), &dt) < 0)
        return hd_fail("tensor: bad 'dtype'");
    if (!json_is_array(js) || json_array_size(js) > TENSOR_MAX_DIMS) return hd_fail("tensor: bad 'shape'");
    int64_t shape[TENSOR_MAX_DIMS];
    size_t numel = 1, ndim = json_array_size(js);
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0) return hd_fail("tensor: bad 'shape'");
        shape[i] = json_integer_value(d);
        /* [2^32, 2^32] must not wrap to 0 elements and match empty data */
        if (shape[i] && numel > ((size_t)1 << 42) / (size_t)shape[i]) return hd_fail("tensor: shape is too large");
        numel *= (size_t)shape[i];
    }
    if (json_array_size(data) != numel)
        return hd_fail("tensor: 'data' has %zu values, shape needs %zu", json_array_size(data), numel);
    size_t es = dtype_size(dt);
    unsigned char *raw = hd_malloc(numel * es + 1);
    for (size_t i = 0; i < numel; i++) {
        json_t *v = json_array_get(data, i);
        unsigned char *p = raw + i * es;
        if (dt == DTYPE_I64 || dt == DTYPE_I32 || dt == DTYPE_U8) {
            if (!json_is_integer(v)) { free(raw); return hd_fail("tensor: integer dtype holds a non-integer"); }
            long long x = json_integer_value(v);
            if (dt == DTYPE_I64) { int64_t y = x; memcpy(p, &y, 8); }
            else if (dt == DTYPE_I32) { int32_t y = (int32_t)x; memcpy(p, &y, 4); }
            else *p = (unsigned char)x;
            continue;
        }
        double x = 0;
        if (number_of(v, &x) < 0) { free(raw); return -1; }
        float f = (float)x;
        if (dt == DTYPE_F32) memcpy(p, &f, 4);
        else {
            uint16_t h = dt == DTYPE_BF16 ? f32_to_bf16(f) : f32_to_f16(f);
            memcpy(p, &h, 2);
        }
    }
    int zlib = json_is_string(json_object_get(obj, "codec")) &&
               strcmp(json_string_value(json_object_get(obj, "codec")), "zlib") == 0;
    int rc = tensor_pack(pk, dt, (int)ndim, shape, raw, zlib ? 6 : 0);
    free(raw);
    return rc;
}

static int pack_json(json_t *v, msgpack_packer *pk, int depth)
{
    if (depth > 64) return hd_fail("JSON nested too deeply");
    switch (json_typeof(v)) {
    case JSON_NULL: msgpack_pack_nil(pk); return 0;
    case JSON_TRUE: msgpack_pack_true(pk); return 0;
    case JSON_FALSE: msgpack_pack_false(pk); return 0;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); return 0;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); return 0;
    case JSON_STRING: mp_pack_strn(pk, json_string_value(v), json_string_length(v)); return 0;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            if (pack_json(json_array_get(v, i), pk, depth + 1) < 0) return -1;
        return 0;
    case JSON_OBJECT: {
        json_t *bin = json_object_get(v, "$bin");
        if (json_is_string(bin) && json_object_size(v) <= 2) {
            json_t *ext = json_object_get(v, "$ext");
            if (json_object_size(v) == 1) return pack_base64(pk, json_string_value(bin), -1);
            if (json_is_integer(ext)) return pack_base64(pk, json_string_value(bin), (int)json_integer_value(ext));
        }
        if (json_object_get(v, "dtype") && json_object_get(v, "shape")) {
            if (json_is_array(json_object_get(v, "data"))) return pack_tensor_json(v, pk);
            return hd_fail("a tensor summary cannot be turned back into data (print it with hd-cat --full)");
        }
        msgpack_pack_map(pk, json_object_size(v));
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val) {
            mp_pack_str(pk, key);
            if (pack_json(val, pk, depth + 1) < 0) return -1;
        }
        return 0;
    }
    }
    return hd_fail("unknown JSON value");
}

int json_line_to_record(const char *line, size_t len, msgpack_packer *pk)
{
    json_error_t err;
    json_t *v = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    if (!v) return hd_fail("column %d: %s", err.column, err.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return hd_fail("a record must be a JSON object");
    }
    int rc = pack_json(v, pk, 0);
    json_decref(v);
    return rc;
}
