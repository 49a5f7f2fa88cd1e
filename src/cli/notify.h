/* notify.h - tells a service manager (systemd Type=notify) how the process
 * is doing: the sd_notify datagram protocol, without libsystemd.
 *
 * The protocol is one AF_UNIX datagram of newline-separated KEY=VALUE lines
 * to the socket named by $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace). Implementing it here keeps the static build working (Debian
 * ships no libsystemd.a) and adds no dependency; without $NOTIFY_SOCKET every
 * call is a no-op. */
#ifndef AIRLOCK_CLI_NOTIFY_H
#define AIRLOCK_CLI_NOTIFY_H

/* Takes $NOTIFY_SOCKET and removes it from the environment, so that the
 * processes airlock starts (pool instances, hooks) cannot speak for it.
 * Returns 0 (also when it is unset) or -EINVAL for an unusable address. */
int notify_init(void);

/* Sends state ("READY=1", "RELOADING=1\nMONOTONIC_USEC=..." ...) as one
 * datagram. Returns 0 (also when there is no manager) or -errno. */
int notify_send(const char *state);

/* notify_send() of "RELOADING=1" with the CLOCK_MONOTONIC time systemd
 * wants beside it. */
int notify_reloading(void);

#endif
