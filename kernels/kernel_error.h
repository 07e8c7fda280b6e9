/* The failure message of the library: the one piece of error reporting the
 * kernels need, kept here so that kernels/ depends on nothing in common/.
 *
 * A function that fails formats a message with hd_fail() and returns -1
 * (or NULL); its caller reads it with hd_last_error().  The buffer is per
 * thread.  common/base/error.h includes this header and adds what only the
 * tools need (hd_die, hd_warn, the allocation wrappers). */
#ifndef HD_KERNEL_ERROR_H
#define HD_KERNEL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Formats a message into a per-thread buffer and returns -1. */
int hd_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefixes the current message with more context ("FILE: " + old). */
int hd_fail_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *hd_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
