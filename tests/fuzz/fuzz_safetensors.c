/* libFuzzer harness for the safetensors reader (and, on the same bytes
 * read as JSON, the config.json parser): any input gives tensors that can
 * be read in full, or one clean error; never a crash, leak or UB. */
#include <stdint.h>
#include <stdlib.h>

#include "model/hf_config.h"
#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    StFile f;
    if (st_parse(&f, data, size, "fuzz.safetensors") == 0) {
        for (int i = 0; i < f.n_tensors; i++) {
            const StTensor *t = &f.tensors[i];
            /* validated: the tensor lies inside the input, so numel <= size */
            float *out = malloc((t->numel ? t->numel : 1) * sizeof(float));
            st_tensor_to_f32(t, out);
            free(out);
            if (st_find(&f, t->name) != t) abort();
        }
        for (int i = 0; i < f.n_meta; i++)
            if (!st_metadata(&f, f.meta_keys[i])) abort();
    }
    st_close(&f);

    LlamaConfig cfg;
    if (hf_config_parse(&cfg, (const char *)data, size, "fuzz.json") == 0) {
        float inv_freq[4096];
        if (cfg.head_dim / 2 <= 4096) llama_config_rope_inv_freq(&cfg, inv_freq);
    }
    return 0;
}
