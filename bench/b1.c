/* B1: see b1.h. Every call does all the work again, as the nginx modules do:
 * - the chain: a fresh memory BIO, PEM_write_bio_X509 of the peer certificate and of
 *   each certificate of SSL_get_peer_cert_chain, then a copy out of the BIO;
 * - request_client_certificate: SSL_VERIFY_PEER with a callback that accepts, the
 *   depth, a new X509_STORE holding every CA certificate and a new STACK_OF(X509_NAME)
 *   with an X509_NAME_dup of every CA subject (SSL_set0_verify_cert_store,
 *   SSL_set_client_CA_list);
 * - disable_session_reuse: SSL_OP_NO_TICKET on the connection (Kong's C also hooks the
 *   context's new_session_cb, which does nothing without a session cache, as here). */
#include "b1.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

static int b1_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    (void) ok;
    (void) ctx;
    return 1; /* never fail the handshake: the result is read later */
}

static int fail(const char **err, const char *msg)
{
    ERR_clear_error();
    if (err != NULL) {
        *err = msg;
    }
    return B1_ERROR;
}

int b1_request_client_certificate(SSL *ssl, const STACK_OF(X509) *ca_certs, int depth,
                                  const char **err)
{
    X509_STORE *store;
    STACK_OF(X509_NAME) *names;
    X509_NAME *name;
    X509 *x;
    int i;

    if (ssl == NULL) {
        return fail(err, "ssl is NULL");
    }
    SSL_set_verify(ssl, SSL_VERIFY_PEER, b1_verify_cb);
    if (depth >= 0) {
        SSL_set_verify_depth(ssl, depth);
    }
    if (ca_certs == NULL) {
        return B1_OK;
    }

    store = X509_STORE_new();
    if (store == NULL) {
        return fail(err, "X509_STORE_new() failed");
    }
    names = sk_X509_NAME_new_null();
    if (names == NULL) {
        X509_STORE_free(store);
        return fail(err, "sk_X509_NAME_new_null() failed");
    }
    for (i = 0; i < sk_X509_num(ca_certs); i++) {
        x = sk_X509_value(ca_certs, i);
        if (X509_STORE_add_cert(store, x) == 0) {
            goto failed;
        }
        name = X509_NAME_dup(X509_get_subject_name(x));
        if (name == NULL) {
            goto failed;
        }
        if (sk_X509_NAME_push(names, name) == 0) {
            X509_NAME_free(name);
            goto failed;
        }
    }
    if (SSL_set0_verify_cert_store(ssl, store) == 0) {
        goto failed;
    }
    SSL_set_client_CA_list(ssl, names);
    return B1_OK;

failed:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    X509_STORE_free(store);
    return fail(err, "building the CA list failed");
}

int b1_disable_session_reuse(SSL *ssl, const char **err)
{
    if (ssl == NULL) {
        return fail(err, "ssl is NULL");
    }
    SSL_set_options(ssl, SSL_OP_NO_TICKET);
    return B1_OK;
}

int b1_get_full_client_certificate_chain(SSL *ssl, char *buf, size_t *buf_len,
                                         const char **err)
{
    BIO *bio;
    X509 *cert;
    STACK_OF(X509) *chain;
    char *data;
    long pending;
    int i, rc;

    if (ssl == NULL || buf_len == NULL) {
        return fail(err, "ssl or buf_len is NULL");
    }
    cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL) {
        return B1_DECLINED;
    }
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        X509_free(cert);
        return fail(err, "BIO_new() failed");
    }
    rc = B1_ERROR;
    if (PEM_write_bio_X509(bio, cert) == 0) {
        goto done;
    }
    chain = SSL_get_peer_cert_chain(ssl);
    for (i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) == 0) {
            goto done;
        }
    }
    pending = BIO_get_mem_data(bio, &data);
    if (pending < 0) {
        goto done;
    }
    if ((size_t) pending > *buf_len) {
        *buf_len = (size_t) pending;
        rc = B1_AGAIN;
        goto done;
    }
    memcpy(buf, data, (size_t) pending);
    *buf_len = (size_t) pending;
    rc = B1_OK;

done:
    BIO_free(bio);
    X509_free(cert);
    if (rc == B1_ERROR) {
        return fail(err, "PEM_write_bio_X509() failed");
    }
    return rc;
}
