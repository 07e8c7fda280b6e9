/* libFuzzer harness for encoding and decoding: every input is text for the
 * tiny fixture tokenizers (byte-level, Llama 3 style, SentencePiece style;
 * loaded once, when run from the repository root): encode with offsets
 * checked against the text, decode of the result, and decode of arbitrary
 * ids (out of range ones included) made from the input bytes.  Any input
 * must give a result or one clean error, never a crash.  (The loader's
 * own harness is fuzz_tokenizer_json: split from it so that each input
 * costs one kind of work and both reach millions of runs.) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

static Tokenizer *tiny[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *names[3] = {"tests/fixtures/tokenizer/tiny_bytelevel.json", "tests/fixtures/tokenizer/tiny_llama3.json",
                            "tests/fixtures/tokenizer/tiny_spm.json"};
    for (int i = 0; i < 3; i++) {
        tiny[i] = tokenizer_load_json(names[i], NULL);
        if (!tiny[i]) { /* fuzzing nothing would look like a clean run */
            fprintf(stderr, "fuzz_tokenizer_text: %s (run from the repository root)\n", hd_last_error());
            exit(1);
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    TokenList tl = {0};
    const char *text = (const char *)data;
    for (int k = 0; k < 3; k++) {
        if (tokenizer_encode(tiny[k], text, size, 1, &tl) == 0) {
            for (size_t i = 0; i < tl.n; i++) {
                /* offsets stay inside the text and in order */
                if (tl.start[i] < 0 || tl.end[i] < tl.start[i] || (size_t)tl.end[i] > size) abort();
                if (!tokenizer_id_to_token(tiny[k], tl.ids[i])) abort();
            }
            for (int skip = 0; skip < 2; skip++) free(tokenizer_decode(tiny[k], tl.ids, tl.n, skip, NULL));
        }
        int32_t ids[2048];
        size_t n = 0;
        for (size_t i = 0; i + 1 < size && n < 2048; i += 2)
            ids[n++] = (int32_t)(data[i] | data[i + 1] << 8) % (int32_t)(tokenizer_vocab_size(tiny[k]) + 3) - 1;
        for (int skip = 0; skip < 2; skip++) free(tokenizer_decode(tiny[k], ids, n, skip, NULL));
        for (size_t i = 0; i < n; i++) tokenizer_token_bytes(tiny[k], ids[i], NULL);
    }
    token_list_free(&tl);
    return 0;
}
