#include "ravel/ravel_options.h"
#include "base/cli.h"
#include "base/error.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf(
        "Usage: ravel-pairs [OPTION]...\n"
        "Turn the RAVEL benchmark, or a domain in its format, into counterfactual pair\n"
        "records (HyperDAS procedure).\n"
        "\n"
        "  --data DIR               RAVEL JSON directory (default: $RAVEL_DIR, the installed\n"
        "                           data, or data/ravel next to the binary's bin/)\n"
        "  --domain LIST            RAVEL's city, nobel_prize_winner, occupation,\n"
        "                           physical_object, verb, or any D whose files are in DIR\n"
        "                           (ravel_D_entity_attributes.json and\n"
        "                           ravel_D_attribute_to_prompts.json; split and Wikipedia\n"
        "                           files optional); repeatable or comma list (default city)\n"
        "  --attribute LIST         target attributes (default: all with values)\n"
        "  --isolate LIST           isolation attributes (default: all others with values)\n"
        "  --split LIST             train, val, test; repeatable or comma list (default train)\n"
        "  --split-type TYPE        context (templates split, entities pooled; default),\n"
        "                           entity (entities split, templates pooled) or both\n"
        "  --val-as-test            the test pools are val + test (HyperDAS's 'test')\n"
        "  --val-frac F, --test-frac F  a domain without split files: the share of\n"
        "                           entities, and of each attribute's templates, in val\n"
        "                           and test, ranked by a hash of their names (default\n"
        "                           0.2 each; man ravel-pairs, CUSTOM DOMAINS)\n"
        "  --prompts KIND           source templates: ravel, wikipedia or both (default)\n"
        "  -n N|all|ATTR=N          records per target attribute, causal + isolation\n"
        "                           (default all: every base prompt once)\n"
        "  --iso-ratio P[:Q]        isolation : causal (default 1:1; 0 = causal only)\n"
        "  --iso-require-diff-target  isolation pairs must also differ in the target\n"
        "  --seed N                 64-bit seed (default 42)\n"
        "  --filter FILE            keep only pairs a model knows (stream of `known` records)\n"
        "  --filter-strict          also require the base and source prompts to be known\n"
        "  --refill                 with --filter: counts are of kept records (draws\n"
        "                           rejected by the filter are redrawn)\n"
        "  --from-known             with --filter: draw among the known verification\n"
        "                           prompts directly (each once per pass, partners drawn);\n"
        "                           counts are of kept records; a group with too few ends\n"
        "                           short with a warning\n"
        "  --known-partners         with --from-known --filter-strict: draw the partner\n"
        "                           entity and the source template among known prompts\n"
        "                           too (attribute templates only), instead of from the\n"
        "                           whole pool; for domains with thousands of entities\n"
        "  --queries                emit `query` records instead of pairs: the distinct\n"
        "                           verification prompts (template x entity) per attribute\n"
        "                           and split, for hd-filter to turn into `known` records;\n"
        "                           -n N asks a random N per attribute, all every one\n"
        "  --stats                  per group on stderr: kept, known prompts, distinct\n"
        "                           entities and templates (--from-known), or queries\n"
        "  --count-only             print the counts as a table, emit no records\n"
        "  -o, --output FILE        output file (default stdout; written atomically)\n"
        "  -z                       gzip the output\n"
        "  --help, --version\n");
}

void ravel_bad_name(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hd_warn("%s", msg);
    exit(2);
}

/* Copies of option values cut into items (argv itself must stay intact:
 * the header records it). */
static char *list_copies[4 * MAX_ITEMS];
static int n_list_copies;

/* Splits a comma list into items (pointers into a kept copy). */
static void add_list(const char **items, int *n, const char *arg, const char *option)
{
    if (n_list_copies >= 4 * MAX_ITEMS) hd_usage_error("%s: too many options", option);
    char *copy = list_copies[n_list_copies++] = hd_strdup(arg);
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (*n >= MAX_ITEMS) hd_usage_error("%s: too many items", option);
        items[(*n)++] = tok;
    }
}

static void parse_n(Options *o, const char *arg)
{
    const char *eq = strchr(arg, '=');
    const char *value = eq ? eq + 1 : arg;
    long long n = strcmp(value, "all") == 0 ? -1 : hd_cli_parse_count("-n", value);
    if (!eq) {
        o->n = n;
        return;
    }
    if (o->n_n_attr >= MAX_ITEMS) hd_usage_error("-n: too many attributes");
    o->n_attr[o->n_n_attr].name = hd_strndup(arg, (size_t)(eq - arg));
    o->n_attr[o->n_n_attr].n = n;
    o->n_n_attr++;
}

static void parse_ratio(Options *o, const char *arg)
{
    char *end;
    long long p = strtoll(arg, &end, 10), q = 1;
    if (end != arg && *end == ':') {
        const char *qs = end + 1;
        q = strtoll(qs, &end, 10);
        if (end == qs) q = -1;
    }
    if (end == arg || *end || p < 0 || q <= 0 || p > 1000000 || q > 1000000)
        hd_usage_error("--iso-ratio: expected P or P:Q with integers 0 <= P, 1 <= Q <= 1000000, got '%s'", arg);
    o->iso_p = p;
    o->iso_q = q;
}

static uint64_t parse_seed(const char *arg)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 0);
    if (errno || end == arg || *end || arg[0] == '-')
        hd_usage_error("--seed: expected a non-negative 64-bit integer, got '%s'", arg);
    return (uint64_t)v;
}

enum {
    OPT_DATA = 256, OPT_DOMAIN, OPT_ATTRIBUTE, OPT_ISOLATE, OPT_SPLIT, OPT_SPLIT_TYPE, OPT_VAL_AS_TEST,
    OPT_PROMPTS, OPT_ISO_RATIO, OPT_ISO_DIFF, OPT_SEED, OPT_FILTER, OPT_FILTER_STRICT, OPT_REFILL,
    OPT_COUNT_ONLY, OPT_FROM_KNOWN, OPT_QUERIES, OPT_STATS, OPT_HELP, OPT_VERSION, OPT_VAL_FRAC,
    OPT_TEST_FRAC, OPT_KNOWN_PARTNERS
};

static double parse_frac(const char *option, const char *arg)
{
    double v = hd_cli_parse_double(option, arg);
    if (!(v >= 0 && v < 1)) hd_usage_error("%s: expected a fraction 0 <= F < 1, got '%s'", option, arg);
    return v;
}

void ravel_options_parse(Options *o, int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"data", required_argument, 0, OPT_DATA},
        {"domain", required_argument, 0, OPT_DOMAIN},
        {"attribute", required_argument, 0, OPT_ATTRIBUTE},
        {"isolate", required_argument, 0, OPT_ISOLATE},
        {"split", required_argument, 0, OPT_SPLIT},
        {"split-type", required_argument, 0, OPT_SPLIT_TYPE},
        {"val-as-test", no_argument, 0, OPT_VAL_AS_TEST},
        {"val-frac", required_argument, 0, OPT_VAL_FRAC},
        {"test-frac", required_argument, 0, OPT_TEST_FRAC},
        {"prompts", required_argument, 0, OPT_PROMPTS},
        {"iso-ratio", required_argument, 0, OPT_ISO_RATIO},
        {"iso-require-diff-target", no_argument, 0, OPT_ISO_DIFF},
        {"seed", required_argument, 0, OPT_SEED},
        {"filter", required_argument, 0, OPT_FILTER},
        {"filter-strict", no_argument, 0, OPT_FILTER_STRICT},
        {"refill", no_argument, 0, OPT_REFILL},
        {"count-only", no_argument, 0, OPT_COUNT_ONLY},
        {"from-known", no_argument, 0, OPT_FROM_KNOWN},
        {"known-partners", no_argument, 0, OPT_KNOWN_PARTNERS},
        {"queries", no_argument, 0, OPT_QUERIES},
        {"stats", no_argument, 0, OPT_STATS},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, OPT_HELP},
        {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->split_type = RAVEL_SPLIT_CONTEXT;
    o->prompts = RAVEL_PROMPTS_BOTH;
    o->n = -1;
    o->iso_p = o->iso_q = 1;
    o->seed = 42;
    o->hash.val = RAVEL_HASH_VAL_DEFAULT;
    o->hash.test = RAVEL_HASH_TEST_DEFAULT;
    const char *splits[MAX_ITEMS];
    int n_splits = 0;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:o:z", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_DATA: o->data_dir = optarg; break;
        case OPT_DOMAIN: add_list(o->domains, &o->n_domains, optarg, "--domain"); break;
        case OPT_ATTRIBUTE: add_list(o->attributes, &o->n_attributes, optarg, "--attribute"); break;
        case OPT_ISOLATE: add_list(o->isolate, &o->n_isolate, optarg, "--isolate"); break;
        case OPT_SPLIT: add_list(splits, &n_splits, optarg, "--split"); break;
        case OPT_SPLIT_TYPE:
            if ((int)(o->split_type = ravel_split_type_parse(optarg)) < 0)
                hd_usage_error("--split-type: expected context, entity or both, got '%s'", optarg);
            break;
        case OPT_VAL_AS_TEST: o->val_as_test = 1; break;
        case OPT_VAL_FRAC: o->hash.val = parse_frac("--val-frac", optarg); break;
        case OPT_TEST_FRAC: o->hash.test = parse_frac("--test-frac", optarg); break;
        case OPT_PROMPTS:
            if ((int)(o->prompts = ravel_prompts_parse(optarg)) < 0)
                hd_usage_error("--prompts: expected ravel, wikipedia or both, got '%s'", optarg);
            break;
        case OPT_ISO_RATIO: parse_ratio(o, optarg); break;
        case OPT_ISO_DIFF: o->iso_require_diff_target = 1; break;
        case OPT_SEED: o->seed = parse_seed(optarg); break;
        case OPT_FILTER: o->filter_path = optarg; break;
        case OPT_FILTER_STRICT: o->filter_strict = 1; break;
        case OPT_REFILL: o->refill = 1; break;
        case OPT_COUNT_ONLY: o->count_only = 1; break;
        case OPT_FROM_KNOWN: o->from_known = 1; break;
        case OPT_KNOWN_PARTNERS: o->known_partners = 1; break;
        case OPT_QUERIES: o->queries = 1; break;
        case OPT_STATS: o->stats = 1; break;
        case 'n': parse_n(o, optarg); break;
        case 'o': o->output = optarg; break;
        case 'z': o->gzip = 1; break;
        case OPT_HELP: usage(); exit(0);
        case OPT_VERSION: hd_cli_print_version(); exit(0);
        case ':': hd_usage_error("option '%s' needs a value", argv[optind - 1]);
        default: hd_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) hd_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->n_domains == 0) o->domains[o->n_domains++] = "city";
    if (o->hash.val + o->hash.test >= 1)
        hd_usage_error("--val-frac + --test-frac must leave a share for train (%g + %g >= 1)", o->hash.val,
                       o->hash.test);
    for (int i = 0; i < o->n_domains; i++) {
        for (int j = 0; j < i; j++)
            if (strcmp(o->domains[i], o->domains[j]) == 0) hd_usage_error("--domain: '%s' given twice", o->domains[i]);
    }
    if (n_splits == 0) splits[n_splits++] = "train";
    for (int i = 0; i < n_splits; i++) {
        int s = ravel_split_parse(splits[i]);
        if (s < 0) ravel_bad_name("unknown split '%s' (valid: train, val, test)", splits[i]);
        o->split_wanted[s] = 1;
    }
    if (o->val_as_test && o->split_wanted[RAVEL_VAL])
        hd_usage_error("--val-as-test puts the val data into test; --split val cannot be used with it");
    if ((o->filter_strict || o->refill || o->from_known) && !o->filter_path)
        hd_usage_error("--filter-strict, --refill and --from-known need --filter");
    if (o->known_partners && !(o->from_known && o->filter_strict))
        hd_usage_error("--known-partners draws partners for the strict filter: add --from-known --filter-strict");
    if (o->known_partners && o->prompts == RAVEL_PROMPTS_WIKIPEDIA)
        hd_usage_error("--known-partners draws attribute source templates: not with --prompts wikipedia");
    if (o->refill && o->from_known) hd_usage_error("--refill and --from-known are two ways to draw: pick one");
    if (o->queries && (o->filter_path || o->count_only))
        hd_usage_error("--queries emits every verification prompt: no --filter or --count-only");
    if (o->count_only && (o->output || o->gzip)) hd_usage_error("--count-only prints text on stdout; no -o or -z");
}


void ravel_options_free(Options *o)
{
    for (int i = 0; i < o->n_n_attr; i++) free((char *)o->n_attr[i].name);
    for (int i = 0; i < n_list_copies; i++) free(list_copies[i]);
    n_list_copies = 0;
}
