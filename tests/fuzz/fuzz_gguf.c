/* libFuzzer harness for the GGUF reader: parse, read every metadata value
 * through the typed getters, dequantise every (small) tensor and derive a
 * Llama configuration; any input gives that or one clean error. */
#include <stdint.h>
#include <stdlib.h>

#include "formats/gguf.h"
#include "model/llama_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GgufFile g;
    if (gguf_parse(&g, data, size, "fuzz.gguf") == 0) {
        for (int i = 0; i < g.n_kvs; i++) {
            const GgufKV *kv = &g.kvs[i];
            int64_t iv;
            double fv;
            int bv;
            char *s = NULL;
            gguf_get_int(&g, kv->key, &iv);
            gguf_get_float(&g, kv->key, &fv);
            gguf_get_bool(&g, kv->key, &bv);
            if (gguf_get_string(&g, kv->key, &s) == 0) free(s);
            if (kv->type == GGUF_ARRAY && kv->elem_type != GGUF_STRING)
                for (uint64_t k = 0; k < kv->n; k++) fv += gguf_array_float(kv, k) + (double)gguf_array_int(kv, k);
            if (gguf_find_kv(&g, kv->key) == NULL) abort();
        }
        for (int i = 0; i < g.n_tensors; i++) {
            const GgufTensor *t = &g.tensors[i];
            if (t->numel > (1u << 20)) continue;   /* bounded by the input size anyway; keep runs fast */
            float *out = malloc((t->numel ? t->numel : 1) * sizeof(float));
            gguf_tensor_to_f32(t, out);
            free(out);
        }
        LlamaConfig cfg;
        llama_config_from_gguf(&cfg, &g);
    }
    gguf_close(&g);
    return 0;
}
