/*
 * TEST DOUBLE helper of the drover lab's mount.nfs: an LD_PRELOAD shim that
 * makes a program's IPv4 sockets use the lab node's own address as their
 * source, so that the NFS server sees the client node and not 127.0.0.1
 * (all lab nodes share the loopback interface).
 *
 * With DROVER_LAB_SOURCE_ADDR set to an IPv4 address: bind() to 0.0.0.0
 * binds to that address instead (same port: libnfs binds to a privileged
 * port itself), and connect() on a socket not bound yet binds it to that
 * address first. Without the variable it changes nothing. The lab compiles
 * it with the machine's cc when it builds its package repository.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*sockfn)(int, const struct sockaddr *, socklen_t);

static int source(struct in_addr *out)
{
    const char *s = getenv("DROVER_LAB_SOURCE_ADDR");
    return s != NULL && inet_pton(AF_INET, s, out) == 1;
}

static sockfn next(const char *name)
{
    return (sockfn)dlsym(RTLD_NEXT, name);
}

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    static sockfn real;
    struct sockaddr_in sin;
    struct in_addr src;

    if (real == NULL)
        real = next("bind");
    if (sa != NULL && sa->sa_family == AF_INET && len >= sizeof(sin) && source(&src)) {
        memcpy(&sin, sa, sizeof(sin));
        if (sin.sin_addr.s_addr == htonl(INADDR_ANY)) {
            sin.sin_addr = src;
            return real(fd, (const struct sockaddr *)&sin, sizeof(sin));
        }
    }
    return real(fd, sa, len);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    static sockfn real;
    struct sockaddr_in own;
    socklen_t ownlen = sizeof(own);
    struct in_addr src;

    if (real == NULL)
        real = next("connect");
    if (sa != NULL && sa->sa_family == AF_INET && source(&src)
        && getsockname(fd, (struct sockaddr *)&own, &ownlen) == 0
        && own.sin_family == AF_INET && own.sin_port == 0) {
        memset(&own, 0, sizeof(own));
        own.sin_family = AF_INET;
        own.sin_addr = src;
        /* On failure the connection goes out from the default address,
           which the server then judges: no worse than without the shim. */
        bind(fd, (const struct sockaddr *)&own, sizeof(own));
    }
    return real(fd, sa, len);
}
