#include "hypernet/hn_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cli.h"
#include "compute.h"
#include "base/error.h"
#include "model/llama_cuda.h"

int hn_session_use_cuda(HnSession *s)
{
    if (!s->hn) return hd_fail("hn_session_use_cuda: no hypernetwork yet");
    /* the step runs the target's layers [L, N) only */
    s->gpu = llama_cuda_create_from(&s->target.model, s->hn->cfg.intervention_layer);
    if (!s->gpu) return -1;
    s->view = llama_cuda_view(s->gpu);
    return 0;
}

void hn_session_use_staged(HnSession *s)
{
    s->view = llama_view_cpu(&s->target.model);
    s->view.K = compute_cpu_staged();
}

HnDevice hn_device_parse(const char *value)
{
    if (strcmp(value, "cpu-staged") == 0) return HN_DEVICE_CPU_STAGED;
    return hd_cli_parse_device(value) ? HN_DEVICE_CUDA : HN_DEVICE_CPU;
}

int hn_session_use_device(HnSession *s, HnDevice device)
{
    if (device == HN_DEVICE_CUDA) return hn_session_use_cuda(s);
    if (device == HN_DEVICE_CPU_STAGED) hn_session_use_staged(s);
    return 0;
}

const LlamaView *hn_session_target(HnSession *s)
{
    if (!s->view.K) s->view = llama_view_cpu(&s->target.model);
    return &s->view;
}

void hn_session_describe_device(const HnSession *s, char *out, size_t size)
{
    if (s->gpu)
        llama_cuda_describe(s->gpu, out, size);
    else
        snprintf(out, size, "%s", s->view.K ? s->view.K->name : "cpu");
}

static int ensure_acts(HnSession *s, const HnBatch *h)
{
    if (s->acts && h->b <= s->cap_b && h->E <= s->cap_E && h->B <= s->cap_B && h->S <= s->cap_S)
        return 0;
    /* grow with some headroom so that a slightly longer batch does not
     * reallocate again */
    s->cap_b = h->b > s->cap_b ? h->b : s->cap_b;
    s->cap_E = h->E + 8 > s->cap_E ? h->E + 8 : s->cap_E;
    s->cap_B = h->B + 8 > s->cap_B ? h->B + 8 : s->cap_B;
    s->cap_S = h->S + 8 > s->cap_S ? h->S + 8 : s->cap_S;
    /* a device's parameters may have moved on since they were uploaded */
    if (s->acts && hn_acts_download_params(s->acts, s->hn)) return -1;
    hn_acts_free(s->acts);
    const LlamaView *target = hn_session_target(s);
    s->acts = hn_acts_create_on(target->K, s->hn, s->cap_b, s->cap_E, s->cap_B, s->cap_S,
                                s->recompute_target);
    return s->acts ? 0 : -1;
}

int hn_session_fill(HnSession *s, const msgpack_object *const *recs, int n, int *bad_index)
{
    *bad_index = 0;
    if (train_batch_fill(&s->tb, recs, n, bad_index) < 0) return -1;
    return ensure_acts(s, &s->tb.hb);
}

void hn_session_free(HnSession *s)
{
    train_batch_free(&s->tb);
    hn_acts_free(s->acts);
    llama_cuda_free(s->gpu);
    hypernet_free(s->hn);
    target_model_free(&s->target);
    memset(s, 0, sizeof *s);
}

static int int_field(json_t *obj, const char *key, const char *path, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return hd_fail("%s: no integer '%s' in the hypernetwork section", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

json_t *hn_config_read(const char *step_dir, HypernetConfig *cfg, const LlamaConfig *target)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", step_dir);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        hd_fail("%s: line %d: %s", path, err.line, err.text);
        return NULL;
    }
    json_t *h = json_object_get(j, "hypernetwork"), *t = json_object_get(j, "target");
    if (!json_is_object(h) || !json_is_object(t)) {
        hd_fail("%s: no hypernetwork or target section", path);
        goto fail;
    }
    if (int_field(h, "n_layers", path, &cfg->n_layers) ||
        int_field(h, "intervention_layer", path, &cfg->intervention_layer) ||
        int_field(h, "das_dim", path, &cfg->das_dim) || int_field(h, "sub_ffn", path, &cfg->sub_ffn))
        goto fail;
    const char *sub = json_string_value(json_object_get(h, "subspace"));
    if (!sub || hn_subspace_from_name(sub) < 0) {
        hd_fail("%s: bad 'subspace'", path);
        goto fail;
    }
    cfg->subspace = (HnSubspace)hn_subspace_from_name(sub);
    /* checkpoints from before the DAS method have no "method": HyperDAS */
    json_t *m = json_object_get(h, "method");
    cfg->method = HN_METHOD_HYPERDAS;
    if (m) {
        int method = hn_method_from_name(json_string_value(m));
        if (method < 0) {
            hd_fail("%s: bad 'method'", path);
            goto fail;
        }
        cfg->method = (HnMethod)method;
    }
    const char *hash = json_string_value(json_object_get(t, "config_hash"));
    if (target && (!hash || strcmp(hash, target->config_hash) != 0)) {
        hd_fail("%s: the checkpoint was trained on another model (config hash %s) than the one "
                "loaded (%s, %s)",
                path, hash ? hash : "missing", target->model_id, target->config_hash);
        goto fail;
    }
    return j;
fail:
    json_decref(j);
    return NULL;
}

char *hn_checkpoint_step_dir(const char *dir)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (stat(path, &st) == 0) return hd_strdup(dir);
    return checkpoint_latest(dir);
}

int hn_session_open(HnSession *s, const char *model, const char *ckpt, char **step, TrainState *st)
{
    *step = NULL;
    const char *path = target_model_resolve(model);
    if (!path || target_model_load(&s->target, path, 1) < 0) return -1;
    const LlamaConfig *tc = &s->target.model.cfg;
    if (!(*step = hn_checkpoint_step_dir(ckpt))) return -1;
    HypernetConfig cfg = hypernet_default_config(tc);
    json_t *j = hn_config_read(*step, &cfg, tc);
    if (!j) return -1;
    json_decref(j);
    s->hn = hypernet_create(&cfg, tc);
    if (!s->hn || checkpoint_load(*step, s->hn, NULL, NULL, st) < 0) return -1;
    return 0;
}
