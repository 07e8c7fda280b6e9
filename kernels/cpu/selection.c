#include "cpu/selection.h"
#include "cpu/selection_row.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const mode_names[] = {"soft", "column_argmax", "bidding_argmax",
                                         "global_argmax", "groundtruth", "random"};

int selection_mode_from_name(const char *name)
{
    if (!name) return -1;
    if (!strcmp(name, "soft") || !strcmp(name, "default") || !strcmp(name, "none"))
        return SELECT_SOFT;
    for (int i = 0; i < (int)(sizeof mode_names / sizeof *mode_names); i++)
        if (!strcmp(name, mode_names[i])) return i;
    return -1;
}

const char *selection_mode_name(SelectionMode mode)
{
    if ((int)mode < 0 || (int)mode >= (int)(sizeof mode_names / sizeof *mode_names)) return "?";
    return mode_names[mode];
}

void selection_forward(float *out, const float *W, SelectionMode mode, float threshold,
                       const int *src_pos, const int *base_pos, int b, int S, int B)
{
    const size_t P = (size_t)(S + 1) * B;
    if (mode == SELECT_SOFT) {
        if (out != W) memcpy(out, W, (size_t)b * P * sizeof *out);
        return;
    }
    float *tmp = mode == SELECT_BIDDING_ARGMAX ? malloc(P * sizeof *tmp) : NULL;
    for (int r = 0; r < b; r++)
        selection_row(out + r * P, W + r * P, mode, threshold, src_pos ? src_pos[r] : -1,
                      base_pos ? base_pos[r] : -1, S, B, tmp);
    free(tmp);
}
