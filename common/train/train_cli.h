/* hd-train's command line in one place: the option table, the defaults,
 * the usage text (hd-train --help; man/man1/hd-train.1 documents the same
 * options) and the checks that need no model.  --help and --version
 * print and exit; a bad option exits with status 2 (hd_usage_error). */
#ifndef HD_TRAIN_CLI_H
#define HD_TRAIN_CLI_H

#include "hypernet/hn_session.h"
#include "train/train_options.h"

typedef struct {
    TrainOptions o;          /* with the method's defaults filled in */
    TrainOptions as_given;   /* before them: what --resume must agree with */
    HnDevice device;         /* --device */
    int tf32;                /* --tf32 */
    char **files;            /* the ACTS operands */
    int n_files;
} TrainCli;

/* Parses argv of a run with `world` processes, this one `rank`. */
void train_cli_parse(TrainCli *cli, int argc, char **argv, int world, int rank);

/* The long options of the table (NULL-terminated), for checking the usage
 * text and the man page against it. */
const char *const *train_cli_long_options(void);
/* The usage text. */
const char *train_cli_usage(void);

#endif
