/* ssl_reason.h - the first error on OpenSSL's queue as text, for a log line
 * or a refusal; the queue is emptied. Header only: for the modules that
 * already use OpenSSL (relay/tls.c, http/outbound.c). */
#ifndef AIRLOCK_CORE_SSL_REASON_H
#define AIRLOCK_CORE_SSL_REASON_H

#include <openssl/err.h>

static inline const char *
ssl_reason(void)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r != NULL ? r : "unknown error";
}

#endif
