/* test_attest_tsm.c - the tsm provider (src/attest/tsm.c) against
 * tests/tools/fake_tsm: a FUSE file system that behaves like configfs-tsm's
 * report directory (mkdir makes the attributes, rmdir removes them, writes
 * bump generation). It is not the kernel: outblob is the real SEV-SNP report
 * or TDX quote of tests/fixtures/attestation/tsm, and the verifiers must then
 * accept what the provider returned. Also: report data zero-padded to 64
 * bytes, privlevel, a concurrent writer (generation jump) refused, a missing
 * or unknown provider refused, and the report directory removed every time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/provider.h"
#include "attest/snp.h"
#include "attest/tdx.h"
#include "attest/trust.h"
#include "attest_util.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define SNP_REPORT "tsm/snp-milan-report-go-sev-guest.bin"
#define TDX_QUOTE "tsm/tdx-quote-v4-spr-e4-go-tdx-guest.dat"

/* the fixtures' REPORT_DATA */
static const uint8_t snp_report_data[] = {1, 2, 3, 4, 5};
static const char tdx_report_data[] =
    "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dace"
    "ad6f0c87a6d766c66f6f29f8acb281f1113";

struct fake {
    char dir[64], mnt[80], log[80];
    pid_t pid;
};

static struct fake *running; /* stopped by teardown when a test fails */

/* Mounts fake_tsm serving the fixture outblob; provider NULL: no provider
 * attribute. Waits (10 s at most) until the mount is there. */
static void
fake_start(struct fake *f, const char *outblob, const char *provider, bool race)
{
    char blob[512];
    struct statfs sfs;

    snprintf(f->dir, sizeof(f->dir), "/tmp/test-attest-tsm-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->mnt, sizeof(f->mnt), "%s/report", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/log", f->dir);
    snprintf(blob, sizeof(blob), "%s/%s", ATTEST_FIXTURES, outblob);
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    if ((f->pid = fork()) == 0) {
        char *argv[10] = {FAKE_TSM, f->mnt, "--outblob", blob, "--log", f->log};
        int n = 6;
        if (provider != NULL) {
            argv[n++] = "--provider";
            argv[n++] = (char *)provider;
        }
        if (race)
            argv[n++] = "--race";
        argv[n] = NULL;
        setenv("ASAN_OPTIONS", "detect_leaks=0", 1); /* libfuse leaves some at exit */
        execv(FAKE_TSM, argv);
        _exit(127);
    }
    assert_true(f->pid > 0);
    running = f;
    for (int i = 0; i < 1000; i++) {
        if (statfs(f->mnt, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC)
            return;
        assert_int_equal(waitpid(f->pid, NULL, WNOHANG), 0); /* still running */
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    fail_msg("fake_tsm did not mount %s", f->mnt);
}

static void
fake_stop(struct fake *f)
{
    struct statfs sfs;

    running = NULL;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    for (int i = 0; i < 1000 && statfs(f->mnt, &sfs) == 0 && sfs.f_type == FUSE_SUPER_MAGIC; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    rmdir(f->mnt);
    unlink(f->log);
    rmdir(f->dir);
}

/* Reports left in the fake's directory. */
static int
reports_left(const struct fake *f)
{
    DIR *d = opendir(f->mnt);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* The fake's log, as one string (static). */
static const char *
fake_log(const struct fake *f)
{
    static char text[4096];
    FILE *fp = fopen(f->log, "r");
    size_t n;

    assert_non_null(fp);
    n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    return text;
}

/* How often needle occurs in text. */
static int
count(const char *text, const char *needle)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static int
get(const struct fake *f, const struct attest_provider_conf *base, const uint8_t *rd, size_t len,
    struct attest_evidence *ev, char *err)
{
    struct attest_provider_conf conf = *base;
    struct attest_request req = {.report_data = rd, .report_data_len = len};

    conf.tsm_dir = f->mnt;
    err[0] = '\0';
    return attest_provider_get(attest_provider_find("tsm"), &conf, &req, ev, err);
}

static void
test_snp(void **state)
{
    (void)state;
    static struct fake f; /* outlives a failed assertion, for teardown */
    struct attest_evidence ev;
    struct attest_provider_conf conf = {0};
    char err[ATTEST_ERR_MAX];
    size_t len;
    uint8_t *report = fixture(SNP_REPORT, &len);

    fake_start(&f, SNP_REPORT, "sev_guest", false);
    assert_int_equal(get(&f, &conf, snp_report_data, sizeof(snp_report_data), &ev, err), 0);
    assert_string_equal(ev.provider, "tsm");
    assert_int_equal(ev.kind, ATTEST_KIND_SNP);
    assert_false(ev.sim);
    assert_int_equal(ev.len, len);
    assert_memory_equal(ev.data, report, len);
    /* the report data went in as 64 bytes, zero-padded; the report is gone */
    char want[8 + 128 + 2] = "inblob 0102030405";
    memset(want + strlen(want), '0', 128 - 10);
    strcpy(want + 7 + 128, "\n");
    assert_non_null(strstr(fake_log(&f), want));
    assert_non_null(strstr(fake_log(&f), "rmdir airlock-"));
    assert_int_equal(reports_left(&f), 0);

    /* and the SNP verifier accepts what the provider returned */
    size_t n;
    uint8_t *der = fixture("tsm/snp-milan-vcek-go-sev-guest.der", &n);
    X509 *vcek = attest_x509_der(der, n);
    char *pem = (char *)fixture("tsm/snp-milan-ask-ark.pem", &n);
    STACK_OF(X509) *chain = attest_x509_pem(pem, n), *ark = sk_X509_new_null();
    sk_X509_push(ark, sk_X509_pop(chain)); /* ASK, then ARK */
    struct attest_policy pol = {.now = utc(2023, 1, 1, 0, 0, 0), .roots = ark, .allow_debug = true};
    struct attest_claims *c = calloc(1, sizeof(*c));
    pol.user_data.present = true;
    pol.user_data.len = sizeof(snp_report_data);
    memcpy(pol.user_data.data, snp_report_data, sizeof(snp_report_data));
    assert_int_equal(attest_snp_verify(ev.data, ev.len, vcek, chain, &pol, c, err), ATTEST_OK);
    pol.user_data.data[0] ^= 1;
    assert_int_equal(attest_snp_verify(ev.data, ev.len, vcek, chain, &pol, c, err), ATTEST_POLICY);

    attest_evidence_free(&ev);
    attest_evidence_free(&ev); /* idempotent */
    assert_null(ev.data);
    free(c);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(ark, X509_free);
    X509_free(vcek);
    free(der);
    free(pem);
    free(report);
    fake_stop(&f);
}

static void
test_tdx_privlevel(void **state)
{
    (void)state;
    static struct fake f; /* outlives a failed assertion, for teardown */
    struct attest_evidence ev;
    struct attest_provider_conf conf = {.tsm_privlevel_set = true, .tsm_privlevel = 2};
    char err[ATTEST_ERR_MAX];
    uint8_t rd[64];
    size_t n = unhex(tdx_report_data, rd, sizeof(rd));

    fake_start(&f, TDX_QUOTE, "tdx_guest", false);
    /* two writes (inblob, privlevel): generation moves by two, no more */
    assert_int_equal(get(&f, &conf, rd, n, &ev, err), 0);
    assert_int_equal(ev.kind, ATTEST_KIND_TDX);
    assert_non_null(strstr(fake_log(&f), "privlevel 2\n"));
    assert_int_equal(reports_left(&f), 0);

    struct attest_policy pol = {.now = utc(2024, 1, 1, 0, 0, 0)};
    struct attest_claims *c = calloc(1, sizeof(*c));
    pol.user_data.present = true;
    pol.user_data.len = n;
    memcpy(pol.user_data.data, rd, n);
    assert_int_equal(attest_tdx_verify(ev.data, ev.len, &pol, c, err), ATTEST_OK);
    assert_memory_equal(c->report_data, rd, 64);
    free(c);
    attest_evidence_free(&ev);
    fake_stop(&f);
}

static void
test_refusals(void **state)
{
    (void)state;
    static struct fake f; /* outlives a failed assertion, for teardown */
    struct attest_evidence ev;
    struct attest_provider_conf conf = {0};
    char err[ATTEST_ERR_MAX];

    /* another writer between our inblob and our outblob */
    fake_start(&f, SNP_REPORT, "sev_guest", true);
    assert_int_equal(get(&f, &conf, snp_report_data, 5, &ev, err), -EBUSY);
    assert_string_equal(err, "tsm: generation went from 0 to 2 over our 1 write(s): another "
                             "writer changed the request");
    assert_null(ev.data);
    assert_int_equal(reports_left(&f), 0);
    fake_stop(&f);

    /* no provider attribute */
    fake_start(&f, SNP_REPORT, NULL, false);
    assert_int_equal(get(&f, &conf, NULL, 0, &ev, err), -ENOENT);
    assert_string_equal(err, "tsm: provider: No such file or directory");
    assert_null(ev.data);
    assert_int_equal(reports_left(&f), 0);
    fake_stop(&f);

    /* a provider we do not know */
    fake_start(&f, SNP_REPORT, "arm_cca_guest", false);
    assert_int_equal(get(&f, &conf, NULL, 0, &ev, err), -ENOTSUP);
    assert_non_null(strstr(err, "\"arm_cca_guest\" is not supported"));
    assert_int_equal(reports_left(&f), 0);
    /* a request tsm cannot carry: refused before any report is made */
    uint8_t big[65] = {0};
    assert_int_equal(get(&f, &conf, big, sizeof(big), &ev, err), -EINVAL);
    struct attest_request req = {.nonce = big, .nonce_len = 1};
    assert_int_equal(attest_provider_get(&attest_provider_tsm, &conf, &req, &ev, err), -EINVAL);
    assert_int_equal(count(fake_log(&f), "mkdir airlock-"), 1); /* the unknown provider's */
    fake_stop(&f);

    /* no such directory */
    conf.tsm_dir = "/nonexistent-attest-tsm";
    struct attest_request none = {0};
    assert_int_equal(attest_provider_get(&attest_provider_tsm, &conf, &none, &ev, err), -ENOENT);
    assert_string_equal(err, "tsm: /nonexistent-attest-tsm: No such file or directory");
}

static int
teardown(void **state)
{
    (void)state;
    if (running != NULL)
        fake_stop(running);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_snp, teardown),
        cmocka_unit_test_teardown(test_tdx_privlevel, teardown),
        cmocka_unit_test_teardown(test_refusals, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
