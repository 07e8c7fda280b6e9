/* The mean of selection-weight matrices whose prompts differ in length,
 * aligned on the entity: every example's [S+1, B] matrix is placed so that
 * its source entity row and base entity column land on offset 0, and each
 * cell of the union of all placements is averaged over the examples that
 * cover it.  The last row of each matrix ("self", keep the base) has no
 * offset: it goes to the mean's own last row. */
#ifndef HD_ALIGNED_MEAN_H
#define HD_ALIGNED_MEAN_H

typedef struct {
    int row_lo, row_hi;     /* source offsets covered, relative to source_entity_pos */
    int col_lo, col_hi;     /* base offsets, relative to base_entity_pos */
    double *sum;            /* (rows + 1) * cols, row-major; last row = self */
    long *count;            /* examples behind each cell */
    long n_examples;
} AlignedMean;

void aligned_mean_init(AlignedMean *m);
/* Adds one matrix w [S+1, B] (row-major; S >= 0, B >= 1) whose entity's
 * last token is source row src_entity (0 <= src_entity < S, or anything
 * when S == 0) and base column base_entity (0 <= base_entity < B). */
void aligned_mean_add(AlignedMean *m, const float *w, int S, int B, int src_entity, int base_entity);
/* Source offset rows (without the self row) and base offset columns; 0 when empty. */
int aligned_mean_rows(const AlignedMean *m);
int aligned_mean_cols(const AlignedMean *m);
/* The means into out[(rows + 1) * cols]; NaN where no example has the cell. */
void aligned_mean_result(const AlignedMean *m, double *out);
void aligned_mean_free(AlignedMean *m);

#endif
