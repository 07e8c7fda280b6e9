/* ravel-pairs' command line: the options, their checks, --help.  The
 * tool itself (tools/ravel-pairs.c) plans and draws; the domain names are
 * checked there, against the data directory. */
#ifndef HD_RAVEL_OPTIONS_H
#define HD_RAVEL_OPTIONS_H

#include <stdint.h>

#include "ravel/ravel_data.h"
#include "ravel/ravel_sample.h"

#define MAX_ITEMS 64

typedef struct {
    const char *name;
    long long n;            /* -1: all */
} AttrCount;

typedef struct {
    const char *data_dir;
    const char *domains[MAX_ITEMS];
    int n_domains;
    const char *attributes[MAX_ITEMS];
    int n_attributes;
    const char *isolate[MAX_ITEMS];
    int n_isolate;
    int split_wanted[RAVEL_N_SPLITS];
    RavelSplitType split_type;
    int val_as_test;
    RavelPromptKinds prompts;
    RavelHashSplit hash;    /* --val-frac, --test-frac */
    long long n;            /* -1: all that exist */
    AttrCount n_attr[MAX_ITEMS];
    int n_n_attr;
    long long iso_p, iso_q;
    int iso_require_diff_target;
    uint64_t seed;
    const char *filter_path;
    int filter_strict;
    int refill;
    int from_known;
    int known_partners;     /* --known-partners */
    int queries;
    int stats;
    int count_only;
    const char *output;
    int gzip;
} Options;

/* Parses argv into o; --help and --version print and exit 0, a bad
 * option is one line and exit 2. */
void ravel_options_parse(Options *o, int argc, char **argv);
void ravel_options_free(Options *o);

/* One line and exit status 2: a name the user typed is not valid. */
__attribute__((noreturn, format(printf, 1, 2))) void ravel_bad_name(const char *fmt, ...);

#endif
