/* An hd-train log read back for plotting: the `step` records (loss and
 * pred_loss against step) and the `eval` records (cause and isolate of each
 * selection mode against step), each series sorted by step.  Other record
 * types (header, end, ...) are skipped. */
#ifndef HD_TRAIN_LOG_H
#define HD_TRAIN_LOG_H

typedef struct {
    double step;
    double a, b;     /* step records: loss, pred_loss; eval records: cause, isolate (nil: NaN) */
    long order;      /* position in the log: repeated steps (a resumed run) keep their order */
} LogPoint;

typedef struct {
    LogPoint *p;
    int n, cap;
} LogPoints;

typedef struct {
    char *mode;      /* printable form (svg.h visible_text) */
    LogPoints points;
} LogEvalMode;

typedef struct {
    char *name;      /* the path, or "stdin" */
    LogPoints steps;
    LogEvalMode *evals;   /* one per mode, in the order first seen */
    int n_modes;
} TrainLog;

/* Reads path ("-" is stdin, gzip detected).  A step record needs an integer
 * step and numbers loss and pred_loss; an eval record an integer step, a
 * string mode and numbers cause and isolate.  -1 (hd_fail: "FILE: record N:
 * what", or the reader's message); the log is then freed. */
int train_log_read(const char *path, TrainLog *log);
void train_log_free(TrainLog *log);

#endif
