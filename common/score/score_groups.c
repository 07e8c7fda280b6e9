#include "score/score_groups.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "score/score_match.h"
#include "stream/tensor.h"

#include <stdlib.h>
#include <string.h>

static void group_init(ScoreGroup *g, const char *method, const char *mode, const char *rule,
                       long eval_tokens, int first_n)
{
    g->method = hd_strdup(method);
    g->mode = hd_strdup(mode);
    g->rule = hd_strdup(rule);
    g->eval_tokens = eval_tokens;
    g->sum = score_summary_new();
    /* A twin only where it says something new: records that compare N
     * tokens or fewer already are the first-N judgement. */
    g->first = first_n > 0 && (eval_tokens == 0 || eval_tokens > first_n) ? score_summary_new()
                                                                          : NULL;
}

static void group_free(ScoreGroup *g)
{
    free(g->method);
    free(g->mode);
    free(g->rule);
    score_summary_free(g->sum);
    score_summary_free(g->first);
}

void score_groups_init(ScoreGroups *gs, int first_n)
{
    memset(gs, 0, sizeof *gs);
    gs->first_n = first_n;
    /* cache-acts judged the unintervened model teacher-forced on every
     * label token; its twin needs the acts' base_pred_ids. */
    group_init(&gs->unintervened, "none", "unintervened", "teacher-forced", 0, first_n);
    if (first_n > 0 && !gs->unintervened.first) gs->unintervened.first = score_summary_new();
}

void score_groups_free(ScoreGroups *gs)
{
    for (int i = 0; i < gs->n; i++) group_free(&gs->g[i]);
    free(gs->g);
    group_free(&gs->unintervened);
    memset(gs, 0, sizeof *gs);
}

int score_groups_find(ScoreGroups *gs, const char *method, const char *mode, const char *rule,
                      long eval_tokens)
{
    for (int i = 0; i < gs->n; i++)
        if (!strcmp(gs->g[i].method, method) && !strcmp(gs->g[i].mode, mode) &&
            !strcmp(gs->g[i].rule, rule))
            return i;
    if (gs->n == gs->cap) {
        gs->cap = gs->cap ? 2 * gs->cap : 8;
        gs->g = hd_realloc(gs->g, (size_t)gs->cap * sizeof *gs->g);
    }
    group_init(&gs->g[gs->n], method, mode, rule, eval_tokens, gs->first_n);
    return gs->n++;
}

int score_groups_add(ScoreGroups *gs, int g, const ScoreOutcome *oc, int first_correct,
                     int first_base_correct)
{
    ScoreGroup *gr = &gs->g[g];
    if (score_summary_add(gr->sum, oc) < 0) return -1;
    ScoreOutcome o = *oc;
    if (gr->first && first_correct >= 0) {
        o.correct = first_correct;
        o.base_pred_correct = first_base_correct;
        if (score_summary_add(gr->first, &o) < 0) return -1;
    }
    if (g != 0) return 0;
    /* The unintervened model on the first group's examples: its answer is
     * the acts record's own prediction, the floor every method is
     * compared with. */
    o = *oc;
    if (oc->base_pred_correct >= 0) {
        o.correct = oc->base_pred_correct;
        if (score_summary_add(gs->unintervened.sum, &o) < 0) return -1;
    }
    if (gs->unintervened.first && first_base_correct >= 0) {
        o.correct = o.base_pred_correct = first_base_correct;
        if (score_summary_add(gs->unintervened.first, &o) < 0) return -1;
    }
    return 0;
}

/* ---- the first-N judgement */

void score_first_tokens(const int *pred, int n_pred, const int *label, int n_label,
                        const int *base_pred, int n_base, int base_pred_correct, int n,
                        int *correct, int *base_correct)
{
    const int need = n_label < n ? n_label : n;
    *correct = pred && label && n_pred >= need ? score_match_tokens(pred, n_pred, label, n_label, n)
                                               : -1;
    if (base_pred && label && n_base >= need)
        *base_correct = score_match_tokens(base_pred, n_base, label, n_label, n);
    else /* right on every token is right on the first n; wrong says nothing */
        *base_correct = base_pred_correct == 1 ? 1 : -1;
}

/* An array of integers under key, or NULL when absent or not one. */
static int *int_array(const msgpack_object *rec, const char *key, int *n)
{
    const msgpack_object *v = mp_map_get(rec, key);
    *n = 0;
    if (!v || v->type != MSGPACK_OBJECT_ARRAY) return NULL;
    int *out = hd_malloc(((size_t)v->via.array.size + 1) * sizeof *out);
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        int64_t x;
        if (mp_get_int64(&v->via.array.ptr[i], &x) < 0) {
            free(out);
            return NULL;
        }
        out[i] = (int)x;
    }
    *n = (int)v->via.array.size;
    return out;
}

/* The ids of a tensor under key, or NULL when absent or malformed. */
static int *tensor_ids(const msgpack_object *rec, const char *key, int *n)
{
    Tensor t;
    *n = 0;
    if (!mp_map_get(rec, key) || tensor_from_record(rec, key, &t) < 0) return NULL;
    int *out = hd_malloc((t.numel + 1) * sizeof *out);
    for (size_t i = 0; i < t.numel; i++) out[i] = (int)tensor_get_f64(&t, i);
    *n = (int)t.numel;
    tensor_release(&t);
    return out;
}

static int flag(const msgpack_object *rec, const char *key)
{
    const msgpack_object *v = mp_map_get(rec, key);
    return v && v->type == MSGPACK_OBJECT_BOOLEAN ? v->via.boolean : -1;
}

void score_first_tokens_from_record(const msgpack_object *rec, int n, int *correct,
                                    int *base_correct)
{
    int n_pred, n_label, n_base;
    int *pred = int_array(rec, "pred_ids", &n_pred), *label = int_array(rec, "label_ids", &n_label);
    int *base = int_array(rec, "base_pred_ids", &n_base);
    score_first_tokens(pred, n_pred, label, n_label, base, n_base, flag(rec, "base_pred_correct"),
                       n, correct, base_correct);
    free(pred);
    free(label);
    free(base);
}

void score_first_tokens_from_acts(const msgpack_object *acts, const int *pred, int n_pred, int n,
                                  int *correct, int *base_correct)
{
    int n_label, n_base;
    int *label = tensor_ids(acts, "label_ids", &n_label);
    int *base = tensor_ids(acts, "base_pred_ids", &n_base);
    score_first_tokens(pred, n_pred, label, n_label, base, n_base, flag(acts, "base_pred_correct"),
                       n, correct, base_correct);
    free(label);
    free(base);
}

/* ---- output */

static int write_records(const ScoreGroup *g, const ScoreSummary *sum, long eval_tokens,
                         RecordWriter *out, const ScoreBootstrap *b)
{
    for (int i = 0; i < score_summary_n_splits(sum); i++) {
        score_summary_pack(sum, i, record_writer_packer(out), g->method, g->mode, g->rule,
                           (int)eval_tokens, b);
        if (record_writer_end_record(out) < 0) return -1;
    }
    return 0;
}

static void print_group_table(FILE *f, const ScoreGroup *g, const ScoreBootstrap *b)
{
    char title[512], tokens[32] = "all";
    if (g->eval_tokens > 0) snprintf(tokens, sizeof tokens, "first %ld", g->eval_tokens);
    snprintf(title, sizeof title, "%s, %s selection, %s rule, %s label tokens", g->method, g->mode,
             g->rule, tokens);
    score_summary_print_table(g->sum, f, title, b);
}

/* Every summary of the comparison table, labelled {method, mode, rule}:
 * each group then its twin, the unintervened model then its twin. */
static void print_comparison(FILE *f, const ScoreGroups *gs, const ScoreBootstrap *b)
{
    int cap = 2 * gs->n + 2, n = 0;
    ScoreSummary **sum = hd_calloc((size_t)cap, sizeof *sum);
    const char *(*keys)[3] = hd_calloc((size_t)cap, sizeof *keys);
    char first_rule[64];
    snprintf(first_rule, sizeof first_rule, "first %d tokens", gs->first_n);
    for (int i = 0; i <= gs->n; i++) {
        const ScoreGroup *g = i < gs->n ? &gs->g[i] : &gs->unintervened;
        sum[n] = g->sum;
        keys[n][0] = g->method, keys[n][1] = g->mode, keys[n][2] = g->rule;
        n++;
        if (g->first && score_summary_n_splits(g->first) > 0) {
            sum[n] = g->first;
            keys[n][0] = g->method, keys[n][1] = g->mode, keys[n][2] = first_rule;
            n++;
        }
    }
    score_summary_print_comparison(f, sum, (const char *const(*)[3])keys, n, b);
    free(keys);
    free(sum);
}

/* The group called "method/mode", or NULL. */
static const ScoreGroup *group_named(const ScoreGroups *gs, const char *name, size_t len)
{
    const ScoreGroup *u = &gs->unintervened;
    for (int i = -1; i < gs->n; i++) {
        const ScoreGroup *g = i < 0 ? u : &gs->g[i];
        size_t lm = strlen(g->method);
        if (len == lm + 1 + strlen(g->mode) && !strncmp(name, g->method, lm) && name[lm] == '/' &&
            !strncmp(name + lm + 1, g->mode, len - lm - 1))
            return g;
    }
    return NULL;
}

/* Resolves spec "A:B"; -1 (hd_fail) when a name is unknown. */
static int resolve(const ScoreGroups *gs, const char *spec, const ScoreGroup **a,
                   const ScoreGroup **b)
{
    const char *colon = strchr(spec, ':');
    if (colon) {
        *a = group_named(gs, spec, (size_t)(colon - spec));
        *b = group_named(gs, colon + 1, strlen(colon + 1));
        if (*a && *b) return 0;
    }
    char have[1024] = "";
    size_t used = 0;
    for (int i = 0; i < gs->n && used < sizeof have; i++)
        used += (size_t)snprintf(have + used, sizeof have - used, "%s/%s, ", gs->g[i].method,
                                 gs->g[i].mode);
    return hd_fail("--compare %s: expected A:B, each one of: %snone/unintervened", spec, have);
}

int score_groups_check_compare(const ScoreGroups *gs, char *const *compare, int n_compare)
{
    const ScoreGroup *a, *b;
    for (int i = 0; i < n_compare; i++)
        if (resolve(gs, compare[i], &a, &b) < 0) return -1;
    return 0;
}

typedef struct {
    const ScoreGroup *a, *b;
} GroupPair;

/* The index of the first group of group i's method. */
static int first_of_method(const ScoreGroups *gs, int i)
{
    for (int j = 0; j < i; j++)
        if (!strcmp(gs->g[j].method, gs->g[i].method)) return j;
    return i;
}

/* The pairs to compare: --compare's, or the defaults. */
static int group_pairs(const ScoreGroups *gs, char *const *compare, int n_compare,
                       GroupPair **out)
{
    GroupPair *p = hd_calloc((size_t)(n_compare + gs->n * gs->n + gs->n + 1), sizeof *p);
    int n = 0;
    for (int i = 0; i < n_compare; i++)
        if (resolve(gs, compare[i], &p[n].a, &p[n].b) < 0) {
            free(p);
            return -1;
        } else n++;
    if (n_compare == 0) {
        /* the first mode of each method against the first of every other */
        for (int i = 0; i < gs->n; i++) {
            if (first_of_method(gs, i) != i) continue;
            for (int j = i + 1; j < gs->n; j++)
                if (first_of_method(gs, j) == j) p[n++] = (GroupPair){&gs->g[i], &gs->g[j]};
        }
        if (score_summary_n_splits(gs->unintervened.sum) > 0)
            for (int i = 0; i < gs->n; i++) p[n++] = (GroupPair){&gs->g[i], &gs->unintervened};
    }
    *out = p;
    return n;
}

static void tokens_of(char *buf, size_t size, long eval_tokens)
{
    if (eval_tokens > 0) snprintf(buf, size, "first %ld", eval_tokens);
    else snprintf(buf, size, "all");
}

typedef struct {
    char a[160], b[160], tokens[72];
} PairNames;

/* The paired table: each pair on its records' tokens, then on the first N
 * when both have a twin. */
static void print_pairs(FILE *f, const ScoreGroups *gs, const GroupPair *p, int n,
                        const ScoreBootstrap *b)
{
    ScorePairSpec *specs = hd_calloc((size_t)(2 * n + 1), sizeof *specs);
    PairNames *names = hd_calloc((size_t)(2 * n + 1), sizeof *names);
    int k = 0;
    for (int i = 0; i < n; i++) {
        for (int twin = 0; twin <= 1; twin++) {
            const ScoreSummary *sa = twin ? p[i].a->first : p[i].a->sum;
            const ScoreSummary *sb = twin ? p[i].b->first : p[i].b->sum;
            if (!sa || !sb || score_summary_n_splits(sa) == 0 || score_summary_n_splits(sb) == 0)
                continue;
            PairNames *nm = &names[k];
            snprintf(nm->a, sizeof nm->a, "%s/%s", p[i].a->method, p[i].a->mode);
            snprintf(nm->b, sizeof nm->b, "%s/%s", p[i].b->method, p[i].b->mode);
            char ta[32], tb[32];
            tokens_of(ta, sizeof ta, twin ? gs->first_n : p[i].a->eval_tokens);
            tokens_of(tb, sizeof tb, twin ? gs->first_n : p[i].b->eval_tokens);
            if (strcmp(ta, tb)) snprintf(nm->tokens, sizeof nm->tokens, "%s/%s", ta, tb);
            else snprintf(nm->tokens, sizeof nm->tokens, "%s", ta);
            specs[k++] = (ScorePairSpec){sa, sb, nm->a, nm->b, nm->tokens};
        }
    }
    score_print_paired(f, specs, k, b);
    free(names);
    free(specs);
}

int score_groups_report(const ScoreGroups *gs, RecordWriter *out, FILE *table, int first_records,
                        const ScoreBootstrap *b, char *const *compare, int n_compare)
{
    GroupPair *pairs = NULL;
    int n_pairs = 0;
    /* --compare is checked before anything is written */
    if (table && (n_pairs = group_pairs(gs, compare, n_compare, &pairs)) < 0) return -1;
    int rc = 0;
    for (int i = 0; i < gs->n && rc == 0; i++) {
        const ScoreGroup *g = &gs->g[i];
        if (out) rc = write_records(g, g->sum, g->eval_tokens, out, b);
        if (out && rc == 0 && first_records && g->first)
            rc = write_records(g, g->first, gs->first_n, out, b);
        if (table && rc == 0) print_group_table(table, g, b);
    }
    if (table && rc == 0) {
        print_comparison(table, gs, b);
        print_pairs(table, gs, pairs, n_pairs, b);
    }
    free(pairs);
    return rc;
}
