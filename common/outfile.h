/* Output files written atomically: data goes to a temporary file in the
 * same directory and is renamed onto the final name only on success, so a
 * failed or killed run never leaves a half-written file under that name
 * (and an older complete file is never damaged).  Temporary files are
 * removed on exit or on SIGINT/SIGTERM/SIGHUP.  Path "-" or NULL is
 * stdout, which is refused for binary data when it is a terminal. */
#ifndef HD_OUTFILE_H
#define HD_OUTFILE_H

typedef struct {
    int fd;
    char *path;       /* final name, NULL for stdout */
    char *tmp_path;   /* temporary name while writing */
} OutFile;

int outfile_open(OutFile *o, const char *path, int binary);
/* Flushes to disk and renames into place (stdout: nothing to do). */
int outfile_commit(OutFile *o);
/* Removes the temporary file. */
void outfile_abort(OutFile *o);
/* Name for messages: the path or "stdout". */
const char *outfile_name(const OutFile *o);

#endif
