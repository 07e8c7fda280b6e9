/* libFuzzer harness for the RAVEL loader and sampler: five JSON documents
 * (the five files of one domain, separated by lines holding only "----";
 * an empty one is an optional file left out) must either load and sample without trouble or fail with one clean
 * error, never crash, leak, loop or hit undefined behaviour. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ravel/ravel_data.h"
#include "ravel/ravel_sample.h"

static void sample_some(const RavelDomain *d)
{
    for (int st = 0; st < 3; st++)
        for (int split = 0; split < RAVEL_N_SPLITS; split++) {
            RavelSplitSpec spec = {split, (RavelSplitType)st, split == RAVEL_TEST, (RavelPromptKinds)(split % 3)};
            RavelPools p;
            if (ravel_pools_init(&p, d, &spec) == 0)
                for (int a = 0; a < d->n_attributes && a < 4; a++)
                    for (int b = 0; b < d->n_attributes && b < 4; b++) {
                        RavelGroup g;
                        RavelKind kind = a == b ? RAVEL_CAUSAL : RAVEL_ISOLATE;
                        if (ravel_group_init(&g, &p, kind, a, b, st == 2, 1) == 0) {
                            RavelDraw dr;
                            RavelPair pair;
                            for (int i = 0; i < 3 && g.n_pairs > 0; i++)
                                if (ravel_group_draw(&g, &dr) == 0) {
                                    ravel_pair_fill(&pair, d, &dr);
                                    ravel_pair_clear(&pair);
                                }
                            for (int i = 0; i < 3 && ravel_group_next(&g, &dr) == 1; i++) {
                                ravel_pair_fill(&pair, d, &dr);
                                ravel_pair_clear(&pair);
                            }
                        }
                        ravel_group_free(&g);
                    }
            ravel_pools_free(&p);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *docs[RAVEL_N_FILES] = {0};
    const char *names[RAVEL_N_FILES] = {"entity_attributes", "attribute_to_prompts", "entity_to_split",
                                        "prompt_to_split", "wikipedia"};
    const char *p = (const char *)data, *end = p + size;
    int ok = 1;
    for (int f = 0; f < RAVEL_N_FILES && ok; f++) {
        const char *sep = f < RAVEL_N_FILES - 1 ? memmem(p, (size_t)(end - p), "\n----\n", 6) : NULL;
        const char *stop = sep ? sep : end;
        if (f < RAVEL_N_FILES - 1 && !sep) ok = 0;
        json_error_t err;
        /* an empty section is an absent optional file (the hash split, no wiki) */
        int absent = stop == p && ravel_file_optional(f);
        if (ok && !absent) docs[f] = json_loadb(p, (size_t)(stop - p), JSON_REJECT_DUPLICATES, &err);
        if (!docs[f] && !absent) ok = 0;
        p = sep ? sep + 6 : end;
    }
    if (ok) {
        RavelDomain *d = ravel_domain_from_json("fuzz", docs, names, NULL);
        if (d) sample_some(d);
        ravel_domain_free(d);
    }
    for (int f = 0; f < RAVEL_N_FILES; f++) json_decref(docs[f]);
    return 0;
}
