/*
 * The kernel's limit: one pidfd per target on one epoll instance, and
 * nothing else. The benchmark compares pidwatch's Watcher with this program.
 *
 * Usage:
 *   limit serve       read batches on stdin (the harness protocol below)
 *   limit wait ID...  wait until every process ID has exited, then exit 0
 *                     (the command-line comparison with pidwait and waitpid)
 *
 * Harness protocol, one batch at a time:
 *   stdin:  "p N" or "t N" (processes or threads), then N lines of IDs
 *   stdout: "loaded"                      IDs read, nothing registered yet
 *   stdin:  "go"
 *   stdout: "ready NS"                    registration took NS nanoseconds
 *   stdout: "E ID NS" for each exit       NS is CLOCK_MONOTONIC at delivery
 *   stdout: "done exited=N reaped=0"
 * It exits 0 at the end of stdin.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#include <fcntl.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void raise_nofile(void)
{
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

/* Registers every ID; returns the pidfds (the index is the epoll data). */
static int *watch_all(int epfd, const long *ids, size_t count, unsigned flags)
{
	int *fds = calloc(count ? count : 1, sizeof(int));
	if (!fds)
		die("calloc");
	for (size_t i = 0; i < count; i++) {
		fds[i] = (int)syscall(SYS_pidfd_open, (pid_t)ids[i], flags);
		if (fds[i] < 0) {
			fprintf(stderr, "limit: pidfd_open(%ld) failed: %s\n", ids[i], strerror(errno));
			exit(1);
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			die("epoll_ctl");
	}
	return fds;
}

/* Waits for every pidfd; calls report(i) for each exit, once per batch of events. */
static void drain(int epfd, int *fds, const long *ids, size_t count, int print)
{
	struct epoll_event events[256];
	size_t left = count;
	while (left > 0) {
		int n = epoll_wait(epfd, events, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		uint64_t t = now_ns();
		for (int k = 0; k < n; k++) {
			size_t i = events[k].data.u64;
			if (fds[i] < 0)
				continue;
			close(fds[i]);
			fds[i] = -1;
			left--;
			if (print)
				printf("E %ld %llu\n", ids[i], (unsigned long long)t);
		}
		if (print)
			fflush(stdout);
	}
}

static int serve(void)
{
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		char kind;
		size_t count;
		if (sscanf(line, "%c %zu", &kind, &count) != 2 || (kind != 'p' && kind != 't')) {
			fprintf(stderr, "limit: invalid batch header %s", line);
			return 1;
		}
		long *ids = calloc(count ? count : 1, sizeof(long));
		if (!ids)
			die("calloc");
		for (size_t i = 0; i < count; i++) {
			if (!fgets(line, sizeof line, stdin))
				die("short batch");
			ids[i] = strtol(line, NULL, 10);
		}
		printf("loaded\n");
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin) || strncmp(line, "go", 2) != 0)
			die("expected go");

		int epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			die("epoll_create1");
		uint64_t start = now_ns();
		int *fds = watch_all(epfd, ids, count, kind == 't' ? PIDFD_THREAD : 0);
		printf("ready %llu\n", (unsigned long long)(now_ns() - start));
		fflush(stdout);

		drain(epfd, fds, ids, count, 1);
		printf("done exited=%zu reaped=0\n", count);
		fflush(stdout);
		close(epfd);
		free(fds);
		free(ids);
	}
	return 0;
}

int main(int argc, char **argv)
{
	raise_nofile();
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve();
	if (argc >= 3 && strcmp(argv[1], "wait") == 0) {
		size_t count = (size_t)argc - 2;
		long *ids = calloc(count, sizeof(long));
		if (!ids)
			die("calloc");
		for (size_t i = 0; i < count; i++)
			ids[i] = strtol(argv[i + 2], NULL, 10);
		int epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0)
			die("epoll_create1");
		int *fds = watch_all(epfd, ids, count, 0);
		drain(epfd, fds, ids, count, 0);
		return 0;
	}
	fprintf(stderr, "usage: limit serve | limit wait PID...\n");
	return 2;
}
