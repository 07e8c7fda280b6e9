/* The RAVEL benchmark files of one domain, loaded, validated and put into
 * canonical order.  Any domain whose files follow RAVEL's naming loads the
 * same way (a concept of one's own: data/country is an example).
 *
 * Files per domain D (the first two required, the others optional):
 *   ravel_D_entity_attributes.json    {entity: {attribute: value}}
 *   ravel_D_attribute_to_prompts.json {attribute: [template, ...]}
 *   ravel_D_entity_to_split.json      {entity: "train"|"val"|"test"}
 *   ravel_D_prompt_to_split.json      {template: "train"|"val"|"test"}
 *   wikipedia_D_entity_prompts.json   {template: {"entity": name|null, "split": s}}
 * Without a split file its items are split by the hash rule of
 * ravel_hash_split (below); without the Wikipedia file there are no wiki
 * templates.
 *
 * Validation, for every domain: every entity has the same attribute keys
 * (an empty string is "no value", as RAVEL writes it); an attribute with
 * values has templates, and at least two distinct values (one value can
 * never be changed by a counterfactual); every template holds exactly one
 * "%s".  RAVEL's five domains pass all of it (occupation's Gender Bias has
 * templates and no values at all: it loads, and cannot be a target).
 *
 * Canonical order: entities, attributes, templates and wiki templates are
 * sorted by byte-wise comparison of their UTF-8 bytes (strcmp), never by
 * file order, so that sampling depends only on the content of the files.
 * Every string is an opaque byte string. */
#ifndef HD_RAVEL_DATA_H
#define HD_RAVEL_DATA_H

#include <jansson.h>

enum { RAVEL_TRAIN = 0, RAVEL_VAL = 1, RAVEL_TEST = 2, RAVEL_N_SPLITS = 3 };

/* "train", "val", "test"; parse returns -1 for anything else. */
const char *ravel_split_name(int split);
int ravel_split_parse(const char *s);

enum {
    RAVEL_FILE_ENTITY_ATTRIBUTES,
    RAVEL_FILE_ATTRIBUTE_TO_PROMPTS,
    RAVEL_FILE_ENTITY_TO_SPLIT,
    RAVEL_FILE_PROMPT_TO_SPLIT,
    RAVEL_FILE_WIKIPEDIA,
    RAVEL_N_FILES
};
/* The file name (no directory) of one of the five files of a domain, in out. */
void ravel_file_name(const char *domain, int file, char *out, size_t size);
/* 1 for the files a domain may leave out (the split files, Wikipedia). */
int ravel_file_optional(int file);

/* The hash split of a domain without split files.  Entities (all of them)
 * and each attribute's templates are ranked by FNV-1a-64 of their UTF-8
 * bytes (ties, which take a collision, by strcmp); of n items the first
 * n_test are test, the next n_val val, the rest train, where
 *   n_test = round(n * test), n_val = round(n * val)  (halves up),
 * each at least 1 when its fraction is above 0, and val then test cut
 * back so that train keeps at least one item.  The split depends only on
 * the names and the fractions, never on file order. */
typedef struct {
    double val, test;    /* fractions in [0, 1), val + test < 1 */
} RavelHashSplit;
#define RAVEL_HASH_VAL_DEFAULT 0.2
#define RAVEL_HASH_TEST_DEFAULT 0.2
/* How many of n items go to val and test under hs (the rule above). */
void ravel_hash_split_counts(int n, const RavelHashSplit *hs, int *n_val, int *n_test);

typedef struct {
    char *name;
    int split;
    /* Per attribute of the domain: the value, or NULL when the entity has
     * none (an attribute without values, such as occupation Gender Bias,
     * or an empty string in the file: the two are the same to sampling). */
    char **values;
    /* Per attribute: rank of the value among the attribute's distinct
     * non-empty values in canonical order, -1 when there is no value.
     * Comparing ids is comparing values. */
    int *value_ids;
    /* Wiki templates whose "entity" is this entity, ascending indices. */
    int *wiki;
    int n_wiki;
} RavelEntity;

typedef struct {
    char *name;
    int has_values;   /* some entity has a non-empty value */
    int n_values;     /* distinct non-empty values */
    int *templates;   /* its templates, ascending indices (= canonical order) */
    int n_templates;
} RavelAttribute;

typedef struct {
    char *text;       /* exactly one "%s" */
    int attribute;
    int split;
} RavelTemplate;

typedef struct {
    char *text;       /* exactly one "%s" */
    int entity;       /* -1: the file says null (generic sentence) */
    int split;
} RavelWiki;

typedef struct {
    char *name;                  /* the domain */
    RavelAttribute *attributes;  /* union of the prompt file's keys and the entities' keys */
    int n_attributes;
    RavelEntity *entities;
    int n_entities;
    RavelTemplate *templates;
    int n_templates;
    RavelWiki *wiki;
    int n_wiki;
    /* As loaded, for messages; a split file that is absent names what
     * took its place ("PATH-of-the-entity-file (hash split)"). */
    char *paths[RAVEL_N_FILES];
    int present[RAVEL_N_FILES];
    char sha256[RAVEL_N_FILES][65];   /* "" for an absent file */
    RavelHashSplit hash;              /* the fractions, when a split file is absent */
} RavelDomain;

/* 1 when dir holds the entity file of `domain` (the domain exists there).
 * Otherwise 0, and *valid gets the domains dir does hold, ", " separated
 * and sorted (hd_malloc'd, "" when none). */
int ravel_domain_exists(const char *dir, const char *domain, char **valid);

/* Loads the files of `domain` from dir; hash (NULL: the defaults) splits a
 * domain without split files.  NULL on error, with hd_last_error() =
 * "PATH: what" (jansson errors carry line and column). */
RavelDomain *ravel_domain_load(const char *dir, const char *domain, const RavelHashSplit *hash);

/* Builds a domain from already parsed JSON documents (borrowed; NULL for
 * an optional file that is absent); names[] are used in messages.  This
 * is the part the fuzzer drives. */
RavelDomain *ravel_domain_from_json(const char *domain, json_t *const docs[RAVEL_N_FILES],
                                    const char *const names[RAVEL_N_FILES], const RavelHashSplit *hash);

void ravel_domain_free(RavelDomain *d);

/* The hash split (common/ravel/ravel_split.c): sets the split of every entity,
 * or of every template, of d by the rule of RavelHashSplit. */
void ravel_hash_split_entities(RavelDomain *d, const RavelHashSplit *hs);
void ravel_hash_split_templates(RavelDomain *d, const RavelHashSplit *hs);

/* Index by exact name (binary search over the canonical order), or -1. */
int ravel_attribute_index(const RavelDomain *d, const char *name);
int ravel_entity_index(const RavelDomain *d, const char *name);
int ravel_template_index(const RavelDomain *d, const char *text);

/* The value of an entity for an attribute, or NULL. */
static inline const char *ravel_value(const RavelDomain *d, int entity, int attribute)
{
    return d->entities[entity].values[attribute];
}

#endif
