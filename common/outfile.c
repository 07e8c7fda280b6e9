#include "outfile.h"
#include "error.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temporary files still open, for the exit and signal clean-up.  Plain
 * fixed arrays, because a signal handler may only call unlink(). */
#define MAX_PENDING 16
static char pending[MAX_PENDING][4096];
static volatile sig_atomic_t pending_used[MAX_PENDING];
static int cleanup_installed;

static void remove_pending(void)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i]) unlink(pending[i]);
}

static void on_signal(int sig)
{
    remove_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int add_pending(const char *tmp)
{
    if (!cleanup_installed) {
        atexit(remove_pending);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        cleanup_installed = 1;
    }
    for (int i = 0; i < MAX_PENDING; i++)
        if (!pending_used[i] && strlen(tmp) < sizeof pending[i]) {
            strcpy(pending[i], tmp);
            pending_used[i] = 1;
            return i;
        }
    return -1;
}

static void drop_pending(const char *tmp)
{
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_used[i] && strcmp(pending[i], tmp) == 0) pending_used[i] = 0;
}

int outfile_open(OutFile *o, const char *path, int binary)
{
    memset(o, 0, sizeof *o);
    o->fd = -1;
    if (!path || strcmp(path, "-") == 0) {
        if (binary && isatty(STDOUT_FILENO))
            return hd_fail("refusing to write binary records to a terminal "
                           "(pipe into hd-cat, or use -o FILE)");
        o->fd = STDOUT_FILENO;
        return 0;
    }
    o->path = hd_strdup(path);
    size_t n = strlen(path) + 16;
    o->tmp_path = hd_malloc(n);
    snprintf(o->tmp_path, n, "%s.tmp.XXXXXX", path);
    o->fd = mkstemp(o->tmp_path);
    if (o->fd < 0) {
        int e = errno;
        free(o->path);
        free(o->tmp_path);
        o->path = o->tmp_path = NULL;
        return hd_fail("%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; outputs are ordinary files, so honour the umask. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(o->fd, 0666 & ~mask);
    add_pending(o->tmp_path);
    return 0;
}

int outfile_commit(OutFile *o)
{
    if (!o->path) return 0;
    int rc = 0;
    if (fsync(o->fd) != 0 && errno != EINVAL) rc = hd_fail("%s: %s", o->path, strerror(errno));
    if (close(o->fd) != 0 && rc == 0) rc = hd_fail("%s: %s", o->path, strerror(errno));
    o->fd = -1;
    if (rc == 0 && rename(o->tmp_path, o->path) != 0)
        rc = hd_fail("%s: cannot rename into place: %s", o->path, strerror(errno));
    if (rc != 0) unlink(o->tmp_path);
    drop_pending(o->tmp_path);
    free(o->tmp_path);
    free(o->path);
    o->tmp_path = o->path = NULL;
    return rc;
}

void outfile_abort(OutFile *o)
{
    if (!o->path) return;
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    unlink(o->tmp_path);
    drop_pending(o->tmp_path);
    free(o->tmp_path);
    free(o->path);
    o->tmp_path = o->path = NULL;
}

const char *outfile_name(const OutFile *o)
{
    return o->path ? o->path : "stdout";
}
