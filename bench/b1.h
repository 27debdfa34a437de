/* B1, the "nginx-style C" baseline: the resty_client_tls C ABI done the way nginx
 * modules do it today (lua-nginx-module's ngx.ssl.verify_client, lua-kong-nginx-module's
 * chain and session functions), written from scratch for the benchmark. Same
 * signatures and return codes as include/resty_client_tls.h, names prefixed b1_. */
#ifndef BENCH_B1_H
#define BENCH_B1_H

#include <stddef.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define B1_OK 0
#define B1_ERROR -1
#define B1_AGAIN -2
#define B1_DECLINED -5

int b1_request_client_certificate(SSL *ssl, const STACK_OF(X509) *ca_certs, int depth,
                                  const char **err);
int b1_disable_session_reuse(SSL *ssl, const char **err);
int b1_get_full_client_certificate_chain(SSL *ssl, char *buf, size_t *buf_len,
                                         const char **err);

#endif
