/* The RAVEL benchmark files of one domain (spec/ravel.md section 1),
 * loaded, validated and put into canonical order.
 *
 * Five JSON files per domain D:
 *   ravel_D_entity_attributes.json    {entity: {attribute: value}}
 *   ravel_D_attribute_to_prompts.json {attribute: [template, ...]}
 *   ravel_D_entity_to_split.json      {entity: "train"|"val"|"test"}
 *   ravel_D_prompt_to_split.json      {template: "train"|"val"|"test"}
 *   wikipedia_D_entity_prompts.json   {template: {"entity": name|null, "split": s}}
 *
 * Canonical order (spec section 6.1): entities, attributes, templates and
 * wiki templates are sorted by byte-wise comparison of their UTF-8 bytes
 * (strcmp), never by file order, so that sampling depends only on the
 * content of the files.  Every string is an opaque byte string. */
#ifndef HD_RAVEL_DATA_H
#define HD_RAVEL_DATA_H

#include <jansson.h>

enum { RAVEL_TRAIN = 0, RAVEL_VAL = 1, RAVEL_TEST = 2, RAVEL_N_SPLITS = 3 };

/* "train", "val", "test"; parse returns -1 for anything else. */
const char *ravel_split_name(int split);
int ravel_split_parse(const char *s);

#define RAVEL_N_DOMAINS 5
extern const char *const ravel_domain_names[RAVEL_N_DOMAINS];
/* 1 when name is one of the five RAVEL domains. */
int ravel_domain_known(const char *name);

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
    char *paths[RAVEL_N_FILES];  /* as loaded, for messages */
    char sha256[RAVEL_N_FILES][65];
} RavelDomain;

/* Loads the five files of `domain` from dir.  NULL on error, with
 * hd_last_error() = "PATH: what" (jansson errors carry line and column). */
RavelDomain *ravel_domain_load(const char *dir, const char *domain);

/* Builds a domain from five already parsed JSON documents (borrowed);
 * names[] are used in messages.  This is the part the fuzzer drives. */
RavelDomain *ravel_domain_from_json(const char *domain, json_t *const docs[RAVEL_N_FILES],
                                    const char *const names[RAVEL_N_FILES]);

void ravel_domain_free(RavelDomain *d);

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
