/* hd-train's training and validation sets in its checkpoint directory:
 * spooled under a temporary name, checked, and only then renamed into
 * place, so that bad input never replaces the spool an earlier run (and its
 * --resume) relies on.  The checks: every input is a stream of the kind
 * expected (acts; pairs with --from-pairs), it held at least one acts
 * record, and the records were made by the model given. */
#ifndef HD_TRAIN_SPOOL_H
#define HD_TRAIN_SPOOL_H

#include "train/acts_set.h"
#include "base/outfile.h"
#include "model/target_model.h"

/* Before anything is loaded: every regular file among files[0..n) and val
 * is a stream of the kind expected (stream_kind_check_file); -1 naming the
 * first that is not. */
int train_spool_check_files(char **files, int n, const char *val, int from_pairs);

/* acts_set_build of files[0..n) (n == 0: stdin) into a temporary file next
 * to final_path, opened in *tmp (removed at exit unless published). */
ActsSet *train_spool_build(char **files, int n, const char *final_path, OutFile *tmp);

/* where names the inputs in messages ("stdin", the file, ...).  from_pairs:
 * the set was cached from pair records (its headers' inputs must be pairs
 * streams).  -1 with a one-line message. */
int train_spool_check(const ActsSet *set, const char *where, int from_pairs, const TargetModel *t);

/* Renames the temporary spool onto its final name; nothing to do when tmp
 * was never opened (a resumed run reusing its spool). */
int train_spool_publish(OutFile *tmp);

#endif
