/* Helpers shared by the C benchmark programs: timing, PEM loading, medians. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

static inline double now_cpu(void) /* this thread's CPU time, seconds */
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static inline double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static inline void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static inline STACK_OF(X509) *load_certs(const char *path)
{
    FILE *f = fopen(path, "r");
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;
    if (f == NULL || sk == NULL) {
        fprintf(stderr, "bench: cannot read %s\n", path);
        exit(2);
    }
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(sk, x);
    }
    ERR_clear_error();
    fclose(f);
    if (sk_X509_num(sk) == 0) {
        fprintf(stderr, "bench: no certificate in %s\n", path);
        exit(2);
    }
    return sk;
}

static inline EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k;
    if (f == NULL) {
        fprintf(stderr, "bench: cannot read %s\n", path);
        exit(2);
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL) {
        die("PEM_read_PrivateKey");
    }
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static inline double median(const double *v, int n)
{
    double tmp[64];
    int i;
    if (n > 64) {
        n = 64;
    }
    for (i = 0; i < n; i++) {
        tmp[i] = v[i];
    }
    qsort(tmp, (size_t) n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

#endif
