#include "train/train_spool.h"
#include "base/error.h"
#include "stream/msgpack_util.h"
#include "stream/stream_kind.h"

int train_spool_check_files(char **files, int n, const char *val, int from_pairs)
{
    const char *want = from_pairs ? "pairs" : "acts";
    for (int i = 0; i < n; i++)
        if (stream_kind_check_file(files[i], want) < 0) return -1;
    return val ? stream_kind_check_file(val, want) : 0;
}

ActsSet *train_spool_build(char **files, int n, const char *final_path, OutFile *tmp)
{
    if (outfile_open(tmp, final_path, 0) < 0) return NULL;
    /* the set writes the temporary file through its own descriptor */
    ActsSet *s = acts_set_build(files, n, tmp->tmp_path);
    if (!s) outfile_abort(tmp);
    return s;
}

/* A pipe's header is only seen while spooling (regular files were checked
 * before the model was loaded: stream_kind_check_file). */
static int check_kinds(const ActsSet *set, const char *where, int from_pairs)
{
    const msgpack_object *const *h = acts_set_headers(set);
    for (int i = 0; i < acts_set_n_headers(set); i++) {
        if (!from_pairs) {
            if (stream_kind_check_headers(where, &h[i], 1, "acts") < 0) return -1;
            continue;
        }
        /* --from-pairs: the acts come from hd-train's own caching, whose
         * header lists the streams it read */
        const msgpack_object *in = mp_map_get(h[i], "inputs");
        for (uint32_t k = 0; in && in->type == MSGPACK_OBJECT_ARRAY && k < in->via.array.size; k++) {
            const msgpack_object *e = &in->via.array.ptr[k];
            if (stream_kind_check_headers(where, &e, 1, "pairs") < 0) return -1;
        }
    }
    return 0;
}

int train_spool_check(const ActsSet *set, const char *where, int from_pairs, const TargetModel *t)
{
    if (check_kinds(set, where, from_pairs) < 0) return -1;
    if (acts_set_count(set) == 0)
        return hd_fail("%s: no acts records in the input (pipe cache-acts output in)", where);
    const char *want = t->model.cfg.config_hash;
    for (int i = 0; i < acts_set_n_headers(set); i++) {
        const msgpack_object *h = acts_set_headers(set)[i];
        const msgpack_object *hash = mp_map_get(h, "config_hash");
        if (mp_is_str(mp_map_get(h, "kind"), "acts") && hash && !mp_is_str(hash, want))
            return hd_fail("%s: the acts records were made by another model (config hash %.*s) than --model %s (%s)",
                           where, (int)(hash->type == MSGPACK_OBJECT_STR ? hash->via.str.size : 0),
                           hash->type == MSGPACK_OBJECT_STR ? hash->via.str.ptr : "", t->path, want);
    }
    return 0;
}

int train_spool_publish(OutFile *tmp)
{
    return tmp->path ? outfile_commit(tmp) : 0;
}
