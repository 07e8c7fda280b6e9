#include "base/outfile.h"
#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
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

void outfile_die_of_signal(int sig)
{
    remove_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int add_pending(const char *tmp)
{
    if (!cleanup_installed) {
        atexit(remove_pending);
        signal(SIGINT, outfile_die_of_signal);
        signal(SIGTERM, outfile_die_of_signal);
        signal(SIGHUP, outfile_die_of_signal);
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

/* A path that is not to be replaced but written in place: a FIFO or a
 * device, directly or through symbolic links. */
static int open_in_place(OutFile *o, const char *path, int binary)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return hd_fail("%s: cannot open: %s", path, strerror(errno));
    if (binary && isatty(fd)) {
        close(fd);
        return hd_fail("%s: refusing to write binary records to a terminal", path);
    }
    o->fd = fd;
    o->path = hd_strdup(path);
    return 0;
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
    struct stat st, lst;
    int exists = stat(path, &st) == 0;   /* what a link points to */
    int is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
    if (exists && S_ISDIR(st.st_mode)) return hd_fail("%s: is a directory", path);
    if (exists && !S_ISREG(st.st_mode)) return open_in_place(o, path, binary);
    if (is_link && !exists)
        return hd_fail("%s: a symbolic link to a missing file: refusing to replace the link "
                       "(write to its target's path instead)", path);
    /* the rename must land on the file a link names, not on the link */
    char *target = is_link ? realpath(path, NULL) : hd_strdup(path);
    if (!target) return hd_fail("%s: cannot resolve the link: %s", path, strerror(errno));
    size_t n = strlen(target) + 16;
    char *tmp = hd_malloc(n);
    snprintf(tmp, n, "%s.tmp.XXXXXX", target);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(target);
        free(tmp);
        return hd_fail("%s: cannot create: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; outputs are ordinary files, so honour the umask. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    o->fd = fd;
    o->path = hd_strdup(path);
    o->tmp_path = tmp;
    o->target = target;
    add_pending(o->tmp_path);
    return 0;
}

static void release(OutFile *o)
{
    if (o->tmp_path) drop_pending(o->tmp_path);
    free(o->tmp_path);
    free(o->target);
    free(o->path);
    o->tmp_path = o->target = o->path = NULL;
}

int outfile_commit(OutFile *o)
{
    if (!o->path) return 0;
    int rc = 0;
    /* durability means something for the file renamed into place only */
    if (o->tmp_path && fsync(o->fd) != 0 && errno != EINVAL)
        rc = hd_fail("%s: %s", o->path, strerror(errno));
    if (close(o->fd) != 0 && rc == 0) rc = hd_fail("%s: %s", o->path, strerror(errno));
    o->fd = -1;
    if (o->tmp_path) {
        if (rc == 0 && rename(o->tmp_path, o->target) != 0)
            rc = hd_fail("%s: cannot rename into place: %s", o->path, strerror(errno));
        if (rc != 0) unlink(o->tmp_path);
    }
    release(o);
    return rc;
}

void outfile_abort(OutFile *o)
{
    if (!o->path) return;
    if (o->fd >= 0) close(o->fd);
    o->fd = -1;
    if (o->tmp_path) unlink(o->tmp_path);
    release(o);
}

int outfile_is_stream(const OutFile *o)
{
    return !o->tmp_path;
}

const char *outfile_name(const OutFile *o)
{
    return o->path ? o->path : "stdout";
}
