/* Output files written atomically: data goes to a temporary file in the
 * same directory and is renamed onto the final name only on success, so a
 * failed or killed run never leaves a half-written file under that name
 * (and an older complete file is never damaged).  Temporary files are
 * removed on exit or on SIGINT/SIGTERM/SIGHUP.  Path "-" or NULL is
 * stdout, which is refused for binary data when it is a terminal.
 *
 * Only a regular file (or a new name) is replaced that way.  A path that
 * is, or is a symbolic link to, a FIFO or a device (/dev/null, a named
 * pipe another process reads) is opened and written directly, as stdout
 * is: renaming over it would destroy it.  A symbolic link to a regular
 * file is written through: the temporary file goes beside the link's
 * target and is renamed onto the target, so the link stays.  A link to
 * nothing, or a directory, is refused. */
#ifndef HD_OUTFILE_H
#define HD_OUTFILE_H

typedef struct {
    int fd;
    char *path;       /* the name given, NULL for stdout */
    char *tmp_path;   /* temporary name while writing; NULL when written directly */
    char *target;     /* what tmp_path is renamed onto: path, or a link's target */
} OutFile;

int outfile_open(OutFile *o, const char *path, int binary);
/* Flushes to disk and renames into place (stdout: nothing to do; a FIFO
 * or device: closes it).  -1 with a message on a failed write-back. */
int outfile_commit(OutFile *o);
/* Removes the temporary file (a FIFO or device is only closed). */
void outfile_abort(OutFile *o);
/* 1 when written in place (stdout, a FIFO, a device): what was written is
 * already out and cannot be taken back. */
int outfile_is_stream(const OutFile *o);
/* The SIGINT/SIGTERM/SIGHUP handler that outfile_open installs: removes
 * every temporary file still open, then dies of sig.  Async-signal-safe,
 * for a program's own handler to end with (hd-train's clean stop). */
void outfile_die_of_signal(int sig);
/* Name for messages: the path or "stdout". */
const char *outfile_name(const OutFile *o);

#endif
