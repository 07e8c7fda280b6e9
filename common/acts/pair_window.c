#include "acts/pair_window.h"
#include "base/cli.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

static void hand_over(PairWindowFn fn, void *ctx, PairItem *items, int n)
{
    if (n > 0) fn(ctx, items, n);
    for (int i = 0; i < n; i++) {
        pair_tokens_free(&items[i].tokens);
        mp_copy_destroy(&items[i].copy);
    }
}

int pair_window_run(RecordInput *in, const TargetModel *t, RecordWriter *out, int window,
                    PairWindowFn fn, void *ctx)
{
    PairItem *items = hd_calloc((size_t)window, sizeof *items);
    int n = 0, rc;
    long long seen = 0;
    Progress prog;
    progress_begin(&prog, "pairs", 0);
    const msgpack_object *rec;
    while ((rc = record_input_next(in, &rec)) == 1) {
        if (!mp_is_str(mp_map_get(rec, "t"), "pair")) {
            hand_over(fn, ctx, items, n);
            n = 0;
            if ((rc = record_writer_write_object(out, rec)) < 0) break;
            continue;
        }
        PairItem *it = &items[n];
        memset(it, 0, sizeof *it);
        it->rec = mp_copy_init(&it->copy, rec);
        if (pair_tokens_build(t, it->rec, &it->tokens) < 0) {
            hd_fail_prefix("%s: ", record_input_where(in));
            mp_copy_destroy(&it->copy);
            rc = -1;
            break;
        }
        n++;
        if (n == window) {
            hand_over(fn, ctx, items, n);
            n = 0;
        }
        progress_update(&prog, ++seen);
    }
    if (rc == 0) hand_over(fn, ctx, items, n);
    for (int i = 0; rc < 0 && i < n; i++) {   /* read but never handed over */
        pair_tokens_free(&items[i].tokens);
        mp_copy_destroy(&items[i].copy);
    }
    progress_end(&prog);
    free(items);
    return rc;
}
