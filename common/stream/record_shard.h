/* --shard I/N: one of N independent runs of a stream tool (cache-acts,
 * hd-score) over the same input files, each taking one contiguous block of
 * the input's data records, so that `cat shard0 shard1 ...` holds the same
 * data records in the same order as the unsharded run.
 *
 * The blocks are cut only where the unsharded run starts a new batch: the
 * records of one batch run through the model together, left padded to the
 * batch's longest sequence, and the outputs depend on the company a record
 * keeps: cache-acts' fp32 states move in the last bits with the shapes of
 * the matrix products; hd-score's selection weights move by more (the
 * head's "self" row counts the padded base columns in its RoPE positions,
 * hyperdas(7) 3.5, as the reference does), and its record order is
 * mode by mode within a batch.  Cutting on
 * batch starts gives every shard the batches of the unsharded run, so the
 * concatenation is byte-identical to it (with the same --batch).
 *
 * So the unit of the split is the batch, not the record: with K units
 * (batch starts) in the input, shard I takes units
 * [floor(I*K/N), floor((I+1)*K/N)), which are the data records from the
 * first record of its first unit up to the first record of the next
 * shard's.  Finding K needs a first pass over the input, which must
 * therefore be regular files (not stdin or a pipe). */
#ifndef HD_RECORD_SHARD_H
#define HD_RECORD_SHARD_H

#include <msgpack.h>

#include "stream/map_writer.h"
#include "stream/record_input.h"

typedef struct {
    int index, count; /* I and N: 0 <= I < N */
} RecordShard;

/* Parses "I/N" (decimal digits only, N >= 1, I < N).  -1 with a message. */
int record_shard_parse(const char *spec, RecordShard *s);

/* The units [*first, *end) of shard s among n_units. */
void record_shard_block(long long n_units, const RecordShard *s, long long *first, long long *end);

/* How the tool groups records into batches. */
typedef struct {
    const char *batched;  /* the record type it batches: "pair", "acts" */
    int batch;            /* records of that type per batch */
    int other_ends_batch; /* 1: a record of another type closes the open batch
                             (pair_window_run); 0: it passes by (hd-score) */
} ShardBatching;

/* Where batches start: feed the data records in order; 1 when the record
 * begins a new unit (a batch, or a record of another type outside any). */
typedef struct {
    ShardBatching b;
    long long run; /* records of the batched type since the last reset */
} ShardUnits;
int shard_units_next(ShardUnits *u, int is_batched);

/* -1 with a message when files cannot be counted twice: none (stdin),
 * "-", or a path that exists but is not a regular file (a pipe, a device).
 * A missing file passes here; opening it reports it. */
int record_shard_check_inputs(char *const *files, int n);

typedef struct {
    long long first, end;  /* the shard's data records (0-based, over all files) */
    long long n_records;   /* data records in the input */
    long long n_batched;   /* of which of the batched type */
    long long n_units;
} ShardRange;

/* The first pass: reads files[0..n) and computes the data records of
 * shard s.  -1 with a message naming the file and record on bad input. */
int record_shard_range(char **files, int n, const RecordShard *s, const ShardBatching *b,
                       ShardRange *r);

/* record_input_open(files, n) limited to the records of shard s, after
 * record_shard_range (r gets its numbers); s NULL: all records, r zeroed. */
RecordInput *record_shard_open(char **files, int n, const RecordShard *s, const ShardBatching *b,
                               ShardRange *r);

/* No --shard given: when a launcher started this process as one of several
 * (mpirun, srun: dist_launcher), its shard is rank/size, and every rank
 * writes a file of its own, OUTPUT.shard-I-of-N with I zero-padded to N's
 * digits so that `cat OUTPUT.shard-*` lists them in order.  1 with *s and
 * *output_name (malloc'd), 0 when not started so (or as a single process),
 * -1 with a message (no OUTPUT, or "-": the ranks would share one stdout). */
int record_shard_from_launcher(RecordShard *s, const char *output, char **output_name);

/* Adds the header's "shard": [I, N]. */
void record_shard_pack(MapWriter *h, const RecordShard *s);

#endif
