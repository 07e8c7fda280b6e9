#include "base/cli.h"
#include "base/error.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <omp.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int saved_argc;
static char **saved_argv;

/* At exit: what stdio still holds for stdout is written, and a write that
 * failed now or earlier (a full disk, `> /dev/full`) fails the run, so that
 * text output (tables, JSON lines, --help) is never lost silently.  A
 * closed pipe stays the quiet end it is elsewhere. */
static void check_stdout(void)
{
    int failed = ferror(stdout);
    errno = 0;
    if (fclose(stdout) != 0) failed = 1;
    if (!failed || hd_exiting_on_error) return;
    if (errno == EPIPE) _exit(141);
    fprintf(stderr, "%s: stdout: write error%s%s\n", hd_progname, errno ? ": " : "",
            errno ? strerror(errno) : "");
    _exit(1);
}

void hd_cli_init(int argc, char **argv, const char *name)
{
    hd_progname = name;
    saved_argc = argc;
    saved_argv = argv;
    /* A parent (a Python subprocess, some shells) may have left SIGPIPE
     * ignored; the default action is the quiet exit pipelines expect. */
    signal(SIGPIPE, SIG_DFL);
    atexit(check_stdout);
}

int hd_cli_argc(void) { return saved_argc; }
char **hd_cli_argv(void) { return saved_argv; }

void hd_cli_print_version(void)
{
    printf("%s (hyperdas) %s\n", hd_progname, HD_VERSION);
    printf("blas: %s\n", hd_blas_describe());
}

const char *hd_blas_describe(void)
{
    /* "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64":
     * the build, and the kernels it picked at run time */
    return openblas_get_config();
}

int hd_blas_slow_kernels(void)
{
    /* the cores OpenBLAS falls back to when its build does not know the
     * processor, none with AVX2 kernels */
    static const char *old[] = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom",
                                "katmai", "coppermine", "northwood", "banias", "unknown"};
    const char *core = openblas_get_corename();
    __builtin_cpu_init();
    if (!core || !__builtin_cpu_supports("avx2")) return 0;
    for (size_t i = 0; i < sizeof old / sizeof *old; i++)
        if (strcasecmp(core, old[i]) == 0) return 1;
    return 0;
}

void hd_blas_warn_slow_kernels(void)
{
    if (!hd_blas_slow_kernels() || !isatty(STDERR_FILENO)) return;
    fprintf(stderr,
            "%s: note: OpenBLAS runs its %s kernels on this processor, which has AVX2: "
            "its build does not know the processor, and matrix products run several times "
            "slower than they could (OPENBLAS_CORETYPE=Haswell selects AVX2 kernels; see "
            "'%s --version')\n",
            hd_progname, openblas_get_corename(), hd_progname);
}

long long hd_cli_parse_count(const char *option, const char *value)
{
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end || v < 0)
        hd_usage_error("%s: expected a non-negative integer, got '%s'", option, value);
    return v;
}

long long hd_cli_parse_count_min(const char *option, const char *value, long long min)
{
    long long v = hd_cli_parse_count(option, value);
    if (v < min) hd_usage_error("%s: expected at least %lld, got '%s'", option, min, value);
    return v;
}

double hd_cli_parse_double(const char *option, const char *value)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v))
        hd_usage_error("%s: expected a finite number, got '%s'", option, value);
    return v;
}

double hd_cli_parse_double_min(const char *option, const char *value, double min)
{
    double v = hd_cli_parse_double(option, value);
    if (v < min) hd_usage_error("%s: expected a number >= %g, got '%s'", option, min, value);
    return v;
}

double hd_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_begin(Progress *p, const char *what, long long total)
{
    p->what = what;
    p->total = total;
    p->done = 0;
    p->start = p->last_draw = hd_now_seconds();
    p->enabled = isatty(STDERR_FILENO);
}

static void draw(Progress *p, double now)
{
    double rate = p->done / (now - p->start > 1e-9 ? now - p->start : 1e-9);
    if (p->total > 0)
        fprintf(stderr, "\r%s: %lld/%lld %s (%.1f%%, %.1f/s)  ", hd_progname, p->done,
                p->total, p->what, 100.0 * p->done / p->total, rate);
    else
        fprintf(stderr, "\r%s: %lld %s (%.1f/s)  ", hd_progname, p->done, p->what, rate);
    p->last_draw = now;
}

void progress_update(Progress *p, long long done)
{
    p->done = done;
    if (!p->enabled) return;
    double now = hd_now_seconds();
    if (now - p->last_draw >= 0.25) draw(p, now);
}

void progress_end(Progress *p)
{
    if (!p->enabled) return;
    draw(p, hd_now_seconds());
    fputc('\n', stderr);
}

int hd_exe_relative(const char *rel, char *out, size_t size)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return hd_fail("cannot read /proc/self/exe");
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return hd_fail("odd executable path %s", exe);
    *slash = 0;
    if ((size_t)snprintf(out, size, "%s/%s", exe, rel) >= size) return hd_fail("path too long");
    return 0;
}

void hd_set_threads(int n)
{
    if (n <= 0) return;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int hd_cli_parse_device(const char *value)
{
    if (strcmp(value, "cpu") && strcmp(value, "cuda"))
        hd_usage_error("--device: expected cpu or cuda, got '%s'", value);
    return strcmp(value, "cuda") == 0;
}
