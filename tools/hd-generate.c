/* hd-generate: greedy continuations of prompts, for people and debugging.
 *
 *   hd-generate [options] PROMPT...     one continuation per prompt
 *   hd-generate [options] < prompts     one prompt per input line */
#include "base/cli.h"
#include "base/error.h"
#include "model/llama_generate.h"
#include "model/target_model.h"
#include "tokenizer/tokenizer.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    printf(
        "Usage: hd-generate [options] [PROMPT...]\n"
        "Greedy continuation of each PROMPT (or of each line of stdin) by the target\n"
        "model, one output line per prompt: the continuation, with newlines shown as \\n.\n"
        "\n"
        "  -m, --model PATH   GGUF file or Hugging Face directory (default: $HD_MODEL,\n"
        "                     else the SmolLM2 of 'make model')\n"
        "  -n, --tokens N     new tokens per prompt (default 16)\n"
        "  -b, --batch N      prompts per batch (default 8)\n"
        "      --echo         print the prompt before its continuation\n"
        "      --ids          print token ids (prompt and continuation) instead of text\n"
        "      --no-bos       do not prepend the model's BOS token\n"
        "      --no-stop      do not stop at the end-of-sequence token\n"
        "  -t, --threads N    CPU threads (default: all)\n"
        "  -h, --help         this text\n"
        "      --version      version\n");
}

typedef struct {
    int n_new, echo, ids, stop;
} Options;

static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') fputs("\\n", stdout);
        else if (s[i] == '\\') fputs("\\\\", stdout);
        else putchar(s[i]);
    }
}

static void run_batch(const TargetModel *t, char **prompts, int n, const Options *o)
{
    int32_t **seq = hd_malloc((size_t)n * sizeof *seq);
    int *len = hd_malloc((size_t)n * sizeof *len);
    int T = 1;
    for (int i = 0; i < n; i++) {
        if (target_model_encode(t, prompts[i], strlen(prompts[i]), &seq[i], &len[i], NULL, NULL) < 0)
            hd_die("prompt %d: %s", i + 1, hd_last_error());
        if (len[i] == 0) hd_die("prompt %d is empty and the model has no BOS", i + 1);
        if (len[i] > T) T = len[i];
        if (target_model_check_max_len(t, (long long)len[i] + o->n_new, "the prompt plus --tokens") < 0)
            hd_die("prompt %d: %d tokens: %s", i + 1, len[i], hd_last_error());
    }
    int *ids = hd_calloc((size_t)n * T, sizeof *ids), *mask = hd_calloc((size_t)n * T, sizeof *mask);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < len[i]; j++) {
            ids[i * T + T - len[i] + j] = seq[i][j];
            mask[i * T + T - len[i] + j] = 1;
        }
    int *out = hd_malloc((size_t)n * o->n_new * sizeof *out);
    const LlamaConfig *cfg = &t->model.cfg;
    int n_stop = o->stop ? cfg->n_eos_token_ids : 0;
    if (llama_generate_greedy(&t->model, ids, mask, n, T, o->n_new, cfg->eos_token_ids, n_stop, out) < 0)
        hd_die("%s", hd_last_error());
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < o->n_new && out[i * o->n_new + k] >= 0) k++;
        if (o->ids) {
            for (int j = 0; j < len[i]; j++) printf("%s%d", j ? " " : "", seq[i][j]);
            printf("\t");
            for (int j = 0; j < k; j++) printf("%s%d", j ? " " : "", out[i * o->n_new + j]);
        } else {
            if (o->echo) print_escaped(prompts[i], strlen(prompts[i]));
            size_t tl;
            char *text = tokenizer_decode(t->tok, out + (size_t)i * o->n_new, (size_t)k, 1, &tl);
            print_escaped(text, tl);
            free(text);
        }
        putchar('\n');
        free(seq[i]);
    }
    fflush(stdout);
    free(seq);
    free(len);
    free(ids);
    free(mask);
    free(out);
}

int main(int argc, char **argv)
{
    hd_cli_init(argc, argv, "hd-generate");
    Options o = {.n_new = 16, .stop = 1};
    const char *model = NULL;
    int batch = 8, use_bos = 1;
    enum { OPT_ECHO = 256, OPT_IDS, OPT_NO_BOS, OPT_NO_STOP, OPT_VERSION };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"tokens", required_argument, 0, 'n'},
        {"batch", required_argument, 0, 'b'},   {"echo", no_argument, 0, OPT_ECHO},
        {"ids", no_argument, 0, OPT_IDS},       {"no-bos", no_argument, 0, OPT_NO_BOS},
        {"no-stop", no_argument, 0, OPT_NO_STOP}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},          {"version", no_argument, 0, OPT_VERSION},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:n:b:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'n': o.n_new = (int)hd_cli_parse_count("--tokens", optarg); break;
        case 'b': batch = (int)hd_cli_parse_count("--batch", optarg); break;
        case OPT_ECHO: o.echo = 1; break;
        case OPT_IDS: o.ids = 1; break;
        case OPT_NO_BOS: use_bos = 0; break;
        case OPT_NO_STOP: o.stop = 0; break;
        case 't': hd_set_threads((int)hd_cli_parse_count("--threads", optarg)); break;
        case 'h': usage(); return 0;
        case OPT_VERSION: hd_cli_print_version(); return 0;
        default: hd_usage_error("unknown option");
        }
    }
    if (o.n_new < 1 || batch < 1) hd_usage_error("--tokens and --batch must be at least 1");
    TargetModel t;
    const char *path = target_model_resolve(model);
    if (!path || target_model_load(&t, path, use_bos) < 0) hd_die("%s", hd_last_error());
    /* the KV cache holds prompt + --tokens positions for every row */
    if (target_model_check_max_len(&t, o.n_new, "--tokens") < 0) hd_usage_error("%s", hd_last_error());
    if (optind < argc) {
        for (int i = optind; i < argc; i += batch)
            run_batch(&t, argv + i, argc - i < batch ? argc - i : batch, &o);
    } else {
        char **lines = hd_malloc((size_t)batch * sizeof *lines);
        int n = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
            lines[n++] = hd_strdup(line);
            if (n == batch) {
                run_batch(&t, lines, n, &o);
                while (n) free(lines[--n]);
            }
        }
        if (n) run_batch(&t, lines, n, &o);
        while (n) free(lines[--n]);
        free(line);
        free(lines);
    }
    target_model_free(&t);
    return 0;
}
