/* libFuzzer harness for a checkpoint's state.json as hd-train --resume and
 * hd-score read it (checkpoint_state_parse, the part of checkpoint_load
 * after the tensors): any input gives a state whose counters are all >= 0,
 * or one clean error; never a crash, leak or UB. */
#include <stdint.h>
#include <stdlib.h>

#include "hypernet/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TrainState st = {-1, -1, -1, 0};
    if (checkpoint_state_parse(&st, (const char *)data, size, "fuzz/state.json") == 0) {
        /* a negative cursor would index before the data order */
        if (st.step < 0 || st.epoch < 0 || st.cursor < 0) abort();
    }
    return 0;
}
