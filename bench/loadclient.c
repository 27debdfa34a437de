/* A small HTTPS load client for the benchmark (wrk and h2load cannot send client
 * certificates). 127.0.0.1 only; OpenSSL; one thread, epoll, N connections.
 *
 *   loadclient -p PORT -u PATH -C CERT -K KEY [-E EXTRA_CHAIN] [-c CONNS] [-n MAX_REQ]
 *              [-d SECONDS] [-w WARMUP_SECONDS] [-m keepalive|handshake] [-P SERVER_PID]
 *              [-l EXPECTED_BODY_LEN]
 *
 * keepalive: each connection makes one TLS 1.3 handshake, then sends GET PATH again and
 *            again on it (HTTP/1.1 keep-alive), reconnecting only if the server closes.
 * handshake: each connection does a full handshake (no session offered, no ticket kept),
 *            one GET with "Connection: close", then closes; and again.
 * Measured window: after the warm-up, until SECONDS have passed or MAX_REQ requests are
 * done. It prints one line of key=value pairs: requests (responses, or handshakes in
 * handshake mode) in the window, wall time, rate, and, with -P, the CPU time the server
 * process (the nginx worker) used in the window from /proc/PID/schedstat (ns
 * resolution), its busy fraction, the fraction of the window it was runnable but waiting
 * for a CPU (other processes of this shared machine), and its CPU per request; plus this client's own CPU per
 * request (CLOCK_PROCESS_CPUTIME_ID), which shows whether the client could be the
 * bottleneck; and the session tickets received per request (handshake mode: per
 * handshake; none is ever kept or offered). Exit status 1 on any error (bad status, short body, failed handshake). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum state { ST_CONNECT, ST_HANDSHAKE, ST_WRITE, ST_READ };

struct conn {
    int fd;
    SSL *ssl;
    enum state st;
    char buf[65536];
    size_t have;
    size_t wrote;
    int id;
};

static SSL_CTX *ctx;
static int port, nconns = 8, handshake_mode, epfd;
static long max_req = 0;
static double duration = 5, warmup = 1;
static const char *path = "/";
static long expect_len = -1;
static int server_pid = 0;
static char request[512];
static size_t request_len;
static long done_total, done_window, errors, tickets_window;
static int in_window, stopping;

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double self_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* CPU seconds the server process has used: /proc/PID/schedstat (ns), else utime+stime.
 * *wait: seconds it spent runnable but waiting for a CPU (schedstat only; else 0). */
static double server_cpu(double *wait)
{
    char p[64], line[1024];
    FILE *f;
    *wait = 0;
    if (server_pid <= 0) {
        return 0;
    }
    snprintf(p, sizeof(p), "/proc/%d/schedstat", server_pid);
    f = fopen(p, "r");
    if (f != NULL) {
        unsigned long long ns = 0, delay = 0;
        int ok = fscanf(f, "%llu %llu", &ns, &delay) == 2;
        fclose(f);
        if (ok) {
            *wait = (double) delay / 1e9;
            return (double) ns / 1e9;
        }
    }
    snprintf(p, sizeof(p), "/proc/%d/stat", server_pid);
    f = fopen(p, "r");
    if (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        unsigned long ut = 0, st = 0;
        char *s = strrchr(line, ')');
        fclose(f);
        if (s != NULL && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
            return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
        }
        return 0;
    }
    if (f != NULL) {
        fclose(f);
    }
    return 0;
}

/* Counts the session tickets the server sends (TLS 1.3 NewSessionTicket); never keeps
 * one, so no session is ever offered. */
static int count_ticket(SSL *ssl, SSL_SESSION *sess)
{
    (void) ssl;
    (void) sess;
    if (in_window) {
        tickets_window++;
    }
    return 0;
}

static void fail(const char *what)
{
    fprintf(stderr, "loadclient: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void conn_close(struct conn *c)
{
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void watch(struct conn *c, unsigned events, int op)
{
    struct epoll_event ev;
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0) {
        fail("epoll_ctl");
    }
}

static void conn_open(struct conn *c)
{
    struct sockaddr_in sa;
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        fail("socket");
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1 only */
    if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        fail("connect");
    }
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        fail("SSL_new");
    }
    SSL_set_connect_state(c->ssl);
    c->st = ST_CONNECT;
    c->have = c->wrote = 0;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void count_done(void)
{
    done_total++;
    if (in_window) {
        done_window++;
        if (max_req > 0 && done_window >= max_req) {
            stopping = 1;
        }
    }
}

static void conn_error(struct conn *c, const char *what)
{
    errors++;
    fprintf(stderr, "loadclient: connection %d: %s\n", c->id, what);
    ERR_print_errors_fp(stderr);
    if (errors > 20) {
        fail("too many errors");
    }
    conn_close(c);
    conn_open(c);
}

/* Whether c->buf holds one complete response; sets *complete. Handles Content-Length
 * and chunked bodies. Returns -1 on a malformed response. */
static int parse_response(struct conn *c, int *complete, int *keep)
{
    char *end, *p;
    size_t hlen, body_len = 0;
    long clen = -1;
    int chunked = 0;
    *complete = 0;
    *keep = 1;
    if (c->have < 12) {
        return 0;
    }
    c->buf[c->have] = '\0';
    end = strstr(c->buf, "\r\n\r\n");
    if (end == NULL) {
        return 0;
    }
    if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0) {
        return -1;
    }
    hlen = (size_t) (end - c->buf) + 4;
    for (p = c->buf; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            clen = strtol(p + 15, NULL, 10);
        } else if (strncasecmp(p, "Transfer-Encoding: chunked", 26) == 0) {
            chunked = 1;
        } else if (strncasecmp(p, "Connection: close", 17) == 0) {
            *keep = 0;
        }
    }
    if (clen >= 0) {
        if (c->have < hlen + (size_t) clen) {
            return 0;
        }
        body_len = (size_t) clen;
    } else if (chunked) {
        size_t at = hlen;
        for (;;) {
            char *q;
            unsigned long n;
            char *nl = strstr(c->buf + at, "\r\n");
            if (nl == NULL) {
                return 0;
            }
            n = strtoul(c->buf + at, &q, 16);
            at = (size_t) (nl - c->buf) + 2;
            if (n == 0) {
                if (c->have < at + 2) {
                    return 0;
                }
                break;
            }
            if (c->have < at + n + 2) {
                return 0;
            }
            body_len += n;
            at += n + 2;
        }
    } else {
        return -1;
    }
    if (expect_len >= 0 && (long) body_len != expect_len) {
        return -1;
    }
    *complete = 1;
    return 0;
}

/* Drives one connection as far as it can go without blocking. */
static void step(struct conn *c)
{
    for (;;) {
        int r, e;
        switch (c->st) {
        case ST_CONNECT:
        case ST_HANDSHAKE:
            c->st = ST_HANDSHAKE;
            r = SSL_do_handshake(c->ssl);
            if (r == 1) {
                c->st = ST_WRITE;
                c->wrote = 0;
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                watch(c, EPOLLIN, EPOLL_CTL_MOD);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                watch(c, EPOLLOUT, EPOLL_CTL_MOD);
                return;
            }
            conn_error(c, "handshake failed");
            return;
        case ST_WRITE:
            r = SSL_write(c->ssl, request + c->wrote, (int) (request_len - c->wrote));
            if (r > 0) {
                c->wrote += (size_t) r;
                if (c->wrote == request_len) {
                    c->st = ST_READ;
                    c->have = 0;
                }
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
                return;
            }
            conn_error(c, "write failed");
            return;
        case ST_READ: {
            int complete, keep;
            r = SSL_read(c->ssl, c->buf + c->have, (int) (sizeof(c->buf) - 1 - c->have));
            if (r > 0) {
                c->have += (size_t) r;
                if (parse_response(c, &complete, &keep) != 0) {
                    conn_error(c, "bad response");
                    return;
                }
                if (!complete) {
                    continue;
                }
                count_done();
                if (handshake_mode || !keep) {
                    conn_close(c);
                    if (!stopping) {
                        conn_open(c);
                    }
                    return;
                }
                c->st = ST_WRITE;
                c->wrote = 0;
                if (stopping) {
                    return;
                }
                continue;
            }
            e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                watch(c, EPOLLIN, EPOLL_CTL_MOD);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                watch(c, EPOLLOUT, EPOLL_CTL_MOD);
                return;
            }
            if (e == SSL_ERROR_ZERO_RETURN && c->have == 0) { /* keep-alive closed by the server */
                conn_close(c);
                conn_open(c);
                return;
            }
            conn_error(c, "read failed");
            return;
        }
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: loadclient -p PORT -u PATH -C CERT -K KEY [-E EXTRA_CHAIN] [-c CONNS] "
                    "[-n MAX_REQ] [-d SECONDS] [-w WARMUP] [-m keepalive|handshake] [-P SERVER_PID] "
                    "[-l BODY_LEN]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *extra = NULL;
    struct conn *conns;
    struct epoll_event evs[256];
    double t_start = 0, c_start = 0, s_start = 0, t_end, c_end, s_end, deadline;
    double w_start = 0, w_end;
    int opt, i;

    while ((opt = getopt(argc, argv, "p:u:C:K:E:c:n:d:w:m:P:l:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'C': cert = optarg; break;
        case 'K': key = optarg; break;
        case 'E': extra = optarg; break;
        case 'c': nconns = atoi(optarg); break;
        case 'n': max_req = atol(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'm': handshake_mode = strcmp(optarg, "handshake") == 0; break;
        case 'P': server_pid = atoi(optarg); break;
        case 'l': expect_len = atol(optarg); break;
        default: usage();
        }
    }
    if (port <= 0 || port > 65535 || cert == NULL || key == NULL || nconns < 1 || nconns > 1024
        || duration <= 0 || duration > 600 || warmup < 0) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    request_len = (size_t) snprintf(request, sizeof(request),
                                    "GET %s HTTP/1.1\r\nHost: bench.test\r\n%s\r\n", path,
                                    handshake_mode ? "Connection: close\r\n" : "");

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        fail("SSL_CTX_new");
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* sessions are counted, never stored or offered */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, count_ticket);
    if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fail("client certificate or key");
    }
    if (extra != NULL) {
        FILE *f = fopen(extra, "r");
        X509 *x;
        if (f == NULL) {
            fail("extra chain file");
        }
        while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
            if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
                fail("SSL_CTX_add0_chain_cert");
            }
        }
        ERR_clear_error();
        fclose(f);
    }

    epfd = epoll_create1(0);
    conns = calloc((size_t) nconns, sizeof(*conns));
    if (epfd < 0 || conns == NULL) {
        fail("epoll_create1/calloc");
    }
    for (i = 0; i < nconns; i++) {
        conns[i].id = i;
        conns[i].fd = -1;
        conn_open(&conns[i]);
    }

    deadline = now_wall() + warmup;
    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 100);
        double t = now_wall();
        for (i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd >= 0) {
                step(c);
            }
        }
        if (!in_window && t >= deadline) {
            in_window = 1;
            t_start = t;
            c_start = self_cpu();
            s_start = server_cpu(&w_start);
            deadline = t + duration;
        } else if (in_window && (t >= deadline || stopping)) {
            break;
        }
    }
    t_end = now_wall();
    c_end = self_cpu();
    s_end = server_cpu(&w_end);
    {
        double wall = t_end - t_start, scpu = s_end - s_start, ccpu = c_end - c_start;
        double n = done_window > 0 ? (double) done_window : 1;
        printf("mode=%s conns=%d requests=%ld errors=%ld wall_s=%.3f rate=%.1f "
               "server_cpu_s=%.4f server_us_per_req=%.2f server_busy=%.2f server_runq_wait=%.2f "
               "client_cpu_s=%.4f client_us_per_req=%.2f client_busy=%.2f per_server_cpu_s=%.1f "
               "tickets_per_req=%.2f\n",
               handshake_mode ? "handshake" : "keepalive", nconns, done_window, errors, wall,
               done_window / wall, scpu, scpu > 0 ? scpu / n * 1e6 : 0, scpu / wall, (w_end - w_start) / wall, ccpu, ccpu / n * 1e6,
               ccpu / wall, scpu > 0 ? done_window / scpu : 0, tickets_window / n);
    }
    for (i = 0; i < nconns; i++) {
        conn_close(&conns[i]);
    }
    SSL_CTX_free(ctx);
    return errors > 0 ? 1 : 0;
}
