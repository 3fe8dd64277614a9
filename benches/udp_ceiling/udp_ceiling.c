/*
 * Measures how many UDP packets per second one core can send on loopback,
 * with one sendto() per packet and with sendmmsg() in batches.
 *
 * Usage: udp_ceiling [SECONDS] [PAYLOAD_BYTES] [BATCH]
 * Defaults: 3 seconds, 172 bytes (an RTP header and 20 ms of G.711), 32.
 * Prints SENDTO_PPS=N and SENDMMSG_PPS=N. Packets go to a socket on
 * 127.0.0.1 that is never read, so the receiver costs nothing beyond the
 * kernel dropping datagrams once its buffer is full.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    int payload = argc > 2 ? atoi(argv[2]) : 172;
    int batch = argc > 3 ? atoi(argv[3]) : 32;
    if (seconds <= 0 || payload <= 0 || payload > 1472 || batch <= 0 || batch > 1024) {
        fprintf(stderr, "udp_ceiling: invalid arguments; usage: udp_ceiling [SECONDS] [PAYLOAD_BYTES 1-1472] [BATCH 1-1024]\n");
        return 2;
    }

    int sink = socket(AF_INET, SOCK_DGRAM, 0);
    int sender = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (sink < 0 || sender < 0 || bind(sink, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockname(sink, (struct sockaddr *)&address, &length) != 0) {
        perror("udp_ceiling: cannot set up the loopback sockets");
        return 1;
    }

    char buffer[1472];
    memset(buffer, 0xD5, sizeof buffer);

    unsigned long sent = 0;
    double start = now_s(), elapsed = 0;
    while (elapsed < seconds) {
        for (int i = 0; i < 1000; i++) {
            if (sendto(sender, buffer, payload, 0, (struct sockaddr *)&address, sizeof address) == payload) {
                sent++;
            }
        }
        elapsed = now_s() - start;
    }
    printf("SENDTO_PPS=%.0f\n", sent / elapsed);

    struct mmsghdr *messages = calloc(batch, sizeof *messages);
    struct iovec *iovs = calloc(batch, sizeof *iovs);
    for (int i = 0; i < batch; i++) {
        iovs[i].iov_base = buffer;
        iovs[i].iov_len = payload;
        messages[i].msg_hdr.msg_iov = &iovs[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &address;
        messages[i].msg_hdr.msg_namelen = sizeof address;
    }
    sent = 0;
    start = now_s();
    elapsed = 0;
    while (elapsed < seconds) {
        for (int i = 0; i < 100; i++) {
            int result = sendmmsg(sender, messages, batch, 0);
            if (result > 0) {
                sent += result;
            }
        }
        elapsed = now_s() - start;
    }
    printf("SENDMMSG_PPS=%.0f\n", sent / elapsed);
    printf("SENDMMSG_BATCH=%d\n", batch);
    printf("PAYLOAD_BYTES=%d\n", payload);
    return 0;
}
