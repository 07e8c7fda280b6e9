/* hd-cat: the human view of any hyperdas stream, and the way back.
 *
 *   hd-cat [options] [FILE...]          records -> JSON lines
 *   hd-cat --to-records [FILE...]       JSON lines -> records
 *
 * Reads stdin when no FILE (or "-") is given; gzip input is detected. */
#include "base/cli.h"
#include "base/error.h"
#include "stream/header.h"
#include "stream/json_view.h"
#include "stream/msgpack_util.h"
#include "base/outfile.h"
#include "stream/records.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void)
{
    printf(
        "Usage: hd-cat [options] [FILE...]\n"
        "Show hyperdas record streams as JSON lines, one record per line, or turn\n"
        "JSON lines back into records.  FILE '-' or none is stdin; gzip is detected.\n"
        "\n"
        "  --full             print every tensor value (default: dtype, shape, min,\n"
        "                     max, mean and the first values)\n"
        "  --first N          values shown in a tensor summary (default 8)\n"
        "  --header           print only the header records\n"
        "  --count            print only the number of data records (after --where)\n"
        "  --head N           stop after N data records (headers are always shown)\n"
        "  --where KEY=VALUE  keep data records whose top-level KEY equals VALUE\n"
        "                     (string, number, true/false or null); repeatable, all\n"
        "                     must match\n"
        "  --to-records       read JSON lines, write records (a header is written;\n"
        "                     a JSON header line in the input becomes its 'inputs')\n"
        "  --kind KIND        stream kind of that header (default: the input\n"
        "                     header's kind, else 'records')\n"
        "  -o, --output FILE  write to FILE (atomically) instead of stdout\n"
        "  -z, --gzip         gzip the records written by --to-records\n"
        "  -h, --help         this text\n"
        "      --version      version\n"
        "\n"
        "The stream's closing 'end' record (its record count) is checked when read\n"
        "and not shown.  Tensors in --full form, {\"dtype\",\"shape\",\"data\":[...]},\n"
        "read back exactly; binary values are {\"$bin\": base64}; bytes of a string\n"
        "that are not UTF-8 are shown as U+FFFD, so the output is always JSON.\n"
        "--to-records checks every record as a reader does before writing it.\n");
}

typedef struct {
    char *key;
    char *value;
} Where;

typedef struct {
    JsonViewOptions view;
    int header_only, count_only, to_records, gzip;
    long long head;                /* -1: no limit */
    Where *where;
    int n_where;
    const char *kind;
    const char *output;
} Options;

/* Does the record's value under w->key equal the text w->value? */
static int where_matches(const msgpack_object *rec, const Where *w)
{
    const msgpack_object *v = mp_map_get(rec, w->key);
    if (!v) return 0;
    char *end;
    switch (v->type) {
    case MSGPACK_OBJECT_STR:
        return v->via.str.size == strlen(w->value) && memcmp(v->via.str.ptr, w->value, v->via.str.size) == 0;
    case MSGPACK_OBJECT_BOOLEAN:
        return strcmp(w->value, v->via.boolean ? "true" : "false") == 0;
    case MSGPACK_OBJECT_NIL:
        return strcmp(w->value, "null") == 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: {
        unsigned long long x = strtoull(w->value, &end, 10);
        return *w->value && *end == 0 && w->value[0] != '-' && x == v->via.u64;
    }
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: {
        long long x = strtoll(w->value, &end, 10);
        return *w->value && *end == 0 && x == v->via.i64;
    }
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        double x = strtod(w->value, &end);
        return *w->value && *end == 0 && x == v->via.f64;
    }
    default:
        return 0;
    }
}

static int selected(const msgpack_object *rec, const Options *o)
{
    for (int i = 0; i < o->n_where; i++)
        if (!where_matches(rec, &o->where[i])) return 0;
    return 1;
}

/* records -> JSON lines (or a count). */
static void show(int nfiles, char **files, const Options *o)
{
    OutFile out;
    if (outfile_open(&out, o->output, 0) < 0) hd_die("%s", hd_last_error());
    FILE *f = fdopen(dup(out.fd), "w");
    if (!f) hd_die("%s: cannot write", outfile_name(&out));
    char *text = NULL;
    size_t text_len = 0;
    FILE *line = open_memstream(&text, &text_len);
    if (!line) hd_die("out of memory");
    long long shown = 0;
    int done = 0;
    for (int i = 0; i < nfiles && !done; i++) {
        RecordReader *r = record_reader_open(files[i]);
        if (!r) hd_die("%s", hd_last_error());
        const msgpack_object *rec;
        int rc;
        while ((rc = record_reader_next(r, &rec)) == 1) {
            const msgpack_object *t = mp_map_get(rec, "t");
            int is_header = mp_is_str(t, "header");
            if (mp_is_str(t, "end")) continue;
            if (o->header_only != is_header) {
                if (o->header_only) continue;
            }
            if (!is_header) {
                if (!selected(rec, o)) continue;
                if (o->head >= 0 && shown >= o->head) { done = 1; break; }
                shown++;
            }
            if (o->count_only) continue;
            /* a whole line or none: a record that cannot be shown leaves
             * no half line after the ones before it */
            rewind(line);
            if (json_view_write(line, rec, &o->view) < 0) {
                fflush(f);
                hd_die("%s: record %lld: %s", record_reader_path(r), record_reader_index(r), hd_last_error());
            }
            fputc('\n', line);
            fflush(line);
            fwrite(text, 1, (size_t)ftell(line), f);
        }
        if (rc < 0) {
            fflush(f);
            hd_die("%s", hd_last_error());
        }
        record_reader_close(r);
    }
    fclose(line);
    free(text);
    if (o->count_only) fprintf(f, "%lld\n", shown);
    int failed = ferror(f);
    errno = 0;
    if (fclose(f) != 0 || failed) {
        if (errno == EPIPE) _exit(141);   /* the reader went away: quiet, as `head` expects */
        hd_die("%s: write error%s%s", outfile_name(&out), errno ? ": " : "", errno ? strerror(errno) : "");
    }
    if (outfile_commit(&out) < 0) hd_die("%s", hd_last_error());
}

/* Reads a whole line of any length; NULL at end of input. */
static char *read_line(FILE *in, size_t *len, char **buf, size_t *cap)
{
    ssize_t n = getline(buf, cap, in);
    if (n < 0) return NULL;
    while (n > 0 && ((*buf)[n - 1] == '\n' || (*buf)[n - 1] == '\r')) n--;
    (*buf)[n] = 0;
    *len = (size_t)n;
    return *buf;
}

static int is_blank(const char *s)
{
    return s[strspn(s, " \t")] == 0;
}

/* JSON lines -> records. */
static void to_records(int nfiles, char **files, const Options *o)
{
    RecordWriter *w = record_writer_open(o->output, o->gzip);
    if (!w) hd_die("%s", hd_last_error());
    msgpack_packer *pk = record_writer_packer(w);
    int wrote_header = 0;
    char *buf = NULL;
    size_t cap = 0, len;
    msgpack_sbuffer tmp;
    msgpack_sbuffer_init(&tmp);
    msgpack_packer tpk;
    msgpack_packer_init(&tpk, &tmp, msgpack_sbuffer_write);
    for (int i = 0; i < nfiles; i++) {
        int is_stdin = strcmp(files[i], "-") == 0;
        const char *name = is_stdin ? "stdin" : files[i];
        FILE *in = is_stdin ? stdin : fopen(files[i], "r");
        if (!in) { record_writer_abort(w); hd_die("%s: cannot open", name); }
        long long line_no = 0;
        while (read_line(in, &len, &buf, &cap)) {
            line_no++;
            if (is_blank(buf)) continue;
            msgpack_sbuffer_clear(&tmp);
            if (json_line_to_record(buf, len, &tpk) < 0) {
                record_writer_abort(w);
                hd_die("%s: line %lld: %s", name, line_no, hd_last_error());
            }
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            msgpack_unpack_next(&u, tmp.data, tmp.size, NULL);
            const msgpack_object *rec = &u.data;
            const msgpack_object *t = mp_map_get(rec, "t");
            if (!t || t->type != MSGPACK_OBJECT_STR) {
                record_writer_abort(w);
                hd_die("%s: line %lld: record has no string type key 't'", name, line_no);
            }
            if (mp_is_str(t, "end")) { msgpack_unpacked_destroy(&u); continue; }
            int is_header = mp_is_str(t, "header");
            /* write only what a reader takes back (tensor shapes and sizes) */
            if (!is_header && record_check(rec) < 0) {
                record_writer_abort(w);
                hd_die("%s: line %lld: %s", name, line_no, hd_last_error());
            }
            if (!wrote_header) {
                char *kind = is_header ? mp_strdup(mp_map_get(rec, "kind")) : NULL;
                const msgpack_object *inputs[1] = {rec};
                header_pack(pk, o->kind ? o->kind : kind ? kind : "records", inputs, is_header ? 1 : 0);
                free(kind);
                if (record_writer_end_record(w) < 0) hd_die("%s", hd_last_error());
                wrote_header = 1;
                if (is_header) { msgpack_unpacked_destroy(&u); continue; }
            }
            if (is_header) {
                hd_warn("%s: line %lld: a later header line is not carried over", name, line_no);
            } else if (record_writer_write_object(w, rec) < 0) {
                record_writer_abort(w);
                hd_die("%s", hd_last_error());
            }
            msgpack_unpacked_destroy(&u);
        }
        if (!is_stdin) fclose(in);
    }
    if (!wrote_header) {
        header_pack(pk, o->kind ? o->kind : "records", NULL, 0);
        record_writer_end_record(w);
    }
    free(buf);
    msgpack_sbuffer_destroy(&tmp);
    if (record_writer_close(w) < 0) hd_die("%s", hd_last_error());
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-cat");
    Options o = {.view = {.full_tensors = 0, .n_first = 8}, .head = -1};
    enum { OPT_FULL = 256, OPT_FIRST, OPT_HEADER, OPT_COUNT, OPT_HEAD, OPT_WHERE,
           OPT_TO_RECORDS, OPT_KIND, OPT_VERSION };
    static const struct option longopts[] = {
        {"full", no_argument, 0, OPT_FULL},         {"first", required_argument, 0, OPT_FIRST},
        {"header", no_argument, 0, OPT_HEADER},     {"count", no_argument, 0, OPT_COUNT},
        {"head", required_argument, 0, OPT_HEAD},   {"where", required_argument, 0, OPT_WHERE},
        {"to-records", no_argument, 0, OPT_TO_RECORDS}, {"kind", required_argument, 0, OPT_KIND},
        {"output", required_argument, 0, 'o'},      {"gzip", no_argument, 0, 'z'},
        {"help", no_argument, 0, 'h'},              {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:zh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FULL: o.view.full_tensors = 1; break;
        case OPT_FIRST: o.view.n_first = (int)hd_cli_parse_count("--first", optarg); break;
        case OPT_HEADER: o.header_only = 1; break;
        case OPT_COUNT: o.count_only = 1; break;
        case OPT_HEAD: o.head = hd_cli_parse_count("--head", optarg); break;
        case OPT_WHERE: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) hd_usage_error("--where: expected KEY=VALUE, got '%s'", optarg);
            o.where = hd_realloc(o.where, (size_t)(o.n_where + 1) * sizeof *o.where);
            o.where[o.n_where].key = hd_strndup(optarg, (size_t)(eq - optarg));
            o.where[o.n_where].value = eq + 1;
            o.n_where++;
            break;
        }
        case OPT_TO_RECORDS: o.to_records = 1; break;
        case OPT_KIND: o.kind = optarg; break;
        case 'o': o.output = optarg; break;
        case 'z': o.gzip = 1; break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    static char *stdin_only[] = {"-"};
    int nfiles = argc - optind;
    char **files = nfiles > 0 ? argv + optind : stdin_only;
    if (nfiles == 0) nfiles = 1;
    if (o.to_records) {
        if (o.header_only || o.count_only || o.head >= 0 || o.n_where || o.view.full_tensors)
            hd_usage_error("--to-records takes no viewing options");
        to_records(nfiles, files, &o);
    } else {
        if (o.gzip) hd_usage_error("-z applies to --to-records only");
        show(nfiles, files, &o);
    }
    for (int i = 0; i < o.n_where; i++) free(o.where[i].key);
    free(o.where);
    return 0;
}
