/* Adversarial test of the per-connection CA names and the shared verify store
 * (src/tls.rs): every way a connection's CA list can be replaced, edited, duplicated or
 * outlive its cache entry, then SSL_free. Run by tests/c_programs.rs under valgrind,
 * which must report no error and no definite leak, on every OpenSSL the matrix runs:
 *
 *   ca_list_abuse CA_MANY.pem CA_FEW.pem   (CA_MANY: at least 20 certificates) */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "resty_client_tls.h"

#include <stdio.h>
#include <stdlib.h>

static STACK_OF(X509) *load_certs(const char *path) {
    FILE *f = fopen(path, "r");
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;
    if (f == NULL || sk == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) sk_X509_push(sk, x);
    ERR_clear_error();
    fclose(f);
    if (sk_X509_num(sk) == 0) {
        fprintf(stderr, "no certificate in %s\n", path);
        exit(2);
    }
    return sk;
}

static SSL_CTX *ctx;
static STACK_OF(X509) *ca100, *ca1;
static int check(SSL *s, STACK_OF(X509) *ca, const char *what) {
    STACK_OF(X509_NAME) *n = SSL_get_client_CA_list(s);
    if (sk_X509_NAME_num(n) != sk_X509_num(ca)) { printf("FAIL %s: count %d\n", what, sk_X509_NAME_num(n)); exit(1); }
    for (int i = 0; i < sk_X509_num(ca); i++)
        if (X509_NAME_cmp(sk_X509_NAME_value(n, i), X509_get_subject_name(sk_X509_value(ca, i))) != 0) { printf("FAIL %s: name %d\n", what, i); exit(1); }
    return 0;
}
static SSL *req(STACK_OF(X509) *ca) {
    const char *err; SSL *s = SSL_new(ctx); SSL_set_accept_state(s);
    if (resty_client_tls_request_client_certificate(s, ca, 3, &err)) { printf("FAIL req %s\n", err); exit(1); }
    if (ca) check(s, ca, "after request");
    return s;
}
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s CA_MANY.pem CA_FEW.pem\n", argv[0]); return 2; }
    ctx = SSL_CTX_new(TLS_server_method());
    ca100 = load_certs(argv[1]); ca1 = load_certs(argv[2]);
    const char *err;
    for (int round = 0; round < 3; round++) {
        /* 1: plain free */
        SSL_free(req(ca100));
        /* 2: a third party replaces the list (lua-nginx-module's verify_client does) */
        SSL *b = req(ca100);
        STACK_OF(X509_NAME) *mine = sk_X509_NAME_new_null();
        for (int i = 0; i < sk_X509_num(ca1); i++) sk_X509_NAME_push(mine, X509_NAME_dup(X509_get_subject_name(sk_X509_value(ca1, i))));
        SSL_set_client_CA_list(b, mine);
        SSL_free(b);
        /* 2b: replaced by a list with the same content, in new objects */
        b = req(ca100);
        mine = sk_X509_NAME_new_null();
        for (int i = 0; i < sk_X509_num(ca100); i++) sk_X509_NAME_push(mine, X509_NAME_dup(X509_get_subject_name(sk_X509_value(ca100, i))));
        SSL_set_client_CA_list(b, mine);
        SSL_free(b);
        /* 3: a third party adds a name to our stack */
        SSL *d = req(ca100);
        SSL_add_client_CA(d, sk_X509_value(ca1, 0));
        SSL_free(d);
        /* 4: a name edited in place */
        SSL *e = req(ca100);
        X509_NAME_add_entry_by_txt(sk_X509_NAME_value(SSL_get_client_CA_list(e), 3), "CN", MBSTRING_ASC, (const unsigned char *) "x", -1, -1, 0);
        SSL_free(e);
        SSL *e2 = req(ca100); check(e2, ca100, "after edit"); SSL_free(e2);
        /* 5: replaced by our own second call, other list; then back */
        SSL *f = req(ca1);
        resty_client_tls_request_client_certificate(f, ca100, 3, &err); check(f, ca100, "second call");
        resty_client_tls_request_client_certificate(f, ca1, 3, &err); check(f, ca1, "third call");
        SSL_free(f);
        /* 6: NULL after a list */
        SSL *g = req(ca100);
        resty_client_tls_request_client_certificate(g, NULL, 3, &err);
        if (SSL_get_client_CA_list(g) != NULL && sk_X509_NAME_num(SSL_get_client_CA_list(g)) != 0) { printf("FAIL null\n"); return 1; }
        SSL_free(g);
        /* 7: many live at once, then freed, then reused */
        SSL *many[100];
        for (int i = 0; i < 100; i++) many[i] = req(i % 2 ? ca100 : ca1);
        for (int i = 0; i < 100; i++) SSL_free(many[i]);
        for (int i = 0; i < 100; i++) many[i] = req(i % 3 ? ca100 : ca1);
        for (int i = 99; i >= 0; i--) SSL_free(many[i]);
        /* 8: the ctx has its own list; ours on top; free */
        STACK_OF(X509_NAME) *cl = sk_X509_NAME_new_null();
        sk_X509_NAME_push(cl, X509_NAME_dup(X509_get_subject_name(sk_X509_value(ca1, 0))));
        SSL_CTX_set_client_CA_list(ctx, cl);
        SSL *h = req(ca100); SSL_free(h);
        SSL *h2 = req(NULL); if (sk_X509_NAME_num(SSL_get_client_CA_list(h2)) != 1) { printf("FAIL ctx list\n"); return 1; } SSL_free(h2);
        SSL_CTX_set_client_CA_list(ctx, NULL);
        /* 10: SSL_dup: the copy must not share the record (double free otherwise) */
        SSL *o = req(ca100);
        SSL *dd = SSL_dup(o);
        if (dd == NULL) { printf("FAIL SSL_dup\n"); return 1; }
        check(dd, ca100, "dup");
        SSL_free(o); SSL_free(dd);
        /* 11: more lists than the cache keeps, with live connections on each */
        SSL *live[20]; STACK_OF(X509) *subs[20];
        for (int i = 0; i < 20; i++) {
            subs[i] = sk_X509_new_null();
            for (int j = 0; j <= i; j++) { X509_up_ref(sk_X509_value(ca100, j)); sk_X509_push(subs[i], sk_X509_value(ca100, j)); }
            live[i] = req(subs[i]);
        }
        for (int i = 0; i < 20; i++) { check(live[i], subs[i], "evicted"); SSL_free(live[i]); sk_X509_pop_free(subs[i], X509_free); }
        /* 9: caller frees its stack right after the call; a fresh parse still hits */
        STACK_OF(X509) *tmp = load_certs(argv[1]);
        SSL *k = req(tmp); sk_X509_pop_free(tmp, X509_free); check(k, ca100, "after caller free"); SSL_free(k);
    }
    SSL_CTX_free(ctx);
    sk_X509_pop_free(ca100, X509_free); sk_X509_pop_free(ca1, X509_free);
    printf("ca list abuse test OK\n");
    return 0;
}
