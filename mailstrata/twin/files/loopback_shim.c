/*
 * mailstrata twin: a private 127.0.0.1 and a source address for every twin server.
 *
 * Every server of the twin runs in ONE network namespace that has only `lo`, so the servers share one
 * loopback and one set of addresses. This library is preloaded (through /etc/netns/<ns>/ld.so.preload)
 * into every process of the namespace. In a process whose host name (each server's daemons run in their
 * own UTS namespace with the server's host name, as in production) names a file HOSTS_DIR/<hostname>
 * holding an IPv4 address, it makes that address the server's own:
 *   - bind() to 0.0.0.0 or 127.0.0.1 binds the server's address (two servers can both "listen on
 *     localhost:10024" or "on all interfaces");
 *   - connect() to 127.0.0.1 reaches the server's address (the server's own localhost);
 *   - an unbound socket connecting anywhere in 127.0.0.0/8 is first bound to the server's address, so
 *     connections leave from the server's address as they leave from its port in production;
 *   - accept()/getpeername() show a peer that is the server itself as 127.0.0.1, as on a real host;
 *   - getifaddrs() lists only 127.0.0.1 and the server's address among the IPv4 addresses, as a real
 *     host's interfaces would (otherwise Postfix takes every twin address, VIPs included, for its own and
 *     refuses to relay to them: "mail for [VIP] loops back to myself").
 * Every other process (HAProxy without such a host name, Samba, dnsmasq, test clients) is left alone.
 * No daemon setting changes: only where "localhost" lives.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef HOSTS_DIR
#error "compile with -DHOSTS_DIR='\"/path\"'"
#endif

typedef int (*addr_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*peer_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static int state; /* 0 unknown, 1 active, -1 not a twin server */
static struct in_addr self;

static void init(void) {
    if (state) return;
    int saved = errno;
    char host[256] = {0}, path[768], line[64] = {0};
    state = -1;
    if (gethostname(host, sizeof host - 1) == 0 && host[0] && !strchr(host, '/') && host[0] != '.') {
        snprintf(path, sizeof path, "%s/%s", HOSTS_DIR, host);
        FILE *f = fopen(path, "re");
        if (f) {
            if (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\r\n \t")] = 0;
                if (inet_pton(AF_INET, line, &self) == 1 && (ntohl(self.s_addr) >> 24) == 127) state = 1;
            }
            fclose(f);
        }
    }
    errno = saved;
}

static addr_fn real(const char *name) { return (addr_fn)dlsym(RTLD_NEXT, name); }

int bind(int fd, const struct sockaddr *a, socklen_t len) {
    static addr_fn r;
    if (!r) r = real("bind");
    init();
    if (state == 1 && a && a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in s;
        memcpy(&s, a, sizeof s);
        if (s.sin_addr.s_addr == htonl(INADDR_ANY) || s.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            s.sin_addr = self;
            return r(fd, (struct sockaddr *)&s, sizeof s);
        }
    }
    return r(fd, a, len);
}

int connect(int fd, const struct sockaddr *a, socklen_t len) {
    static addr_fn r, rb;
    if (!r) r = real("connect");
    if (!rb) rb = real("bind");
    init();
    if (state == 1 && a && a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in s;
        memcpy(&s, a, sizeof s);
        if ((ntohl(s.sin_addr.s_addr) >> 24) == 127) {
            if (s.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) s.sin_addr = self;
            struct sockaddr_in cur;
            socklen_t cl = sizeof cur;
            int saved = errno;
            if (getsockname(fd, (struct sockaddr *)&cur, &cl) == 0 && cur.sin_family == AF_INET &&
                cur.sin_port == 0 && cur.sin_addr.s_addr == htonl(INADDR_ANY)) {
                struct sockaddr_in b;
                memset(&b, 0, sizeof b);
                b.sin_family = AF_INET;
                b.sin_addr = self;
                rb(fd, (struct sockaddr *)&b, sizeof b);
            }
            errno = saved;
            return r(fd, (struct sockaddr *)&s, sizeof s);
        }
    }
    return r(fd, a, len);
}

static void unself(struct sockaddr *a, socklen_t *len) {
    if (state == 1 && a && len && *len >= sizeof(struct sockaddr_in) && a->sa_family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)a;
        if (s->sin_addr.s_addr == self.s_addr) s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
}

int accept(int fd, struct sockaddr *a, socklen_t *len) {
    static peer_fn r;
    if (!r) r = (peer_fn)dlsym(RTLD_NEXT, "accept");
    int x = r(fd, a, len);
    if (x >= 0) { init(); unself(a, len); }
    return x;
}

int accept4(int fd, struct sockaddr *a, socklen_t *len, int flags) {
    static accept4_fn r;
    if (!r) r = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
    int x = r(fd, a, len, flags);
    if (x >= 0) { init(); unself(a, len); }
    return x;
}

int getpeername(int fd, struct sockaddr *a, socklen_t *len) {
    static peer_fn r;
    if (!r) r = (peer_fn)dlsym(RTLD_NEXT, "getpeername");
    int x = r(fd, a, len);
    if (x == 0) { init(); unself(a, len); }
    return x;
}

int getifaddrs(struct ifaddrs **head) {
    static int (*r)(struct ifaddrs **);
    if (!r) r = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int x = r(head);
    init();
    if (x != 0 || state != 1 || !head || !*head) return x;
    /* Unlink the other servers' addresses; the head stays (freeifaddrs frees the block through it). */
    struct ifaddrs *prev = *head;
    for (struct ifaddrs *cur = prev->ifa_next; cur; cur = cur->ifa_next) {
        int keep = 1;
        if (cur->ifa_addr && cur->ifa_addr->sa_family == AF_INET) {
            struct in_addr a = ((struct sockaddr_in *)cur->ifa_addr)->sin_addr;
            keep = a.s_addr == htonl(INADDR_LOOPBACK) || a.s_addr == self.s_addr;
        }
        if (keep) {
            prev->ifa_next = cur;
            prev = cur;
        }
    }
    prev->ifa_next = NULL;
    return x;
}
