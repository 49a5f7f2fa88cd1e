/* field.c - `airlock field encrypt|decrypt|rewrap` (docs/field-encryption.md
 * "Keys"): the rewriter of src/field/ on one JSON document, for rotation
 * (rewrap re-encrypts every token under the keyset's primary key), scripts
 * and the demo. The rewritten document goes to stdout, nothing else does; a
 * refusal is one line on stderr. */
#include "cli/field.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/closest.h"
#include "field/field.h"

#define INPUT_MAX ((size_t)256 << 20)
#define READ_CHUNK 65536

static void
field_usage(FILE *f)
{
    fprintf(f, "usage: airlock field encrypt --keys FILE --path PATH... [--deterministic PATH]...\n"
               "           [FILE|-]\n"
               "       airlock field decrypt --keys FILE [FILE|-]\n"
               "       airlock field rewrap --keys FILE [FILE|-]\n"
               "  encrypt: each value a PATH names becomes a token under the primary key\n"
               "  (--deterministic: equal values give equal tokens, AES-SIV);\n"
               "  decrypt: each token becomes its value again; rewrap: each token is\n"
               "  re-encrypted under the primary key (after a rotation). Output on stdout.\n");
}

/* Appends the whole of path ("-": stdin), at most INPUT_MAX bytes. */
static int
read_input(const char *path, struct strbuf *sb)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
    int rc = 0;
    size_t n;
    char *p;

    if (f == NULL)
        return -errno;
    while ((p = strbuf_room(sb, READ_CHUNK)) != NULL && (n = fread(p, 1, READ_CHUNK, f)) > 0)
        if ((sb->len += n) > INPUT_MAX)
            break;
    if (p == NULL)
        rc = -ENOMEM;
    else if (ferror(f))
        rc = -EIO;
    else if (sb->len > INPUT_MAX)
        rc = -EFBIG;
    if (f != stdin)
        fclose(f);
    return rc;
}

int
cmd_field(int argc, char **argv)
{
    static const struct option opts[] = {
        {"keys", required_argument, NULL, 'k'},
        {"path", required_argument, NULL, 'p'},
        {"deterministic", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct field_rule_spec specs[FIELD_RULES_MAX];
    struct field_rules *rules = NULL;
    struct field_keyset *ks = NULL;
    struct strbuf in = {0}, out = {0};
    const char *keys = NULL, *sub = argc > 1 ? argv[1] : "";
    char err[FIELD_ERR_MAX];
    size_t n = 0;
    int opt, status = 2;

    bool enc = strcmp(sub, "encrypt") == 0, dec = strcmp(sub, "decrypt") == 0;
    if (argc == 2 && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        field_usage(stdout);
        return 0;
    }
    if (!enc && !dec && strcmp(sub, "rewrap") != 0) {
        static const char *const subs[] = {"encrypt", "decrypt", "rewrap"};
        if (argc > 1)
            closest_unknown(stderr, "airlock field", "subcommand", sub, subs, 3);
        field_usage(stderr);
        return 2;
    }
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "k:p:d:h", opts, NULL)) != -1) {
        if (opt == 'k') {
            keys = optarg;
        } else if ((opt == 'p' || opt == 'd') && enc) {
            if (n == FIELD_RULES_MAX) {
                fprintf(stderr, "airlock field: at most %d paths\n", FIELD_RULES_MAX);
                return 2;
            }
            specs[n++] = (struct field_rule_spec){optarg, opt == 'd'};
        } else {
            if (opt != 'h')
                closest_option_hint(stderr, "airlock field", argv[optind], opts);
            field_usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    const char *file = optind == argc - 1 ? "-" : optind == argc - 2 ? argv[optind + 1] : NULL;
    if (keys == NULL || file == NULL || (enc && n == 0)) {
        fprintf(stderr, "airlock field %s: %s\n", sub,
                keys == NULL   ? "--keys FILE is required"
                : file == NULL ? "one FILE (or -) at most"
                               : "at least one --path or --deterministic");
        return 2;
    }
    if (enc && field_rules_compile(specs, n, &rules, err) != 0) {
        fprintf(stderr, "airlock field encrypt: %s\n", err);
        return 2;
    }
    status = 1;
    if (field_keyset_load(keys, &ks, err) != 0) {
        fprintf(stderr, "airlock field %s: keys %s\n", sub, err);
        goto done;
    }
    int e = read_input(file, &in);
    if (e != 0) {
        fprintf(stderr, "airlock field %s: %s: %s\n", sub, file,
                e == -EFBIG ? "larger than 256 MiB" : strerror(-e));
        goto done;
    }
    enum field_result r = enc   ? field_encrypt_body(rules, ks, in.data, in.len, 0, &out, NULL, err)
                          : dec ? field_decrypt_body(ks, in.data, in.len, &out, NULL, err)
                                : field_rewrap_body(ks, in.data, in.len, &out, NULL, err);
    if (r != FIELD_OK) {
        fprintf(stderr, "airlock field %s: %s: %s (%s)\n", sub, file, err, field_result_name(r));
        goto done;
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "airlock field %s: stdout: %s\n", sub, strerror(errno));
        goto done;
    }
    status = 0;
done:
    strbuf_free(&in);
    strbuf_free(&out);
    field_rules_free(&rules);
    field_keyset_free(&ks);
    return status;
}
