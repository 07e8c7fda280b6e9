/* libFuzzer harness for the tokenizer's loader: every input is tried as a
 * tokenizer.json (load, then encode and decode a few strings, offsets
 * checked against the text).  Any input must give a tokenizer or one clean
 * error, never a crash.  Text through loaded tokenizers: fuzz_tokenizer_text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"

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
    token_list_free(&tl);
    return 0;
}
