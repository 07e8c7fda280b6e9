#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *hd_progname = "hyperdas";
void (*hd_exit_hook)(int status);
int hd_exiting_on_error;

static void vreport(const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One line per message, even if a file name or value held a newline. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fprintf(stderr, "%s: %s\n", hd_progname, msg);
}

static void __attribute__((noreturn)) die_with(int status)
{
    hd_exiting_on_error = 1;
    if (hd_exit_hook) hd_exit_hook(status);
    exit(status);
}

void hd_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    die_with(1);
}

void hd_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: try '%s --help'\n", hd_progname, hd_progname);
    die_with(2);
}

void hd_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
}

void *hd_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) hd_die("out of memory allocating %zu bytes", n);
    return p;
}

void *hd_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) hd_die("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *hd_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) hd_die("out of memory allocating %zu bytes", n);
    return q;
}

char *hd_strdup(const char *s)
{
    return hd_strndup(s, strlen(s));
}

char *hd_strndup(const char *s, size_t n)
{
    char *p = hd_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}
