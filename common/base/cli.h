/* What every tool does the same way: its name in messages, --version,
 * SIGPIPE, the command line kept for the provenance header, and the
 * progress line on stderr. */
#ifndef HD_CLI_H
#define HD_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Sets hd_progname, restores the default SIGPIPE action (so a closed pipe
 * ends the tool quietly, as `head` expects), keeps argv for headers, and
 * makes a failed write of stdout fail the run at exit ("stdout: write
 * error: No space left on device", status 1). */
void hd_cli_init(int argc, char **argv, const char *name);
int hd_cli_argc(void);
char **hd_cli_argv(void);

/* `NAME (hyperdas) VERSION` on stdout. */
void hd_cli_print_version(void);

/* Parses a non-negative integer option value or exits with a usage error. */
long long hd_cli_parse_count(const char *option, const char *value);
/* The same, at least min (--epochs 0, --keep 0 mean nothing). */
long long hd_cli_parse_count_min(const char *option, const char *value, long long min);
/* A finite number (NaN and infinities are usage errors: no option means
 * them), or exits with a usage error. */
double hd_cli_parse_double(const char *option, const char *value);
/* A finite number >= min (a negative rate, weight or norm means nothing). */
double hd_cli_parse_double_min(const char *option, const char *value, double min);
/* --device: "cpu" -> 0, "cuda" -> 1; anything else is a usage error. */
int hd_cli_parse_device(const char *value);

/* A progress line on stderr, redrawn at most a few times a second and only
 * when stderr is a terminal.  `total` may be 0 when unknown. */
typedef struct {
    const char *what;
    long long total;
    long long done;
    double start, last_draw;
    int enabled;
} Progress;
void progress_begin(Progress *p, const char *what, long long total);
void progress_update(Progress *p, long long done);
void progress_end(Progress *p);

double hd_now_seconds(void);

/* The path `rel` relative to the directory of the running executable
 * (bin/../data/ravel for a tool run from a build tree), into out; -1 when
 * /proc/self/exe cannot be read. */
int hd_exe_relative(const char *rel, char *out, size_t size);

/* Sets the OpenMP and OpenBLAS thread counts (n <= 0: leave the defaults). */
void hd_set_threads(int n);

/* OpenBLAS's configuration string, with the kernels it picked for this
 * processor (for --version and log headers). */
const char *hd_blas_describe(void);
/* 1 when OpenBLAS runs pre-AVX2 kernels on a processor with AVX2 (an
 * OpenBLAS older than the processor: GEMMs ~5x slower than with its AVX2
 * or AVX-512 kernels); hd_blas_warn_slow_kernels says so on stderr when
 * that is a terminal (a note for the person at it, not log noise). */
int hd_blas_slow_kernels(void);
void hd_blas_warn_slow_kernels(void);

#endif
