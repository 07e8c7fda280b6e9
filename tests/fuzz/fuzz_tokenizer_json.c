/* libFuzzer harness for the tokenizer: every input is tried
 *  1. as a tokenizer.json (load, then encode and decode a few strings), and
 *  2. as text for the tiny fixture tokenizers (byte-level, Llama 3 style,
 *     SentencePiece style; loaded once, when run from the repository root):
 *     encode with offsets checked against the text, decode of the result
 *     and of arbitrary ids made from the input bytes.
 * Any input must give a result or one clean error, never a crash. */
#include <stdint.h>
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
    for (int i = 0; i < 3; i++) tiny[i] = tokenizer_load_json(names[i], NULL);
    return 0;
}

static void exercise(const Tokenizer *t, const char *text, size_t len, TokenList *tl)
{
    if (tokenizer_encode(t, text, len, 1, tl) != 0) return;
    for (size_t i = 0; i < tl->n; i++) {
        /* offsets stay inside the text and in order */
        if (tl->start[i] < 0 || tl->end[i] < tl->start[i] || (size_t)tl->end[i] > len) abort();
        if (!tokenizer_id_to_token(t, tl->ids[i])) abort();
    }
    for (int skip = 0; skip < 2; skip++) free(tokenizer_decode(t, tl->ids, tl->n, skip, NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TokenList tl = {0};
    Tokenizer *t = tokenizer_load_json_text((const char *)data, size, NULL, 0, "fuzz.json");
    if (t) {
        static const char *texts[] = {"Hello world", "  x\n\n1234 <s> 😀é", "", "a<|endoftext|>b"};
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) exercise(t, texts[i], strlen(texts[i]), &tl);
        tokenizer_free(t);
    } else if (!hd_last_error()[0]) {
        abort();
    }
    if (size <= 4096) {
        for (int k = 0; k < 3; k++) {
            if (!tiny[k]) continue;
            exercise(tiny[k], (const char *)data, size, &tl);
            int32_t ids[2048];
            size_t n = 0;
            for (size_t i = 0; i + 1 < size && n < 2048; i += 2)
                ids[n++] = (int32_t)(data[i] | data[i + 1] << 8) % (int32_t)(tokenizer_vocab_size(tiny[k]) + 3) - 1;
            for (int skip = 0; skip < 2; skip++) free(tokenizer_decode(tiny[k], ids, n, skip, NULL));
            for (size_t i = 0; i < n; i++) tokenizer_token_bytes(tiny[k], ids[i], NULL);
        }
    }
    token_list_free(&tl);
    return 0;
}
