/* hd-train's hold on its checkpoint directory, so that a run never
 * destroys another one:
 *
 *  - one run at a time: an exclusive advisory lock (flock) on DIR/lock,
 *    held until the process ends (exit, a crash or kill -9 release it);
 *    a second hd-train on DIR fails at once, naming the holder's pid;
 *  - a new run does not start over another run's checkpoints (a `latest`
 *    link or step-* directories) unless told to (--overwrite), and then
 *    removes them only once its own input has been read and checked;
 *  - spools are written under a temporary name (outfile.h: removed at exit
 *    unless committed) and renamed into place after that check, so a bad
 *    input leaves the previous spool as it was.
 *
 * DIR/lock is left in place: removing it would let a third run lock a new
 * file while the second still holds the old one.  Only a directory this run
 * created and left empty is removed at exit, lock and all. */
#ifndef HD_CKPT_GUARD_H
#define HD_CKPT_GUARD_H

/* Creates DIR first when create is set.  -1 with a message naming DIR
 * when it cannot be locked, or another process holds the lock. */
int ckpt_guard_lock(const char *dir, int create);

/* 1 when DIR holds a run's checkpoints, with its latest step (or the
 * first step directory found) in *what (malloc'd); 0 when it holds none. */
int ckpt_guard_has_run(const char *dir, char **what);

/* What hd-train does first: locks dir (created unless resume), then, for
 * a new run without overwrite, refuses a dir that holds another run's
 * checkpoints.  -1 with a message saying what to do. */
int ckpt_guard_take(const char *dir, int resume, int overwrite);

/* Removes the step directories and the `latest` link of the run in DIR
 * (--overwrite); -1 with a message naming what could not be removed. */
int ckpt_guard_clear_run(const char *dir);

#endif
