#include "train/train_options.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "hypernet/hn_session.h"
#include "base/rng.h"

/* ---- config.json of every checkpoint ---- */

char *train_options_json(const TrainOptions *o, const Hypernet *hn, const TargetModel *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    const HypernetConfig *c = &hn->cfg;
    fprintf(f,
            "{\n  \"format\": \"hyperdas-hypernetwork\",\n  \"version\": 1,\n"
            "  \"tool_version\": \"%s\",\n"
            "  \"hypernetwork\": {\"method\": \"%s\", \"n_layers\": %d, \"intervention_layer\": %d,\n"
            "    \"das_dim\": %d, \"subspace\": \"%s\", \"sub_ffn\": %d, \"sub_rms_eps\": %g},\n"
            "  \"target\": {\"model_id\": \"%s\", \"config_hash\": \"%s\", \"hidden_size\": %d,\n"
            "    \"n_layers\": %d, \"vocab_size\": %d, \"bos_id\": %d},\n"
            "  \"train\": {\"batch\": %ld, \"epochs\": %ld, \"max_steps\": %ld, \"lr\": %g, \"lr_rotate\": %g,\n"
            "    \"lr_mask\": %g, \"weight_decay\": %g, \"clip\": %g, \"warmup_steps\": %ld,\n"
            "    \"schedule\": \"%s\", \"causal_weight\": %g, \"iso_weight\": %g, \"sparsity\": %s,\n"
            "    \"sparsity_start\": %g, \"sparsity_end\": %g, \"sparsity_warmup\": %g,\n"
            "    \"from_scratch\": %s, \"head_std\": %g, \"seed\": %llu}\n}\n",
            HD_VERSION, hn_method_name(c->method), c->n_layers, c->intervention_layer, c->das_dim, hn_subspace_name(c->subspace),
            c->sub_ffn, c->sub_rms_eps, t->model.cfg.model_id, t->model.cfg.config_hash,
            t->model.cfg.hidden_size, t->model.cfg.n_layers, t->model.cfg.vocab_size, t->bos_id,
            o->batch, o->epochs, o->max_steps, o->lr, o->lr_rotate, o->lr_mask, o->wd, o->clip,
            o->warmup, o->schedule, o->causal_w, o->iso_w, o->sparsity ? "true" : "false",
            o->sp_start, o->sp_end, o->sp_warmup, o->from_scratch ? "true" : "false", o->head_std,
            (unsigned long long)o->seed);
    fclose(f);
    return buf;
}

/* ---- the data order: a fresh permutation per epoch from (seed, epoch) ---- */

void train_epoch_order(size_t *perm, size_t n, uint64_t seed, long epoch)
{
    uint64_t key[2] = {seed, (uint64_t)epoch};
    Rng r;
    rng_seed(&r, fnv1a64(key, sizeof key));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_uniform(&r, i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

double train_scheduled_lr(const TrainOptions *o, double base, long step, long total)
{
    if (o->warmup > 0 && step < o->warmup) return base * (double)(step + 1) / (double)o->warmup;
    double frac = total > o->warmup ? (double)(step - o->warmup) / (double)(total - o->warmup) : 0;
    if (strcmp(o->schedule, "linear") == 0) return base * (1 - frac);
    if (strcmp(o->schedule, "cosine") == 0) return base * 0.5 * (1 + cos(M_PI * frac));
    return base;
}

/* ---- resuming: the checkpoint's configuration wins ---- */

/* The fields are read in turn; the first missing one is remembered (bad)
 * and named in the message. */
static long int_field(json_t *obj, const char *key, const char **bad)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        if (!*bad) *bad = key;
        return 0;
    }
    return (long)json_integer_value(v);
}

static double num_field(json_t *obj, const char *key, const char **bad)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) {
        if (!*bad) *bad = key;
        return 0;
    }
    return json_number_value(v);
}

int train_options_restore(TrainOptions *o, const char *step_dir, const LlamaConfig *target)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", step_dir);
    json_t *j = hn_config_read(step_dir, &o->hcfg, target);
    if (!j) return -1;
    json_t *t = json_object_get(j, "train");
    if (!json_is_object(t)) {
        json_decref(j);
        return hd_fail("%s: no train section", path);
    }
    const char *bad = NULL;
    o->batch = int_field(t, "batch", &bad);
    o->lr = num_field(t, "lr", &bad);
    o->lr_rotate = num_field(t, "lr_rotate", &bad);
    o->lr_mask = num_field(t, "lr_mask", &bad);
    o->wd = num_field(t, "weight_decay", &bad);
    o->clip = num_field(t, "clip", &bad);
    o->warmup = int_field(t, "warmup_steps", &bad);
    o->causal_w = num_field(t, "causal_weight", &bad);
    o->iso_w = num_field(t, "iso_weight", &bad);
    o->sp_start = num_field(t, "sparsity_start", &bad);
    o->sp_end = num_field(t, "sparsity_end", &bad);
    o->sp_warmup = num_field(t, "sparsity_warmup", &bad);
    o->head_std = num_field(t, "head_std", &bad);
    o->sparsity = json_is_true(json_object_get(t, "sparsity"));
    o->from_scratch = json_is_true(json_object_get(t, "from_scratch"));
    o->seed = (uint64_t)int_field(t, "seed", &bad);
    /* point at the literal, not into the JSON about to be freed */
    const char *sched = json_string_value(json_object_get(t, "schedule"));
    static const char *const schedules[] = {"constant", "linear", "cosine"};
    o->schedule = NULL;
    for (int i = 0; i < 3; i++)
        if (sched && strcmp(sched, schedules[i]) == 0) o->schedule = schedules[i];
    json_decref(j);
    if (bad) return hd_fail("%s: no number '%s' in the train section", path, bad);
    if (!o->schedule) return hd_fail("%s: bad 'schedule'", path);
    return 0;
}

/* ---- resuming: an option given again must agree with the checkpoint ---- */

static int contradiction(const char *opt, const char *given, const char *ck, const char *path)
{
    return hd_fail("%s %s contradicts the checkpoint's %s (%s): a resumed run keeps the configuration "
                   "it was trained with; drop %s, or train anew into another -c DIR",
                   opt, given, ck, path, opt);
}

/* Numbers are compared as config.json prints them (%g), so that giving
 * again the value a run was started with is no contradiction. */
static int check_num(const char *opt, int given, double cli, double ck, const char *path)
{
    if (!given) return 0;
    char a[64], b[64];
    snprintf(a, sizeof a, "%g", cli);
    snprintf(b, sizeof b, "%g", ck);
    return strcmp(a, b) ? contradiction(opt, a, b, path) : 0;
}

static int check_str(const char *opt, const char *cli, const char *ck, const char *path)
{
    return cli && strcmp(cli, ck) ? contradiction(opt, cli, ck, path) : 0;
}

int train_options_check_resume(const TrainOptions *cli, const TrainOptions *ck, const char *step_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", step_dir);
    const HypernetConfig *h = &ck->hcfg;
    const unsigned g = cli->given;
    if (check_str("--method", cli->method, hn_method_name(h->method), path) ||
        check_num("--layer", cli->layer >= 0, (double)cli->layer, h->intervention_layer, path) ||
        check_num("--hyper-layers", cli->hyper_layers >= 0, (double)cli->hyper_layers, h->n_layers, path) ||
        check_num("--das-dim", cli->das_dim >= 0, (double)cli->das_dim, h->das_dim, path) ||
        check_num("--sub-ffn", cli->sub_ffn >= 0, (double)cli->sub_ffn, h->sub_ffn, path) ||
        check_str("--subspace", cli->subspace, hn_subspace_name(h->subspace), path) ||
        check_num("--batch", g & TRAIN_GIVEN_BATCH, (double)cli->batch, (double)ck->batch, path) ||
        check_num("--lr", g & TRAIN_GIVEN_LR, cli->lr, ck->lr, path) ||
        check_num("--lr-rotate", cli->lr_rotate >= 0, cli->lr_rotate, ck->lr_rotate, path) ||
        check_num("--lr-mask", g & TRAIN_GIVEN_LR_MASK, cli->lr_mask, ck->lr_mask, path) ||
        check_num("--weight-decay", g & TRAIN_GIVEN_WD, cli->wd, ck->wd, path) ||
        check_num("--clip", cli->clip >= 0, cli->clip, ck->clip, path) ||
        check_num("--warmup-steps", g & TRAIN_GIVEN_WARMUP, (double)cli->warmup, (double)ck->warmup, path) ||
        check_str("--schedule", g & TRAIN_GIVEN_SCHEDULE ? cli->schedule : NULL, ck->schedule, path) ||
        check_num("--causal-weight", cli->causal_w >= 0, cli->causal_w, ck->causal_w, path) ||
        check_num("--iso-weight", cli->iso_w >= 0, cli->iso_w, ck->iso_w, path) ||
        check_num("--head-std", g & TRAIN_GIVEN_HEAD_STD, cli->head_std, ck->head_std, path))
        return -1;
    if ((g & TRAIN_GIVEN_SEED) && cli->seed != ck->seed) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%llu", (unsigned long long)cli->seed);
        snprintf(b, sizeof b, "%llu", (unsigned long long)ck->seed);
        return contradiction("--seed", a, b, path);
    }
    if ((g & TRAIN_GIVEN_SCRATCH) && !ck->from_scratch)
        return contradiction("--from-scratch", "(given)", "decoder copied from the target", path);
    if (g & TRAIN_GIVEN_SPARSITY) {
        if (cli->sparsity != ck->sparsity)
            return contradiction(cli->sparsity ? "--sparsity" : "--no-sparsity", "(given)",
                                 ck->sparsity ? "sparsity loss" : "no sparsity loss", path);
        if (cli->sparsity && (check_num("--sparsity (start)", 1, cli->sp_start, ck->sp_start, path) ||
                              check_num("--sparsity (end)", 1, cli->sp_end, ck->sp_end, path) ||
                              check_num("--sparsity (warm-up)", 1, cli->sp_warmup, ck->sp_warmup, path)))
            return -1;
    }
    return 0;
}

/* Options left unset take the defaults of the chosen method: HyperDAS's
 * (hyperdas(7) 7) or the MDAS baseline's (hyperdas(7) 8: AdamW on R only at
 * 3e-4 without weight decay or clipping, loss weights 1 and 1). */
int train_options_method_defaults(TrainOptions *o)
{
    int das = o->method && strcmp(o->method, "das") == 0;
    if (o->method && !das && strcmp(o->method, "hyperdas") != 0)
        return hd_fail("unknown method '%s' (expected hyperdas or das)", o->method);
    if (o->lr_rotate < 0) o->lr_rotate = das ? 3e-4 : 1e-3;
    if (o->clip < 0) o->clip = das ? 0 : 4.0;
    if (o->causal_w < 0) o->causal_w = das ? 1.0 : 3.5;
    if (o->iso_w < 0) o->iso_w = das ? 1.0 : 0.5;
    if (!o->eval_modes) o->eval_modes = das ? "groundtruth,random" : "soft,bidding_argmax";
    return 0;
}

