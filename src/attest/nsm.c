/* nsm.c - the nitro provider: an Attestation request to the Nitro Secure
 * Module through its device (/dev/nsm).
 *
 * The ABI and encoding come from aws/aws-nitro-enclaves-nsm-api (commit
 * 8785071d7f94): src/driver/mod.rs sends a `struct nsm_message { struct
 * iovec request; struct iovec response; }` with ioctl _IOWR(0x0A, 0,
 * struct nsm_message), requests up to 0x1000 bytes, responses up to 0x3000,
 * the driver setting response.iov_len to what it wrote (Linux
 * include/uapi/linux/nsm.h has the same layout as struct nsm_raw). Requests
 * and responses are serde_cbor encodings of src/api/mod.rs's Request and
 * Response enums: an enum is a map of one entry, variant name -> fields; a
 * struct is a map with its field names as text keys in declaration order;
 * Option::None is null; ByteBuf is a byte string; a unit variant (ErrorCode)
 * is its name as text. So the request is
 *   {"Attestation": {"user_data": bstr|null, "nonce": bstr|null,
 *                    "public_key": bstr|null}}
 * and the response {"Attestation": {"document": bstr}} or {"Error": "..."}.
 * This machine has no NSM: the device part below is all that is not tested
 * (tests/unit/test_attest_nsm.c tests encoding and decoding). */
#include "attest/nsm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "attest/nitro.h"

struct nsm_message {
    struct iovec request;
    struct iovec response;
};

#define NSM_IOCTL_MSG _IOWR(0x0A, 0, struct nsm_message)
#define NSM_ERROR_NAME_MAX 64

/* Appends a text string; returns false when out lacks room. */
static bool
put_text(uint8_t *out, size_t cap, size_t *n, const char *s)
{
    size_t len = strlen(s);

    if (cap - *n < 9 + len)
        return false;
    *n += attest_cbor_head(out + *n, 3, len);
    memcpy(out + *n, s, len);
    *n += len;
    return true;
}

/* Appends key: bstr, or key: null when data is NULL. */
static bool
put_field(uint8_t *out, size_t cap, size_t *n, const char *key, const uint8_t *data, size_t len)
{
    if (!put_text(out, cap, n, key) || cap - *n < 9 + len)
        return false;
    if (data == NULL) {
        out[(*n)++] = 0xf6; /* null */
        return true;
    }
    *n += attest_cbor_head(out + *n, 2, len);
    memcpy(out + *n, data, len);
    *n += len;
    return true;
}

size_t
attest_nsm_encode(const struct attest_request *req, uint8_t *out, size_t cap)
{
    size_t n = 0;

    if (cap < 2)
        return 0;
    n += attest_cbor_head(out + n, 5, 1);
    if (!put_text(out, cap, &n, "Attestation") || cap - n < 1)
        return 0;
    n += attest_cbor_head(out + n, 5, 3);
    if (!put_field(out, cap, &n, "user_data", req->report_data, req->report_data_len) ||
        !put_field(out, cap, &n, "nonce", req->nonce, req->nonce_len) ||
        !put_field(out, cap, &n, "public_key", req->public_key, req->public_key_len))
        return 0;
    return n;
}

/* The value under key in a map with text keys, or NULL. */
static cbor_item_t *
map_get(const cbor_item_t *map, const char *key)
{
    struct cbor_pair *pairs = cbor_map_handle(map);

    for (size_t i = 0; i < cbor_map_size(map); i++)
        if (attest_cbor_is_text(pairs[i].key, key))
            return pairs[i].value;
    return NULL;
}

int
attest_nsm_decode(const uint8_t *resp, size_t len, uint8_t **doc, size_t *doc_len, char *err)
{
    cbor_item_t *it = attest_cbor_decode(resp, len, "nitro: NSM response", err);
    cbor_item_t *v, *d;
    int e = -EPROTO;

    *doc = NULL;
    if (it == NULL)
        return -EPROTO;
    if (!cbor_isa_map(it) || cbor_map_size(it) != 1) {
        attest_provider_fail(err, e, "nitro: NSM response is not a map of one entry");
        goto out;
    }
    if ((v = map_get(it, "Error")) != NULL) {
        char name[NSM_ERROR_NAME_MAX + 1] = "?";
        if (cbor_isa_string(v) && cbor_string_is_definite(v) &&
            cbor_string_length(v) <= NSM_ERROR_NAME_MAX) {
            memcpy(name, cbor_string_handle(v), cbor_string_length(v));
            name[cbor_string_length(v)] = '\0';
            for (char *p = name; *p != '\0'; p++)
                if (*p < 0x20 || *p > 0x7e)
                    *p = '?';
        }
        e = attest_provider_fail(err, -EIO, "nitro: NSM error %s", name);
        goto out;
    }
    if ((v = map_get(it, "Attestation")) == NULL || !cbor_isa_map(v) ||
        (d = map_get(v, "document")) == NULL || !attest_cbor_is_bytes(d) ||
        cbor_bytestring_length(d) == 0) {
        attest_provider_fail(err, e, "nitro: NSM response holds no attestation document");
        goto out;
    }
    if ((*doc = malloc(cbor_bytestring_length(d))) == NULL) {
        e = attest_provider_fail(err, -ENOMEM, "nitro: out of memory");
        goto out;
    }
    memcpy(*doc, cbor_bytestring_handle(d), cbor_bytestring_length(d));
    *doc_len = cbor_bytestring_length(d);
    e = 0;
out:
    cbor_decref(&it);
    return e;
}

static int
nsm_get(const struct attest_provider_conf *conf, const struct attest_request *req,
        struct attest_evidence *ev, char *err)
{
    const char *path = conf->nsm_device != NULL ? conf->nsm_device : ATTEST_NSM_DEVICE;
    uint8_t request[NSM_REQUEST_MAX];
    uint8_t *response = malloc(NSM_RESPONSE_MAX);
    struct nsm_message msg;
    size_t n = attest_nsm_encode(req, request, sizeof(request));
    int fd = -1, e;

    if (response == NULL)
        return attest_provider_fail(err, -ENOMEM, "nitro: out of memory");
    if (n == 0) {
        e = attest_provider_fail(err, -EMSGSIZE, "nitro: request over %d bytes", NSM_REQUEST_MAX);
        goto out;
    }
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
        e = attest_provider_fail(err, -errno, "nitro: %s: %s", path, strerror(errno));
        goto out;
    }
    msg.request = (struct iovec){.iov_base = request, .iov_len = n};
    msg.response = (struct iovec){.iov_base = response, .iov_len = NSM_RESPONSE_MAX};
    if (ioctl(fd, NSM_IOCTL_MSG, &msg) != 0) {
        e = attest_provider_fail(err, -errno, "nitro: %s: NSM request: %s", path, strerror(errno));
        goto out;
    }
    if (msg.response.iov_len > NSM_RESPONSE_MAX) {
        e = attest_provider_fail(err, -EPROTO, "nitro: NSM response over %d bytes",
                                 NSM_RESPONSE_MAX);
        goto out;
    }
    e = attest_nsm_decode(response, msg.response.iov_len, &ev->data, &ev->len, err);
    ev->kind = ATTEST_KIND_NITRO;
out:
    if (fd >= 0)
        close(fd);
    free(response);
    return e;
}

const struct attest_provider attest_provider_nitro = {
    .name = "nitro",
    .takes_nonce = true,
    .get = nsm_get,
};
