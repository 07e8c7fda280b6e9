#include "plot/aligned_mean.h"
#include "base/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void aligned_mean_init(AlignedMean *m)
{
    memset(m, 0, sizeof *m);
}

int aligned_mean_rows(const AlignedMean *m)
{
    return m->n_examples && m->row_hi >= m->row_lo ? m->row_hi - m->row_lo + 1 : 0;
}

int aligned_mean_cols(const AlignedMean *m)
{
    return m->n_examples ? m->col_hi - m->col_lo + 1 : 0;
}

/* Widens the grid to cover rows [rlo, rhi] and columns [clo, chi], moving
 * the sums and counts gathered so far to their new places. */
static void widen(AlignedMean *m, int rlo, int rhi, int clo, int chi)
{
    int old_rows = aligned_mean_rows(m), old_cols = aligned_mean_cols(m);
    int nrows = rhi >= rlo ? rhi - rlo + 1 : 0, ncols = chi - clo + 1;
    double *sum = hd_calloc((size_t)(nrows + 1) * (size_t)ncols, sizeof *sum);
    long *count = hd_calloc((size_t)(nrows + 1) * (size_t)ncols, sizeof *count);
    for (int r = 0; r <= old_rows; r++) {
        /* the old self row (r == old_rows) goes to the new self row */
        int nr = r == old_rows ? nrows : r + m->row_lo - rlo;
        for (int c = 0; c < old_cols; c++) {
            int nc = c + m->col_lo - clo;
            sum[(size_t)nr * ncols + nc] = m->sum[(size_t)r * old_cols + c];
            count[(size_t)nr * ncols + nc] = m->count[(size_t)r * old_cols + c];
        }
    }
    free(m->sum);
    free(m->count);
    m->sum = sum;
    m->count = count;
    m->row_lo = rlo;
    m->row_hi = rhi;
    m->col_lo = clo;
    m->col_hi = chi;
}

void aligned_mean_add(AlignedMean *m, const float *w, int S, int B, int src_entity, int base_entity)
{
    /* an example without source tokens covers no source rows: give it an
     * empty row range that does not disturb the others' */
    int rlo = S > 0 ? -src_entity : 0, rhi = S > 0 ? S - 1 - src_entity : -1;
    int clo = -base_entity, chi = B - 1 - base_entity;
    if (m->n_examples == 0) {
        widen(m, rlo, rhi, clo, chi);
    } else {
        int nrlo = m->row_lo, nrhi = m->row_hi;
        if (S > 0) {
            if (nrhi < nrlo) { nrlo = rlo; nrhi = rhi; }
            if (rlo < nrlo) nrlo = rlo;
            if (rhi > nrhi) nrhi = rhi;
        }
        int nclo = clo < m->col_lo ? clo : m->col_lo, nchi = chi > m->col_hi ? chi : m->col_hi;
        if (nrlo != m->row_lo || nrhi != m->row_hi || nclo != m->col_lo || nchi != m->col_hi)
            widen(m, nrlo, nrhi, nclo, nchi);
    }
    m->n_examples++;
    int rows = aligned_mean_rows(m), cols = aligned_mean_cols(m);
    for (int s = 0; s <= S; s++) {
        int r = s == S ? rows : s - src_entity - m->row_lo;
        for (int t = 0; t < B; t++) {
            size_t cell = (size_t)r * cols + (size_t)(t - base_entity - m->col_lo);
            m->sum[cell] += w[(size_t)s * B + t];
            m->count[cell]++;
        }
    }
}

void aligned_mean_result(const AlignedMean *m, double *out)
{
    size_t n = (size_t)(aligned_mean_rows(m) + 1) * (size_t)aligned_mean_cols(m);
    for (size_t i = 0; i < n; i++) out[i] = m->count[i] ? m->sum[i] / m->count[i] : NAN;
}

void aligned_mean_free(AlignedMean *m)
{
    free(m->sum);
    free(m->count);
    memset(m, 0, sizeof *m);
}
