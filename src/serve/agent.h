/*
 * agent.h — the capacity a server tells its load balancer: HAProxy's
 * agent-check protocol on a TCP port of its own (`rackllm serve
 * --agent-port`).
 *
 * HAProxy connects every agent-inter, reads one line, and the agent closes
 * the connection. The line is built from the scheduler's figures (the same
 * ones /health reports, sched_stats.free_sessions: admission's own rule,
 * context included):
 *
 *   up ready W% maxconn:M     serving: W = the sessions it would admit now
 *                             (at least 1, so a full server keeps its place
 *                             and takes the next freed slot; HAProxy caps a
 *                             weight at 256), M = those plus the sessions
 *                             running (at least 1: HAProxy reads 0 as "no
 *                             limit")
 *   drain maxconn:M           draining (SIGTERM), or capacity lowered to 0:
 *                             weight 0, nothing new; running streams go on
 *
 * With the server line's `weight 100` (deploy/rackllm-haproxy writes it),
 * W% is W sessions: HAProxy's weights are proportional to free sessions
 * across the pool. docs/rack.md explains how the pool routes with them.
 */
#ifndef RACKLLM_AGENT_H
#define RACKLLM_AGENT_H

#include <stddef.h>

#include "base/common.h"
#include "serve/scheduler.h"

typedef struct agent agent;

/* Listens on host:port (0: any free port, see agent_port) and answers every
 * connection with agent_line, from a thread of its own. */
agent *agent_start(sched *s, const char *host, int port, rl_err *err);
int agent_port(const agent *a);
/* Stops the thread and closes the socket. */
void agent_stop(agent *a);

/* The line (with its '\n') for these figures; returns its length. */
size_t agent_line(const sched_stats *st, char *buf, size_t cap);

#endif
