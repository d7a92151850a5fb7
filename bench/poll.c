/*
 * The polling baseline: what waiting costs without pidfds. Checks each PID
 * with kill(PID, 0) every 10 ms and exits 0 once none exists.
 *
 * A zombie still exists for kill(), so this notices a target only once its
 * parent has reaped it (the benchmark's targets are reaped at once).
 *
 * Usage: poll PID...
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: poll PID...\n");
		return 2;
	}
	int count = argc - 1;
	pid_t *pids = calloc((size_t)count, sizeof(pid_t));
	if (!pids)
		return 1;
	for (int i = 0; i < count; i++)
		pids[i] = (pid_t)strtol(argv[i + 1], NULL, 10);

	const struct timespec interval = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	int left = count;
	while (left > 0) {
		for (int i = 0; i < count; i++) {
			if (pids[i] > 0 && kill(pids[i], 0) < 0 && errno == ESRCH) {
				pids[i] = 0;
				left--;
			}
		}
		if (left > 0)
			nanosleep(&interval, NULL);
	}
	return 0;
}
