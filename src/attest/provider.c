/* provider.c - the provider table and what every provider shares
 * (provider.h). */
#include "attest/provider.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct attest_provider *const providers[] = {
    &attest_provider_nitro,
    &attest_provider_tsm,
    &attest_provider_sim,
};

const struct attest_provider *
attest_provider_find(const char *name)
{
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
        if (strcmp(providers[i]->name, name) == 0)
            return providers[i];
    return NULL;
}

int
attest_provider_fail(char *err, int e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, ATTEST_ERR_MAX, fmt, ap);
    va_end(ap);
    return e;
}

int
attest_request_check(const struct attest_provider *p, const struct attest_request *req, char *err)
{
    if (req->report_data_len > ATTEST_REPORT_DATA_LEN)
        return attest_provider_fail(err, -EINVAL, "%s: report data is %zu bytes (at most %d)",
                                    p->name, req->report_data_len, ATTEST_REPORT_DATA_LEN);
    if (!p->takes_nonce && (req->nonce != NULL || req->public_key != NULL))
        return attest_provider_fail(
            err, -EINVAL, "%s: no nonce or public key (bind them in the report data)", p->name);
    if (req->nonce_len > ATTEST_BLOB_MAX || req->public_key_len > ATTEST_BLOB_MAX)
        return attest_provider_fail(err, -EINVAL, "%s: nonce or public key over %d bytes", p->name,
                                    ATTEST_BLOB_MAX);
    return 0;
}

int
attest_provider_get(const struct attest_provider *p, const struct attest_provider_conf *conf,
                    const struct attest_request *req, struct attest_evidence *ev, char *err)
{
    int e;

    memset(ev, 0, sizeof(*ev));
    if ((e = attest_request_check(p, req, err)) != 0)
        return e;
    e = p->get(conf, req, ev, err);
    if (e == 0)
        ev->provider = p->name;
    return e;
}

void
attest_evidence_free(struct attest_evidence *ev)
{
    free(ev->data);
    ev->data = NULL;
    ev->len = 0;
}
