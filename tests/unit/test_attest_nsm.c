/* test_attest_nsm.c - the nitro provider's NSM messages (nsm.h): the
 * Attestation request it encodes, byte for byte as the nsm-api's serde_cbor
 * encodes it, and the response it decodes around a real attestation document
 * (tests/fixtures/attestation/nitro), an Error response, garbage and every
 * truncation. The device itself (/dev/nsm) does not exist here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/nitro.h"
#include "attest/nsm.h"
#include "attest_util.h"
#include "guard.h"

/* Printed by serde_cbor 0.11.2 (Debian librust-serde-cbor-dev) for the
 * nsm-api's Request::Attestation (src/api/mod.rs, aws-nitro-enclaves-nsm-api
 * 8785071d7f94) with user_data Some(b"abc"), nonce None, public_key
 * Some([1, 2]); then with all three None. */
static const char req_abc[] =
    "a16b4174746573746174696f6ea369757365725f6461746143616263656e6f6e6365f6"
    "6a7075626c69635f6b6579420102";
static const char req_none[] = "a16b4174746573746174696f6ea369757365725f64617461f6656e6f6e6365f66a"
                               "7075626c69635f6b6579f6";
/* Response::Error(ErrorCode::InvalidArgument), and the framing serde_cbor
 * puts around a document in Response::Attestation (here the 2-byte b"\xd2\x84"). */
static const char resp_error[] = "a1654572726f726f496e76616c6964417267756d656e74";
static const char resp_head[] = "a16b4174746573746174696f6ea168646f63756d656e74";

static uint8_t buf[NSM_RESPONSE_MAX];

static void
test_encode(void **state)
{
    (void)state;
    uint8_t out[NSM_REQUEST_MAX], want[256];
    const uint8_t key[2] = {1, 2};
    struct attest_request req = {.report_data = (const uint8_t *)"abc",
                                 .report_data_len = 3,
                                 .public_key = key,
                                 .public_key_len = 2};
    size_t n = attest_nsm_encode(&req, out, sizeof(out));

    assert_int_equal(n, unhex(req_abc, want, sizeof(want)));
    assert_memory_equal(out, want, n);
    req = (struct attest_request){0};
    n = attest_nsm_encode(&req, out, sizeof(out));
    assert_int_equal(n, unhex(req_none, want, sizeof(want)));
    assert_memory_equal(out, want, n);

    /* 64 bytes of report data take a one-byte length (58 40), a 300-byte
     * key two (59 01 2c), as serde_cbor writes them (checked the same way) */
    uint8_t rd[64], nonce[24], pk[300];
    memset(rd, 0x55, sizeof(rd));
    memset(nonce, 0xaa, sizeof(nonce));
    memset(pk, 0x30, sizeof(pk));
    req = (struct attest_request){.report_data = rd,
                                  .report_data_len = 64,
                                  .nonce = nonce,
                                  .nonce_len = 24,
                                  .public_key = pk,
                                  .public_key_len = 300};
    n = attest_nsm_encode(&req, out, sizeof(out));
    assert_int_equal(n, 436); /* serde_cbor's length */
    assert_memory_equal(out + 24, "\x58\x40\x55", 3);
    assert_memory_equal(out + 24 + 66, "\x65nonce\x58\x18\xaa", 9);
    assert_memory_equal(out + 436 - 300 - 3, "\x59\x01\x2c", 3);
    /* too small a buffer: nothing, never an overflow */
    for (size_t cap = 0; cap < 436; cap++)
        assert_int_equal(attest_nsm_encode(&req, out, cap), 0);
}

/* Decodes resp from right before a guard page. */
static int
decode(const uint8_t *resp, size_t len, uint8_t **doc, size_t *doc_len, char *err)
{
    struct guard g;
    uint8_t *p = guard_copy(&g, resp, len);
    int e = attest_nsm_decode(p, len, doc, doc_len, err);

    guard_free(&g);
    return e;
}

static void
test_decode_document(void **state)
{
    (void)state;
    size_t doc_len, n = unhex(resp_head, buf, sizeof(buf)), out_len = 0;
    uint8_t *doc = fixture("nitro/anjuna-full-2024-01-24.cbor", &doc_len), *out = NULL;
    char err[ATTEST_ERR_MAX] = "";

    n += attest_cbor_head(buf + n, 2, doc_len);
    memcpy(buf + n, doc, doc_len);
    n += doc_len;
    assert_int_equal(decode(buf, n, &out, &out_len, err), 0);
    assert_int_equal(out_len, doc_len);
    assert_memory_equal(out, doc, doc_len);

    /* what the provider returns is the real document: the verifier takes it
     * (a debug-mode enclave's) */
    struct attest_policy pol = {.now = utc(2024, 1, 24, 19, 0, 0), .allow_debug = true};
    struct attest_claims *c = calloc(1, sizeof(*c));
    assert_int_equal(attest_nitro_verify(out, out_len, &pol, c, err), ATTEST_OK);
    assert_string_equal(c->module_id, "i-0e4fe5de7ee5abe78-enc018d3cadd7d66279");
    free(c);
    free(out);

    /* every truncation is refused, never read past */
    for (size_t i = 0; i < n; i++) {
        out = NULL;
        assert_int_equal(decode(buf, i, &out, &out_len, err), -EPROTO);
        assert_null(out);
        assert_true(err[0] != '\0');
    }
    /* and so is a byte after it */
    buf[n] = 0;
    assert_int_equal(decode(buf, n + 1, &out, &out_len, err), -EPROTO);
    free(doc);
}

static void
test_decode_refusals(void **state)
{
    (void)state;
    uint8_t *out = NULL;
    size_t out_len, n = unhex(resp_error, buf, sizeof(buf));
    char err[ATTEST_ERR_MAX];

    assert_int_equal(decode(buf, n, &out, &out_len, err), -EIO);
    assert_string_equal(err, "nitro: NSM error InvalidArgument");
    assert_null(out);

    struct {
        const char *hex, *why;
    } bad[] = {
        {"", "nitro: NSM response: not well-formed CBOR"},
        {"00", "nitro: NSM response is not a map of one entry"},
        {"a0", "nitro: NSM response is not a map of one entry"},
        {"ffffffff", "nitro: NSM response: not well-formed CBOR"},
        /* a map that declares 2^32 entries in 5 bytes */
        {"ba ffffffff", "nitro: NSM response: not well-formed CBOR"},
        /* {"GetRandom": {"random": h'00'}}: not an attestation */
        {"a16947657452616e646f6da16672616e646f6d4100",
         "nitro: NSM response holds no attestation document"},
        /* {"Attestation": {"document": "text"}} */
        {"a16b4174746573746174696f6ea168646f63756d656e746474657874",
         "nitro: NSM response holds no attestation document"},
        /* {"Attestation": {"document": h''}} */
        {"a16b4174746573746174696f6ea168646f63756d656e7440",
         "nitro: NSM response holds no attestation document"},
        /* {"Error": 1}: still an error, its name unknown */
        {"a1654572726f7201", "nitro: NSM error ?"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char hex[128];
        size_t k = 0;
        for (const char *p = bad[i].hex; *p != '\0'; p++)
            if (*p != ' ')
                hex[k++] = *p;
        hex[k] = '\0';
        n = unhex(hex, buf, sizeof(buf));
        out = NULL;
        int e = decode(buf, n, &out, &out_len, err);
        assert_true(e == -EPROTO || e == -EIO);
        assert_null(out);
        assert_string_equal(err, bad[i].why);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode_document),
        cmocka_unit_test(test_decode_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
