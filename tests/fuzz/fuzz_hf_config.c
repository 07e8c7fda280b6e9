/* libFuzzer harness for a Hugging Face config.json (hf_config_parse, what
 * llama_load_hf reads before any tensor): any input gives a configuration
 * that passes llama_config_validate, has a config_hash and a canonical
 * text, and whose RoPE frequencies and parameter count can be computed;
 * or one clean error.  Never a crash, leak or UB. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/hf_config.h"
#include "model/llama_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    LlamaConfig cfg;
    if (hf_config_parse(&cfg, (const char *)data, size, "fuzz/config.json") != 0) return 0;
    if (llama_config_validate(&cfg, "fuzz/config.json") != 0) abort();
    if (strlen(cfg.config_hash) != 64) abort();
    /* llama_config_finish hashes the canonical text from a 1024-byte buffer */
    char text[4096];
    int n = llama_config_canonical(&cfg, text, sizeof text);
    if (n < 0 || n >= 1024) abort();
    /* validated sizes are bounded so that the count cannot overflow */
    if (llama_param_count(&cfg) == 0) abort();
    static float inv_freq[1 << 19];
    llama_config_rope_inv_freq(&cfg, inv_freq);
    for (int j = 0; j < cfg.head_dim / 2; j++)
        if (!(inv_freq[j] >= 0)) abort();   /* NaN too: it would poison every position */
    return 0;
}
