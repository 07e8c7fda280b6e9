/* Error reporting shared by every tool and library file.
 *
 * Library code never prints and never exits: it formats a message with
 * hd_fail() and returns -1 (or NULL); the tool that called it decides how
 * to report it, usually with hd_die("%s", hd_last_error()).  Messages follow
 * the project's one-line convention `TOOL: FILE: record N: what`, where the
 * tool prefix is added by hd_die/hd_warn and the rest by the library. */
#ifndef HD_ERROR_H
#define HD_ERROR_H

#include <stddef.h>

/* Name printed in front of every message; set by hd_cli_init(). */
extern const char *hd_progname;

/* Run by hd_die and hd_usage_error after the message, instead of exit,
 * when set: the process group (dist.c) sets it so that a fatal error on
 * one rank ends every rank of the job (MPI_Abort) rather than leaving the
 * others blocked in a collective.  NULL in a single process. */
extern void (*hd_exit_hook)(int status);

/* Set by hd_die and hd_usage_error before they exit, so that exit-time
 * checks (hd_cli_init's of stdout) add no second message to theirs. */
extern int hd_exiting_on_error;

/* hd_fail, hd_fail_prefix and hd_last_error: the message buffer lives with
 * the kernels, which report through it too. */
#include "kernel_error.h"

/* `PROG: message` on stderr, then exit(1).  Exit status 2 is for bad usage. */
void hd_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void hd_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void hd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that cannot fail: dies with a clear message instead. */
void *hd_malloc(size_t n);
void *hd_calloc(size_t n, size_t size);
void *hd_realloc(void *p, size_t n);
char *hd_strdup(const char *s);
char *hd_strndup(const char *s, size_t n);

#endif
