/* attest_guarded.h - how the verifier tests call attest_verify(): the
 * evidence is copied right before an unreadable page (guard.h), so that a
 * read past its end faults, and a refusal must say why in one line.
 * Include after cmocka.h. */
#ifndef AIRLOCK_TESTS_ATTEST_GUARDED_H
#define AIRLOCK_TESTS_ATTEST_GUARDED_H

#include <string.h>

#include "attest/policy.h"
#include "guard.h"

static inline enum attest_result
verify_guarded(enum attest_kind kind, const uint8_t *evidence, size_t len, X509 *vcek,
               STACK_OF(X509) * chain, const struct attest_policy *pol,
               struct attest_claims *claims, char *err)
{
    struct guard g;
    uint8_t *p = guard_copy(&g, evidence, len);

    err[0] = '\0';
    enum attest_result r = attest_verify(kind, p, len, vcek, chain, pol, claims, err);
    guard_free(&g);
    if (r != ATTEST_OK && (err[0] == '\0' || strchr(err, '\n') != NULL))
        fail_msg("refusal %d without a one-line reason", r);
    return r;
}

#endif
