/* Measurement (1), in process: the library (candidate) against B1 (b1.c) in one binary.
 * Each connection is a real TLS 1.3 handshake over an in-memory BIO pair whose client
 * sends leaf + 2 intermediates. CPU time of this thread (CLOCK_THREAD_CPUTIME_ID),
 * candidate and baseline interleaved within each round, median of the rounds.
 *
 *   micro PKI_DIR ROUNDS SECONDS_PER_SAMPLE
 *
 * Prints "name: candidate=X baseline=Y ratio=X/Y" (X, Y in calls per CPU-second) and
 * "#"-prefixed detail lines. Exits 1 when the two disagree on an output. */
#include "common.h"

#include "b1.h"
#include "resty_client_tls.h"

#define MAX_ROUNDS 64

static const char *pki;
static SSL_CTX *sctx, *cctx;
static int rounds;
static double sample_s;

static char path_buf[4096];
static const char *path(const char *name)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", pki, name);
    return path_buf;
}

static int accept_all(int ok, X509_STORE_CTX *ctx)
{
    (void) ok;
    (void) ctx;
    return 1;
}

static void make_ctxs(void)
{
    STACK_OF(X509) *leaf = load_certs(path("leaf.pem"));
    STACK_OF(X509) *extra = load_certs(path("sendchain.pem"));
    STACK_OF(X509) *server = load_certs(path("server.pem"));
    int i;

    sctx = SSL_CTX_new(TLS_server_method());
    cctx = SSL_CTX_new(TLS_client_method());
    if (sctx == NULL || cctx == NULL) {
        die("SSL_CTX_new");
    }
    SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
    SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate(sctx, sk_X509_value(server, 0)) != 1
        || SSL_CTX_use_PrivateKey(sctx, load_key(path("server.key"))) != 1) {
        die("server certificate");
    }
    SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, accept_all);
    SSL_CTX_set_num_tickets(sctx, 0);
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate(cctx, sk_X509_value(leaf, 0)) != 1
        || SSL_CTX_use_PrivateKey(cctx, load_key(path("client.key"))) != 1) {
        die("client certificate");
    }
    for (i = 0; i < sk_X509_num(extra); i++) {
        if (SSL_CTX_add1_chain_cert(cctx, sk_X509_value(extra, i)) != 1) {
            die("client chain");
        }
    }
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
}

struct conn {
    SSL *s, *c;
};

/* One full TLS 1.3 handshake over a BIO pair; returns the server side. */
static struct conn handshake(void)
{
    struct conn k;
    BIO *sb, *cb;
    int sdone = 0, cdone = 0, n;

    k.s = SSL_new(sctx);
    k.c = SSL_new(cctx);
    if (k.s == NULL || k.c == NULL || BIO_new_bio_pair(&sb, 0, &cb, 0) != 1) {
        die("SSL_new/BIO_new_bio_pair");
    }
    SSL_set_bio(k.s, sb, sb);
    SSL_set_bio(k.c, cb, cb);
    SSL_set_accept_state(k.s);
    SSL_set_connect_state(k.c);
    for (n = 0; (!sdone || !cdone) && n < 100; n++) {
        if (!cdone) {
            int r = SSL_do_handshake(k.c);
            if (r == 1) {
                cdone = 1;
            } else if (SSL_get_error(k.c, r) != SSL_ERROR_WANT_READ) {
                die("client handshake");
            }
        }
        if (!sdone) {
            int r = SSL_do_handshake(k.s);
            if (r == 1) {
                sdone = 1;
            } else if (SSL_get_error(k.s, r) != SSL_ERROR_WANT_READ) {
                die("server handshake");
            }
        }
    }
    if (!sdone || !cdone || SSL_version(k.s) != TLS1_3_VERSION) {
        die("handshake did not complete in TLS 1.3");
    }
    return k;
}

static void conn_free(struct conn k)
{
    SSL_free(k.s);
    SSL_free(k.c);
}

/* ---- the operations, one function per (implementation, case) -------------------- */

typedef void (*op_fn)(void *arg);

static char out[65536];

static void must(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "bench: %s\n", what);
        exit(1);
    }
}

static void cand_chain(void *arg)
{
    size_t len = sizeof(out);
    const char *err;
    must(resty_client_tls_get_full_client_certificate_chain(arg, out, &len, &err) == RESTY_CLIENT_TLS_OK,
         "candidate chain");
}

static void b1_chain(void *arg)
{
    size_t len = sizeof(out);
    const char *err;
    must(b1_get_full_client_certificate_chain(arg, out, &len, &err) == B1_OK, "b1 chain");
}

/* The C user's protocol: a size query with a NULL buffer, then the fill. */
static void cand_sizefill(void *arg)
{
    size_t len = 0;
    const char *err;
    must(resty_client_tls_get_full_client_certificate_chain(arg, NULL, &len, &err) == RESTY_CLIENT_TLS_AGAIN,
         "candidate size query");
    must(len <= sizeof(out), "chain too long");
    must(resty_client_tls_get_full_client_certificate_chain(arg, out, &len, &err) == RESTY_CLIENT_TLS_OK,
         "candidate fill");
}

static void b1_sizefill(void *arg)
{
    size_t len = 0;
    const char *err;
    must(b1_get_full_client_certificate_chain(arg, NULL, &len, &err) == B1_AGAIN, "b1 size query");
    must(len <= sizeof(out), "chain too long");
    must(b1_get_full_client_certificate_chain(arg, out, &len, &err) == B1_OK, "b1 fill");
}

struct req_arg {
    SSL *ssl;
    STACK_OF(X509) *ca[2]; /* two parses of one PEM file; [1] only for the alternating case */
    int alternate;
    unsigned long n;
};

static void cand_request(void *p)
{
    struct req_arg *a = p;
    const char *err;
    STACK_OF(X509) *ca = a->ca[a->alternate ? (a->n++ & 1) : 0];
    must(resty_client_tls_request_client_certificate(a->ssl, ca, 3, &err) == RESTY_CLIENT_TLS_OK,
         "candidate request_client_certificate");
}

static void b1_request(void *p)
{
    struct req_arg *a = p;
    const char *err;
    STACK_OF(X509) *ca = a->ca[a->alternate ? (a->n++ & 1) : 0];
    must(b1_request_client_certificate(a->ssl, ca, 3, &err) == B1_OK, "b1 request_client_certificate");
}

/* Calls per CPU-second of fn(arg), run for about sample_s seconds. */
static double rate(op_fn fn, void *arg)
{
    unsigned long n = 0, batch = 16;
    double t0 = now_cpu(), t;
    for (;;) {
        unsigned long i;
        for (i = 0; i < batch; i++) {
            fn(arg);
        }
        n += batch;
        t = now_cpu() - t0;
        if (t >= sample_s) {
            break;
        }
        if (t < sample_s / 8) {
            batch *= 2;
        }
    }
    return (double) n / t;
}

static void report(const char *name, const char *unit, double *c, double *b, int n)
{
    double mc = median(c, n), mb = median(b, n);
    int i;
    printf("# %s (%s, per round candidate/baseline):", name, unit);
    for (i = 0; i < n; i++) {
        printf(" %.0f/%.0f", c[i], b[i]);
    }
    printf("\n# %s: candidate %.3f us/call, baseline %.3f us/call\n", name, 1e6 / mc, 1e6 / mb);
    printf("%s: candidate=%.0f baseline=%.0f ratio=%.2f\n", name, mc, mb, mc / mb);
    fflush(stdout);
}

/* Interleaved rounds, alternating which side goes first. */
/* BENCH_ONLY=<substring> runs only the measurements whose name contains it. */
static int wanted(const char *name)
{
    const char *only = getenv("BENCH_ONLY");
    return only == NULL || strstr(name, only) != NULL;
}

static void measure(const char *name, op_fn cf, void *ca, op_fn bf, void *ba)
{
    double c[MAX_ROUNDS], b[MAX_ROUNDS];
    int r;
    if (!wanted(name)) {
        return;
    }
    cf(ca);
    bf(ba); /* warm up */
    for (r = 0; r < rounds; r++) {
        if (r & 1) {
            b[r] = rate(bf, ba);
            c[r] = rate(cf, ca);
        } else {
            c[r] = rate(cf, ca);
            b[r] = rate(bf, ba);
        }
    }
    report(name, "calls per CPU-second", c, b, rounds);
}

/* The first size query + fill on a connection, right after its handshake (as in nginx,
 * where the first request follows the handshake): the candidate's cache is empty and
 * the certificates are as warm as the handshake left them. Each call is timed alone on
 * the monotonic clock (vDSO, ~20 ns) and the median call of each round is kept, which
 * discards preemptions; candidate and B1 alternate, each on its own fresh connection. */
static int cmp_double_asc(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static void measure_cold(int per_round)
{
    double c[MAX_ROUNDS], b[MAX_ROUNDS];
    double *tc = calloc((size_t) per_round, sizeof(double));
    double *tb = calloc((size_t) per_round, sizeof(double));
    int r, i;
    if (!wanted("c_chain_sizefill_cold")) {
        free(tc);
        free(tb);
        return;
    }
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < 2 * per_round; i++) {
            struct conn k = handshake();
            int cand = (i & 1) == (r & 1);
            double t0 = now_wall();
            if (cand) {
                cand_sizefill(k.s);
                tc[i / 2] = now_wall() - t0;
            } else {
                b1_sizefill(k.s);
                tb[i / 2] = now_wall() - t0;
            }
            conn_free(k);
        }
        qsort(tc, (size_t) per_round, sizeof(double), cmp_double_asc);
        qsort(tb, (size_t) per_round, sizeof(double), cmp_double_asc);
        c[r] = 1 / tc[per_round / 2];
        b[r] = 1 / tb[per_round / 2];
    }
    free(tc);
    free(tb);
    report("c_chain_sizefill_cold", "first call after the handshake, calls per second of the median call", c, b,
           rounds);
}

static void check_same_chain(SSL *s)
{
    static char a[65536], b[65536];
    size_t la = sizeof(a), lb = sizeof(b);
    const char *err;
    FILE *f;
    char want[65536];
    size_t lw;
    must(resty_client_tls_get_full_client_certificate_chain(s, a, &la, &err) == RESTY_CLIENT_TLS_OK, "chain");
    must(b1_get_full_client_certificate_chain(s, b, &lb, &err) == B1_OK, "b1 chain");
    must(la == lb && memcmp(a, b, la) == 0, "candidate and B1 chains differ");
    f = fopen(path("chain.pem"), "r");
    must(f != NULL, "chain.pem");
    lw = fread(want, 1, sizeof(want), f);
    fclose(f);
    must(lw == la && memcmp(a, want, la) == 0, "the chain is not leaf + int2 + int1");
    printf("# chain check: candidate == B1 == chain.pem (%zu bytes, 3 certificates)\n", la);
}

static void check_names(SSL *s, int want, const char *who)
{
    STACK_OF(X509_NAME) *names = SSL_get_client_CA_list(s);
    if (sk_X509_NAME_num(names) != want) {
        fprintf(stderr, "bench: %s set %d CA names, want %d\n", who, sk_X509_NAME_num(names), want);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    struct conn k;
    static const int ncas[] = { 1, 10, 100 };
    unsigned i;
    int cold_n;

    if (argc != 4) {
        fprintf(stderr, "usage: micro PKI_DIR ROUNDS SECONDS_PER_SAMPLE\n");
        return 2;
    }
    pki = argv[1];
    rounds = atoi(argv[2]);
    /* RCT_BENCH_CHAIN_CACHE=0: no chain cache, so every first call encodes (the cost of a
     * client never seen before). */
    if (getenv("RCT_BENCH_CHAIN_CACHE") != NULL && strcmp(getenv("RCT_BENCH_CHAIN_CACHE"), "0") == 0) {
        resty_client_tls_cache_limit(RESTY_CLIENT_TLS_CACHE_CHAIN, 0);
        printf("# chain cache off (RCT_BENCH_CHAIN_CACHE=0)\n");
    }
    sample_s = atof(argv[3]);
    if (rounds < 1 || rounds > MAX_ROUNDS || sample_s <= 0) {
        fprintf(stderr, "micro: bad arguments\n");
        return 2;
    }
    cold_n = sample_s >= 0.2 ? 300 : 150;
    make_ctxs();

    k = handshake();
    check_same_chain(k.s);
    measure("c_chain_repeat", cand_chain, k.s, b1_chain, k.s);
    measure("c_chain_sizefill_warm", cand_sizefill, k.s, b1_sizefill, k.s);
    conn_free(k);
    measure_cold(cold_n);

    for (i = 0; i < sizeof(ncas) / sizeof(ncas[0]); i++) {
        char file[32], name[64];
        struct req_arg ca = { 0 }, ba = { 0 };
        snprintf(file, sizeof(file), "ca%d.pem", ncas[i]);
        ca.ca[0] = ba.ca[0] = load_certs(path(file));
        ca.ssl = SSL_new(sctx);
        ba.ssl = SSL_new(sctx);
        SSL_set_accept_state(ca.ssl);
        SSL_set_accept_state(ba.ssl);
        cand_request(&ca);
        check_names(ca.ssl, ncas[i], "candidate");
        b1_request(&ba);
        check_names(ba.ssl, ncas[i], "B1");
        snprintf(name, sizeof(name), "c_request_%dca", ncas[i]);
        measure(name, cand_request, &ca, b1_request, &ba);
        if (ncas[i] == 100) {
            /* a CA list parsed twice (two STACKs of distinct X509 objects with the same
             * content), used alternately: what a content-keyed cache must still catch */
            ca.ca[1] = ba.ca[1] = load_certs(path(file));
            ca.alternate = ba.alternate = 1;
            measure("c_request_100ca_2parses", cand_request, &ca, b1_request, &ba);
            sk_X509_pop_free(ca.ca[1], X509_free);
        }
        SSL_free(ca.ssl);
        SSL_free(ba.ssl);
        sk_X509_pop_free(ca.ca[0], X509_free);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    return 0;
}
