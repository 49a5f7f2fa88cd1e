/* fuzz_attest_nsm.c - libFuzzer harness for the decoder of the Nitro Secure
 * Module's responses (attest/nsm.h): any input is an attestation document
 * that lies inside it, an Error, or refused with a one-line reason; never a
 * crash. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attest/nsm.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    char err[ATTEST_ERR_MAX] = "";

    int rc = attest_nsm_decode(data, size, &doc, &doc_len, err);
    check(rc == 0 || rc == -EIO || rc == -EPROTO);
    check(rc == 0 ? doc != NULL && doc_len <= size : err[0] != '\0' && !strchr(err, '\n'));
    free(doc);
    return 0;
}
