/* ravel-pairs: the RAVEL benchmark, or any domain in its file format, as
 * counterfactual pair records.
 *
 * Reads a domain's JSON files (common/ravel_data; a domain without split
 * files is split by a hash of the names), builds the split's pools, and
 * for every target attribute draws causal and isolation pairs with the
 * HyperDAS procedure (common/ravel_sample, ravel_plan), optionally through
 * a model-knowledge filter (common/known_filter).  Output: a record stream
 * of `pair` records, or with --count-only a table of counts.  The options
 * are common/ravel_options; see man/man1/ravel-pairs.1. */
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "ravel/known_filter.h"
#include "stream/msgpack_util.h"
#include "ravel/ravel_data.h"
#include "ravel/ravel_options.h"
#include "ravel/ravel_plan.h"
#include "ravel/ravel_query.h"
#include "ravel/ravel_record.h"
#include "ravel/ravel_sample.h"
#include "stream/records.h"
#include "base/sha256.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ data dir */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --data, $RAVEL_DIR, the installed copy, then bin/../data/ravel beside
 * the executable (a build in the repository). */
static char *find_data_dir(const char *given)
{
    if (given) {
        if (!is_dir(given)) hd_die("%s: no such directory", given);
        return hd_strdup(given);
    }
    const char *env = getenv("RAVEL_DIR");
    if (env && *env) {
        if (!is_dir(env)) hd_die("%s (from RAVEL_DIR): no such directory", env);
        return hd_strdup(env);
    }
    if (is_dir(HD_DATADIR "/ravel")) return hd_strdup(HD_DATADIR "/ravel");
    /* a build tree (bin/../data/ravel), or an install under another prefix
     * than the one compiled in (PREFIX/bin/../share/hyperdas/ravel) */
    static const char *const beside[] = {"../data/ravel", "../share/hyperdas/ravel"};
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX + 32];
        if (hd_exe_relative(beside[i], path, sizeof path) == 0 && is_dir(path)) return hd_strdup(path);
    }
    hd_die("no RAVEL data directory found (tried $RAVEL_DIR, %s/ravel, bin/../data/ravel); use --data DIR",
           HD_DATADIR);
}

/* ------------------------------------------------------------ the plan */

typedef struct {
    RavelDomain *d;
    int targets[MAX_ITEMS];
    int n_targets;
    int isolate[MAX_ITEMS];  /* isolation candidates (A excluded per target) */
    int n_isolate;
} DomainPlan;

static void list_valid(const RavelDomain *d, char *out, size_t size)
{
    out[0] = 0;
    for (int a = 0; a < d->n_attributes; a++) {
        if (!d->attributes[a].has_values) continue;
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? ", " : "", d->attributes[a].name);
    }
}

/* Targets and isolation attributes of one domain, in canonical order. */
static void plan_attributes(DomainPlan *dp, const char *const *names, int n_names, int *used,
                            int *out, int *n_out)
{
    const RavelDomain *d = dp->d;
    *n_out = 0;
    for (int a = 0; a < d->n_attributes; a++) {
        if (!d->attributes[a].has_values) continue;
        int want = n_names == 0;
        for (int i = 0; i < n_names; i++)
            if (strcmp(names[i], d->attributes[a].name) == 0) {
                want = 1;
                used[i] = 1;
            }
        if (want) out[(*n_out)++] = a;
    }
}

static void check_names(DomainPlan *plans, int n_plans, const char *const *names, int n_names,
                        const int *used, const char *option)
{
    for (int i = 0; i < n_names; i++) {
        if (used[i]) continue;
        char valid[1024] = "", one[512];
        for (int p = 0; p < n_plans; p++) {
            list_valid(plans[p].d, one, sizeof one);
            size_t len = strlen(valid);
            snprintf(valid + len, sizeof valid - len, "%s%s: %s", p ? "; " : "", plans[p].d->name, one);
        }
        int a = -1;
        for (int p = 0; p < n_plans && a < 0; p++) a = ravel_attribute_index(plans[p].d, names[i]);
        if (a >= 0)
            ravel_bad_name("%s: attribute '%s' has no values and cannot be used (valid: %s)", option, names[i], valid);
        ravel_bad_name("%s: unknown attribute '%s' (valid: %s)", option, names[i], valid);
    }
}

static long long count_for(const Options *o, const char *attribute)
{
    for (int i = 0; i < o->n_n_attr; i++)
        if (strcmp(o->n_attr[i].name, attribute) == 0) return o->n_attr[i].n;
    return o->n;
}

/* ------------------------------------------------------------ output */

typedef struct {
    const Options *o;
    RecordWriter *w;
    KnownFilter *filter;
    const RavelDomain *d;
    const char *split;
    const char *split_type;
} Emitter;

static int emit_pair(void *ctx, const RavelDraw *r, const RavelPair *p, long long index)
{
    Emitter *e = ctx;
    RavelPairContext pc = {e->split, e->split_type, e->filter != NULL, e->o->seed};
    ravel_pair_pack(record_writer_packer(e->w), e->d, r, p, &pc, index);
    return record_writer_end_record(e->w);
}

/* The HyperDAS filter rule (hyperdas(7) 10.6): the verification prompt must be
 * known-correct with the record's label; --filter-strict also asks for the
 * base prompt (with base_label) and an attribute source prompt (with
 * source_label).  The side that failed tells --refill what to redraw. */
static int accept_pair(void *ctx, const RavelDraw *r, const RavelPair *p)
{
    Emitter *e = ctx;
    int source_side = r->kind == RAVEL_CAUSAL;   /* causal verify = base template + e2 */
    if (!known_filter_correct(e->filter, p->verify_input, p->label))
        return source_side ? RAVEL_DROP_SOURCE : RAVEL_DROP_BASE;
    if (e->o->filter_strict) {
        if (!known_filter_correct(e->filter, p->base_input, p->base_label)) return RAVEL_DROP_BASE;
        if (p->source_label && !known_filter_correct(e->filter, p->source_input, p->source_label))
            return RAVEL_DROP_SOURCE;
    }
    return RAVEL_KEEP;
}

static int known_correct(void *ctx, const char *prompt, const char *answer)
{
    Emitter *e = ctx;
    return known_filter_correct(e->filter, prompt, answer);
}

static int emit_query(void *ctx, const RavelQuery *q)
{
    Emitter *e = ctx;
    ravel_query_pack(record_writer_packer(e->w), q);
    return record_writer_end_record(e->w);
}

static void pack_str_array(msgpack_packer *pk, const RavelDomain *d, const int *attrs, int n)
{
    msgpack_pack_array(pk, n);
    for (int i = 0; i < n; i++) mp_pack_str(pk, d->attributes[attrs[i]].name);
}

/* a count, or "all" for a negative one */
static void pack_count(msgpack_packer *pk, long long n)
{
    if (n < 0) mp_pack_str(pk, "all");
    else msgpack_pack_int64(pk, n);
}

static void pack_header(RecordWriter *w, const Options *o, DomainPlan *plans, int n_plans, KnownFilter *filter)
{
    int n_inputs = filter ? known_filter_n_headers(filter) : 0;
    /* a domain split by the hash records its fractions; RAVEL's five,
     * which have split files, keep the header they always had */
    int hashed = 0;
    for (int i = 0; i < n_plans; i++)
        hashed |= !plans[i].d->present[RAVEL_FILE_ENTITY_TO_SPLIT] || !plans[i].d->present[RAVEL_FILE_PROMPT_TO_SPLIT];
    MapWriter h, sub;
    header_begin(&h, record_writer_packer(w), o->queries ? "queries" : "pairs",
                 filter ? known_filter_headers(filter) : NULL, n_inputs);
    map_str(&h, "scheme", "hyperdas");
    map_str(&h, "sampling", "fnv1a64-splitmix64-xoshiro256** v1");
    msgpack_packer *pk = map_key(&h, "domains");
    msgpack_pack_array(pk, n_plans);
    for (int i = 0; i < n_plans; i++) mp_pack_str(pk, plans[i].d->name);
    map_begin(&sub, map_key(&h, "attributes"));
    for (int i = 0; i < n_plans; i++)
        pack_str_array(map_key(&sub, plans[i].d->name), plans[i].d, plans[i].targets, plans[i].n_targets);
    map_end(&sub);
    map_begin(&sub, map_key(&h, "isolate_attributes"));
    for (int i = 0; i < n_plans; i++)
        pack_str_array(map_key(&sub, plans[i].d->name), plans[i].d, plans[i].isolate, plans[i].n_isolate);
    map_end(&sub);
    pk = map_key(&h, "splits");
    int ns = 0;
    for (int s = 0; s < RAVEL_N_SPLITS; s++) ns += o->split_wanted[s];
    msgpack_pack_array(pk, ns);
    for (int s = 0; s < RAVEL_N_SPLITS; s++)
        if (o->split_wanted[s]) mp_pack_str(pk, ravel_split_name(s));
    map_str(&h, "split_type", ravel_split_type_name(o->split_type));
    map_bool(&h, "val_as_test", o->val_as_test);
    map_str(&h, "prompts", ravel_prompts_name(o->prompts));
    pack_count(map_key(&h, "n"), o->n);
    map_begin(&sub, map_key(&h, "n_attribute"));
    for (int i = 0; i < o->n_n_attr; i++) pack_count(map_key(&sub, o->n_attr[i].name), o->n_attr[i].n);
    map_end(&sub);
    pk = map_key(&h, "iso_ratio");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int64(pk, o->iso_p);
    msgpack_pack_int64(pk, o->iso_q);
    map_bool(&h, "iso_require_diff_target", o->iso_require_diff_target);
    map_uint64(&h, "seed", o->seed);
    /* The data files by name and checksum (not by path, so that the same
     * data gives the same header wherever it is installed); nil for an
     * optional file the domain does not have. */
    map_begin(&sub, map_key(&h, "data_files"));
    for (int i = 0; i < n_plans; i++)
        for (int f = 0; f < RAVEL_N_FILES; f++) {
            char name[256];
            ravel_file_name(plans[i].d->name, f, name, sizeof name);
            map_str(&sub, name, plans[i].d->present[f] ? plans[i].d->sha256[f] : NULL);
        }
    map_end(&sub);
    if (hashed) {
        map_begin(&sub, map_key(&h, "hash_split"));
        map_double(&sub, "val", o->hash.val);
        map_double(&sub, "test", o->hash.test);
        map_end(&sub);
    }
    if (!filter) {
        msgpack_pack_nil(map_key(&h, "filter"));
    } else {
        char sum[65];
        int have_sum = strcmp(o->filter_path, "-") != 0 && sha256_file_hex(o->filter_path, sum) == 0;
        map_begin(&sub, map_key(&h, "filter"));
        map_str(&sub, "file", o->filter_path);
        map_str(&sub, "sha256", have_sum ? sum : NULL);
        map_str(&sub, "model", known_filter_model(filter));
        map_int64(&sub, "known", known_filter_records(filter));
        map_int64(&sub, "correct", known_filter_n_correct(filter));
        map_bool(&sub, "strict", o->filter_strict);
        map_bool(&sub, "refill", o->refill);
        map_bool(&sub, "from_known", o->from_known);
        if (o->known_partners) map_bool(&sub, "known_partners", 1);
        map_end(&sub);
    }
    map_bool(&h, "filtered", filter != NULL);
    if (map_end(&h) < 0 || record_writer_end_record(w) < 0) hd_die("%s", hd_last_error());
}

/* ------------------------------------------------------------ running */

static void count_line(const RavelGroup *g, const char *split, const RavelGroupCount *c)
{
    const RavelDomain *d = g->p->d;
    printf("%s\t%s\t%s\t%s\t%s\t%d\t%d\t%lld\t%lld\t%lld\n", d->name, split, d->attributes[g->target].name,
           ravel_kind_name(g->kind), d->attributes[g->queried].name, g->n_ent, g->n_base_templates,
           g->n_base_prompts, g->n_pairs, c->kept);
}

/* --from-known: a group that ends short is a warning (the run goes on:
 * one attribute the model hardly knows must not sink the others); --stats
 * adds what the records rest on, so that their diversity can be judged. */
static void known_report(const Options *o, const RavelGroup *g, const char *split, const RavelGroupCount *c,
                         const RavelKnownStats *ks)
{
    const RavelDomain *d = g->p->d;
    char group[512];
    snprintf(group, sizeof group, "%s/%s/%s/%s/%s", d->name, split, d->attributes[g->target].name,
             ravel_kind_name(g->kind), d->attributes[g->queried].name);
    if (c->wanted >= 0 && c->kept < c->wanted)
        hd_warn("%s: only %lld of %lld records: %lld known verification prompts", group, c->kept, c->wanted,
                ks->cells);
    if (o->stats)
        fprintf(stderr,
                "%s: %s: kept %lld; known prompts %lld (used %lld, %lld pass%s); entities base %d source %d; "
                "templates base %d source %d\n",
                hd_progname, group, c->kept, ks->cells, ks->cells_used, ks->passes, ks->passes == 1 ? "" : "es",
                ks->base_entities, ks->source_entities, ks->base_templates, ks->source_templates);
}

/* One group: set up, check it can produce, generate. */
static void run_group(const Options *o, Emitter *em, const RavelPools *pools, RavelKind kind, int target,
                      int queried, int exhaustive, long long wanted, long long *index, RavelGroupCount *count)
{
    RavelGroup g;
    if (ravel_group_init(&g, pools, kind, target, queried, o->iso_require_diff_target, o->seed) < 0)
        hd_die("%s", hd_last_error());
    if (!o->count_only && !o->from_known && g.n_pairs == 0 && wanted != 0) {
        const RavelDomain *d = pools->d;
        hd_die("%s/%s/%s/%s/%s: no valid pair exists (every entity of the pool has the same value, or no "
               "source entity fits --prompts)",
               d->name, em->split, d->attributes[target].name, ravel_kind_name(kind),
               d->attributes[g.queried].name);
    }
    count->wanted = wanted;
    count->drawn = count->kept = 0;
    if (o->count_only && !em->filter) {
        /* Without a filter every draw is kept: the counts follow from the
         * plan alone (the test suite checks them against real runs). */
        long long n = exhaustive ? g.n_base_prompts : (g.n_pairs ? wanted : 0);
        if (exhaustive && wanted >= 0 && wanted < n) n = wanted;
        count->drawn = count->kept = n;
    } else if (o->from_known) {
        RavelKnownStats ks;
        if (ravel_group_generate_known(&g, wanted, known_correct, o->known_partners, accept_pair, o->count_only ? NULL : emit_pair, em,
                                       index, count, &ks) < 0)
            hd_die("%s", hd_last_error());
        known_report(o, &g, em->split, count, &ks);
    } else if (!(o->count_only && g.n_pairs == 0) &&
        ravel_group_generate(&g, exhaustive, wanted, o->refill, em->filter ? accept_pair : NULL,
                             o->count_only ? NULL : emit_pair, em, index, count) < 0)
        hd_die("%s", hd_last_error());
    if (o->count_only) count_line(&g, em->split, count);
    ravel_group_free(&g);
}

/* --queries: the cells of every attribute a record could verify (the
 * targets and the isolation attributes), each attribute once. */
static void run_queries(const Options *o, Emitter *em, DomainPlan *dp, const RavelPools *pools)
{
    const RavelDomain *d = dp->d;
    for (int a = 0; a < d->n_attributes; a++) {
        int want = 0;
        for (int i = 0; i < dp->n_targets; i++) want |= dp->targets[i] == a;
        for (int i = 0; i < dp->n_isolate && o->iso_p > 0; i++) want |= dp->isolate[i] == a;
        if (!want || pools->n_templates[a] == 0) continue;
        long long cells = 0, n = count_for(o, d->attributes[a].name);
        if (ravel_queries_generate(pools, a, n, o->seed, emit_query, em, &cells) < 0)
            hd_die("%s", hd_last_error());
        if (o->stats)
            fprintf(stderr, "%s: %s/%s/%s: %lld of %lld verification prompts (%d templates)\n", hd_progname,
                    d->name, em->split, d->attributes[a].name, n < 0 || n > cells ? cells : n, cells,
                    pools->n_templates[a]);
    }
}

static void run_split(const Options *o, Emitter *em, DomainPlan *dp, int split)
{
    RavelSplitSpec spec = {split, o->split_type, o->val_as_test, o->prompts};
    RavelPools pools;
    if (ravel_pools_init(&pools, dp->d, &spec) < 0) hd_die("%s", hd_last_error());
    em->d = dp->d;
    em->split = ravel_split_name(split);
    if (o->queries) {
        run_queries(o, em, dp, &pools);
        ravel_pools_free(&pools);
        return;
    }
    for (int t = 0; t < dp->n_targets; t++) {
        int a = dp->targets[t];
        long long n = count_for(o, dp->d->attributes[a].name);
        int iso[MAX_ITEMS], n_iso = 0;
        for (int i = 0; i < dp->n_isolate; i++)
            if (dp->isolate[i] != a && o->iso_p > 0) iso[n_iso++] = dp->isolate[i];
        long long index = 0;
        RavelGroupCount causal;
        run_group(o, em, &pools, RAVEL_CAUSAL, a, a, n < 0, ravel_causal_wanted(n, o->iso_p, o->iso_q), &index, &causal);
        long long basis = o->refill || o->from_known ? causal.kept : causal.drawn;
        index = 0;
        for (int i = 0; i < n_iso; i++) {
            /* Exhaustive counts need B's available base prompts: a probe
             * group gives them without drawing anything. */
            long long available = 0;
            if (n < 0) {
                RavelGroup probe;
                if (ravel_group_init(&probe, &pools, RAVEL_ISOLATE, a, iso[i], o->iso_require_diff_target, o->seed) < 0)
                    hd_die("%s", hd_last_error());
                available = probe.n_base_prompts;
                ravel_group_free(&probe);
            }
            long long wanted = ravel_isolate_wanted(n, o->iso_p, o->iso_q, n_iso, basis, available);
            RavelGroupCount c;
            run_group(o, em, &pools, RAVEL_ISOLATE, a, iso[i], n < 0, wanted, &index, &c);
        }
    }
    ravel_pools_free(&pools);
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "ravel-pairs");
    Options o;
    ravel_options_parse(&o, argc, argv);
    char *dir = find_data_dir(o.data_dir);
    for (int i = 0; i < o.n_domains; i++) {
        char *valid = NULL;
        if (!ravel_domain_exists(dir, o.domains[i], &valid))
            ravel_bad_name("unknown domain '%s' (valid: %s): no ravel_%s_entity_attributes.json in %s",
                           o.domains[i], *valid ? valid : "none", o.domains[i], dir);
        free(valid);
    }

    DomainPlan plans[MAX_ITEMS];
    int used_attr[MAX_ITEMS] = {0}, used_iso[MAX_ITEMS] = {0};
    for (int i = 0; i < o.n_domains; i++) {
        memset(&plans[i], 0, sizeof plans[i]);
        plans[i].d = ravel_domain_load(dir, o.domains[i], &o.hash);
        if (!plans[i].d) hd_die("%s", hd_last_error());
        plan_attributes(&plans[i], o.attributes, o.n_attributes, used_attr, plans[i].targets, &plans[i].n_targets);
        plan_attributes(&plans[i], o.isolate, o.n_isolate, used_iso, plans[i].isolate, &plans[i].n_isolate);
    }
    check_names(plans, o.n_domains, o.attributes, o.n_attributes, used_attr, "--attribute");
    check_names(plans, o.n_domains, o.isolate, o.n_isolate, used_iso, "--isolate");
    int used_n[MAX_ITEMS] = {0};
    const char *n_names[MAX_ITEMS];
    for (int i = 0; i < o.n_n_attr; i++) n_names[i] = o.n_attr[i].name;
    for (int i = 0; i < o.n_domains; i++) {
        int dummy[MAX_ITEMS], nd;
        plan_attributes(&plans[i], n_names, o.n_n_attr, used_n, dummy, &nd);
    }
    check_names(plans, o.n_domains, n_names, o.n_n_attr, used_n, "-n");
    for (int i = 0; i < o.n_domains; i++)
        if (plans[i].n_targets == 0)
            ravel_bad_name("--attribute names no attribute of domain %s", plans[i].d->name);

    KnownFilter *filter = NULL;
    if (o.filter_path && !(filter = known_filter_load(o.filter_path))) hd_die("%s", hd_last_error());

    Emitter em = {.o = &o, .filter = filter, .split_type = ravel_split_type_name(o.split_type)};
    if (o.count_only) {
        printf("# domain\tsplit\ttarget\tkind\tqueried\tentities\ttemplates\tbase_prompts\tpairs\temit\n");
    } else {
        em.w = record_writer_open(o.output, o.gzip);
        if (!em.w) hd_die("%s", hd_last_error());
        pack_header(em.w, &o, plans, o.n_domains, filter);
    }
    for (int i = 0; i < o.n_domains; i++)
        for (int s = 0; s < RAVEL_N_SPLITS; s++)
            if (o.split_wanted[s]) run_split(&o, &em, &plans[i], s);
    if (em.w && record_writer_close(em.w) < 0) hd_die("%s", hd_last_error());
    if (o.count_only && fflush(stdout) != 0) hd_die("stdout: write error");

    for (int i = 0; i < o.n_domains; i++) ravel_domain_free(plans[i].d);
    ravel_options_free(&o);
    known_filter_free(filter);
    free(dir);
    return 0;
}
