/* tdx_collateral.h - Intel's collateral for TDX quotes (docs/attestation.md,
 * "TDX collateral"), as the Intel PCS API v4 (or a PCCS) serves it, read
 * from one directory that scripts/tdx-collateral.sh fills:
 *
 *   tcb_info*.json   the TDX TCB Info of a platform model (FMSPC), one file
 *                    each: GET /tdx/certification/v4/tcb?fmspc=FMSPC
 *   qe_identity.json the TD quoting enclave's identity:
 *                    GET /tdx/certification/v4/qe/identity
 *   tcb_chain.pem    the chain of Intel's TCB signing key, which signs
 *                    both (their TCB-Info-Issuer-Chain header)
 *   pck_crl*.der     the CRL of a PCK CA (platform, processor):
 *                    GET /sgx/certification/v4/pckcrl?ca=platform&encoding=der
 *   root_crl*.der    the CRL of the Intel SGX Root CA (and of another root
 *                    the policy pins); every CRL is found by its issuer
 *
 * Loading parses every file and checks the JSON signatures by the signing
 * key; what depends on the time (validity windows, the signing chain, the
 * CRLs') is judged per quote, at the policy's now. */
#ifndef AIRLOCK_ATTEST_TDX_COLLATERAL_H
#define AIRLOCK_ATTEST_TDX_COLLATERAL_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest/claims.h"

#define TDX_COLLATERAL_FILE_MAX (1024 * 1024) /* bytes of one file */
#define TDX_COLLATERAL_TCB_INFOS 32           /* tcb_info*.json files */
#define TDX_COLLATERAL_CRLS 8                 /* pck_crl*.der and root_crl*.der files */

struct tdx_collateral;

/* Loads the collateral in dir. Returns 0 with *out (free with
 * tdx_collateral_free), or -errno with "DIR/FILE: what is wrong" in err
 * (ATTEST_ERR_MAX bytes): a file missing, not a regular file, not
 * well-formed, or a JSON signature that does not verify. */
int tdx_collateral_load(const char *dir, struct tdx_collateral **out, char *err);

/* Whether the directory or a file read from it changed since the load (a
 * reload then loads it again). */
bool tdx_collateral_changed(const struct tdx_collateral *col);

void tdx_collateral_free(struct tdx_collateral *col);

/* Judges a TDX quote whose signatures and PCK chain verified: chain is its
 * PCK chain (leaf first, then its issuing CA), body its TD report body, qe
 * its QE report. At pol->now: the TCB signing chain to the Intel root
 * (pol->roots, else the pinned one) and every validity window; no
 * certificate of either chain in its CRL; the TCB Info of the PCK's FMSPC
 * and PCE ID, the TDX module's signer and attributes, the platform's TCB
 * level (its SGX components and PCESVN from the PCK certificate, its TDX
 * components from TEE_TCB_SVN; of a TDX 1.5 report from TEE_TCB_SVN2 as
 * well, each status held to the policy); the quoting enclave against the
 * QE Identity and its level. Fills claims' tcb fields. Returns ATTEST_OK,
 * ATTEST_UNTRUSTED (not Intel's, out of date collateral, revoked
 * certificates, no level matches), or ATTEST_POLICY (a status not in
 * pol->tcb_status_ok), with a one-line reason in err. */
enum attest_result tdx_collateral_judge(const struct tdx_collateral *col, STACK_OF(X509) * chain,
                                        const uint8_t *body, const uint8_t *qe,
                                        const struct attest_policy *pol,
                                        struct attest_claims *claims, char *err);

#endif
