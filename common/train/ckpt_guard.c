#include "train/ckpt_guard.h"
#include "base/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory this process created, removed at exit when the run
 * stopped before writing anything into it (a bad --device, an unreadable
 * model): a failed run leaves no empty checkpoint directory behind.  A
 * directory that existed before is never removed. */
static char created[4096];

static void remove_if_unused(void)
{
    DIR *d = opendir(created);
    if (!d) return;
    int used = 0;
    for (struct dirent *e; !used && (e = readdir(d));)
        used = strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "lock");
    closedir(d);
    if (used) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", created);
    unlink(path);
    rmdir(created);
}

int ckpt_guard_lock(const char *dir, int create)
{
    if (create) {
        if (mkdir(dir, 0755) == 0) {
            if (!created[0] && strlen(dir) < sizeof created) {
                strcpy(created, dir);
                atexit(remove_if_unused);
            }
        } else if (errno != EEXIST) {
            return hd_fail("%s: cannot create the checkpoint directory: %s", dir, strerror(errno));
        }
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", dir);
    /* never closed: the lock lives as long as the process */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) return hd_fail("%s: no such checkpoint directory", dir);
        return hd_fail("%s: cannot open: %s", path, strerror(errno));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return hd_fail("%s: another hd-train%s%s%s is training in this checkpoint directory "
                           "(it holds %s); wait for it, or use another -c DIR",
                           dir, *pid ? " (pid " : "", pid, *pid ? ")" : "", path);
        return hd_fail("%s: cannot lock: %s", path, strerror(e));
    }
    /* the holder's pid, for the message the next one gets */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        hd_warn("%s: cannot write the pid: %s", path, strerror(errno));
    return 0;
}

int ckpt_guard_has_run(const char *dir, char **what)
{
    char path[4200], target[256];
    snprintf(path, sizeof path, "%s/latest", dir);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
        target[n] = 0;
        if (asprintf(what, "%s -> %s", path, target) < 0) hd_die("out of memory");
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));)
        if (strncmp(e->d_name, "step-", 5) == 0) { /* checkpoint.h: its temporaries are .tmp-* */
            if (asprintf(what, "%s/%s", dir, e->d_name) < 0) hd_die("out of memory");
            found = 1;
        }
    closedir(d);
    return found;
}

int ckpt_guard_take(const char *dir, int resume, int overwrite)
{
    if (ckpt_guard_lock(dir, !resume) < 0) return -1;
    char *other = NULL;
    if (resume || overwrite || !ckpt_guard_has_run(dir, &other)) return 0;
    hd_fail("%s holds another run's checkpoints (%s): continue it with --resume %s, or start over with "
            "--overwrite", dir, other, dir);
    free(other);
    return -1;
}

static int join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= size ? hd_fail("%s/%s: path too long", dir, name) : 0;
}

/* A step directory holds files only (checkpoint.h). */
static int remove_step(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return hd_fail("%s: %s", path, strerror(errno));
    char file[4400];
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (join(file, sizeof file, path, e->d_name) < 0) {
            closedir(d);
            return -1;
        }
        if (unlink(file) != 0) {
            int err = errno;
            closedir(d);
            return hd_fail("%s: cannot remove: %s", file, strerror(err));
        }
    }
    closedir(d);
    return rmdir(path) == 0 ? 0 : hd_fail("%s: cannot remove: %s", path, strerror(errno));
}

int ckpt_guard_clear_run(const char *dir)
{
    char path[4200];
    /* `latest` first: a run killed half way through leaves no link to a
     * step directory that is gone */
    snprintf(path, sizeof path, "%s/latest", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return hd_fail("%s: cannot remove: %s", path, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return hd_fail("%s: %s", dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));)
        if (strncmp(e->d_name, "step-", 5) == 0)
            rc = join(path, sizeof path, dir, e->d_name) < 0 ? -1 : remove_step(path);
    closedir(d);
    return rc;
}
