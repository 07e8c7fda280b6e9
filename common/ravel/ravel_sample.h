/* Counterfactual pairs from RAVEL: the HyperDAS procedure of hyperdas(7)
 * 10.2-10.5 with the deterministic sampling of 10.8.
 *
 * Pools (hyperdas(7) 10.4).  One output split (train, val or test) and a split type:
 *   context  templates (attribute and wiki) of that split, all entities;
 *   entity   entities of that split, all templates;
 *   both     entities and templates of that split.
 * With val_as_test the test pools are val ∪ test (HyperDAS's "test").
 * Wiki templates with a null entity are never used (as in HyperDAS).
 *
 * Groups.  Sampling is organised in groups (domain, split, target attribute
 * A, kind, queried attribute B; B = A for causal).  Each group owns one
 * generator seeded from FNV-1a-64(seed LE64 \0 domain \0 split \0 A \0 kind
 * \0 B-or-"-"), so the records of one group never depend on another group's
 * size.  A group's entity pool is the split's entities that have a value
 * for A and for B (this drops nobel's all-empty entities, hyperdas(7) 14.31).  A pair
 * (e1, e2) is valid when value(e1, B) != value(e2, B), and additionally
 *   value(e1, A) != value(e2, A)  with require_diff_target (isolation), and
 *   e2 has a wiki template        with prompts = wikipedia.
 *
 * Two ways to draw:
 *   sampled (HyperDAS, hyperdas(7) 10.2): with replacement; per record
 *     e1, e2 (both redrawn until valid), source attribute, base template,
 *     source template.
 *   exhaustive ("all that exist"): every base prompt (e1, base template)
 *     whose e1 has at least one valid partner is used at most once, in a
 *     random order (Fisher-Yates on the group stream); per record
 *     base prompt, e2 (redrawn until valid), source attribute, source
 *     template.
 * The source attribute is uniform over the attributes with templates in
 * the split, plus "wikipedia" when e2 has wiki templates and prompts =
 * both (hyperdas(7) 10.3); prompts = ravel never draws wikipedia, prompts = wikipedia
 * always uses it (no draw).  The isolation instruction always names A (the
 * HyperDAS city recipe: one target per call), so it needs no draw. */
#ifndef HD_RAVEL_SAMPLE_H
#define HD_RAVEL_SAMPLE_H

#include "ravel/ravel_data.h"
#include "base/rng.h"

#include <stdint.h>

typedef enum { RAVEL_SPLIT_CONTEXT, RAVEL_SPLIT_ENTITY, RAVEL_SPLIT_BOTH } RavelSplitType;
typedef enum { RAVEL_PROMPTS_RAVEL, RAVEL_PROMPTS_WIKIPEDIA, RAVEL_PROMPTS_BOTH } RavelPromptKinds;
typedef enum { RAVEL_CAUSAL, RAVEL_ISOLATE } RavelKind;

const char *ravel_split_type_name(RavelSplitType t);
int ravel_split_type_parse(const char *s);        /* -1 if unknown */
const char *ravel_prompts_name(RavelPromptKinds p);
int ravel_prompts_parse(const char *s);           /* -1 if unknown */
const char *ravel_kind_name(RavelKind k);

/* Rejection loops give up after this many tries (hyperdas(7) 10.8). */
#define RAVEL_MAX_TRIES 1000000

typedef struct {
    int split;                 /* RAVEL_TRAIN, RAVEL_VAL or RAVEL_TEST */
    RavelSplitType split_type;
    int val_as_test;
    RavelPromptKinds prompts;
} RavelSplitSpec;

/* 1 when an item of split `item` belongs to the output split. */
int ravel_in_split(const RavelSplitSpec *s, int item);
/* The name the records carry: "train", "val" or "test". */
const char *ravel_output_split_name(const RavelSplitSpec *s);

typedef struct {
    const RavelDomain *d;
    RavelSplitSpec spec;
    int *entities;             /* the split's entity pool, canonical order */
    int n_entities;
    int **templates;           /* per attribute: template pool */
    int *n_templates;
    int **wiki;                /* per entity: wiki template pool */
    int *n_wiki;
    int *source_attributes;    /* attributes with a non-empty template pool */
    int n_source_attributes;
} RavelPools;

/* -1 (hd_fail) when the split has no entity or no template at all. */
int ravel_pools_init(RavelPools *p, const RavelDomain *d, const RavelSplitSpec *spec);
void ravel_pools_free(RavelPools *p);

/* One drawn record, as indices into the domain. */
typedef struct {
    RavelKind kind;
    int target, queried;
    int e1, e2;                /* entities */
    int base_template;         /* index into d->templates */
    int source_wiki;           /* 1: source_template indexes d->wiki */
    int source_template;
    int source_attribute;      /* -1 for wiki sources */
} RavelDraw;

typedef struct {
    const RavelPools *p;
    RavelKind kind;
    int target, queried;
    int require_diff_target;
    uint64_t stream_key;
    Rng rng;
    int *ent;                  /* entity pool of the group (values for A and B) */
    int n_ent;
    const int *base_templates;
    int n_base_templates;
    /* Counts of what exists (what --count-only reports). */
    int *valid_e1;             /* e1 with at least one valid partner */
    int n_valid_e1;
    long long n_base_prompts;  /* n_valid_e1 * n_base_templates */
    long long n_pairs;         /* distinct valid (e1, e2, base template) */
    /* Exhaustive drawing: permutation of the base prompts, filled lazily. */
    uint32_t *perm;
    long long next;
} RavelGroup;

/* The group's stream key (hyperdas(7) 10.8). */
uint64_t ravel_stream_key(uint64_t seed, const char *domain, const char *split, const char *target,
                          const char *kind, const char *queried);

/* Sets the group up and counts what exists.  -1 (hd_fail) when A or B has
 * no templates in the split or no values. */
int ravel_group_init(RavelGroup *g, const RavelPools *p, RavelKind kind, int target, int queried,
                     int require_diff_target, uint64_t seed);
void ravel_group_free(RavelGroup *g);
/* 1 when (e1, e2) may be a pair of the group: they differ in the queried
 * attribute (and the target when required) and e2 fits --prompts. */
int ravel_group_pair_valid(const RavelGroup *g, int e1, int e2);
/* hd_fail("domain/split/target/kind/queried: what"); returns -1. */
int ravel_group_fail(const RavelGroup *g, const char *what);

/* A sampled draw.  -1 (hd_fail) when the rejection loop gives up or no
 * valid pair exists. */
int ravel_group_draw(RavelGroup *g, RavelDraw *out);
/* The next base prompt of the exhaustive order with a fresh source:
 * 1 drawn, 0 all base prompts used, -1 error. */
int ravel_group_next(RavelGroup *g, RavelDraw *out);
/* Redraws the source side (e2 and the source template) of a draw, keeping
 * its base prompt: used by --refill.  -1 on error. */
int ravel_group_redraw_source(RavelGroup *g, RavelDraw *io);
/* A draw built around one verification prompt (--from-known): the base
 * template and the entity whose prompt the filter checks, the source entity
 * e2 for causal records, the base entity e1 for isolation ones; the other
 * entity and the source template are drawn.  -1 (hd_fail) when no valid
 * partner exists. */
int ravel_group_draw_around(RavelGroup *g, int base_template, int verify_entity, RavelDraw *out);
/* ok[e] (one byte per entity of the domain) = 1 when entity e can stand
 * on the verified side of a record of g: it is in the pool and has at
 * least one valid partner. */
void ravel_group_verify_entities(const RavelGroup *g, unsigned char *ok);

/* The record texts of a draw (hyperdas-records(5) PAIR).  Strings that are not
 * owned point into the domain. */
typedef struct {
    const char *base_entity, *source_entity;
    const char *base_template, *source_template;
    const char *source_template_attribute;    /* NULL for wiki */
    char *base_input, *source_input;          /* owned */
    size_t base_span[2], source_span[2];      /* byte offsets [start, end) of the entity */
    const char *label, *base_label, *inv_label;
    const char *source_label;                 /* NULL: wiki, or no value */
    const char *answer_sep;
    char *verify_input;                       /* owned */
    char *instruction;                        /* owned */
} RavelPair;

void ravel_pair_fill(RavelPair *out, const RavelDomain *d, const RavelDraw *draw);
void ravel_pair_clear(RavelPair *p);

/* template with its single "%s" replaced by entity (hd_malloc); *slot gets
 * the byte offset of the entity. */
char *ravel_fill_template(const char *templ, const char *entity, size_t *slot);
/* "" when text ends in a space, '"', '\'' or '(', else " " (hyperdas(7) 2.2). */
const char *ravel_answer_sep(const char *text);

#endif
