#include "score/score_match.h"

#include <ctype.h>
#include <string.h>

static const char *skip_leading_space(const char *s)
{
    while (*s && isspace((unsigned char)*s)) s++;
    return s;
}

int score_match_text(const char *generated, const char *label)
{
    if (!generated || !label) return 0;
    const char *g = skip_leading_space(generated);
    const char *l = skip_leading_space(label);
    size_t n = strlen(l);
    if (n == 0) return 0;   /* an empty answer would match everything */
    return strncmp(g, l, n) == 0;
}

int score_match_tokens(const int *pred, int n_pred, const int *label, int n_label, int n)
{
    if (!label || n_label <= 0) return 0;
    int need = (n > 0 && n < n_label) ? n : n_label;
    if (!pred || n_pred < need) return 0;
    for (int i = 0; i < need; i++)
        if (pred[i] != label[i]) return 0;
    return 1;
}
