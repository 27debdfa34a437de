/* The header must compile on its own (it includes the OpenSSL headers it needs). */
#include "resty_client_tls.h"

int header_alone_compiles(void) {
    int (*request)(SSL *, const STACK_OF(X509) *, int, const char **) = resty_client_tls_request_client_certificate;
    int (*chain)(SSL *, char *, size_t *, const char **) = resty_client_tls_get_full_client_certificate_chain;
    return (request && chain && resty_client_tls_is_valid_client_verify("NONE", 4) == 1) ? RESTY_CLIENT_TLS_OK
                                                                                        : RESTY_CLIENT_TLS_ERROR;
}
