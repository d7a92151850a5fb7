/*
 * Benchmark targets: many processes or threads that wait to be ended.
 *
 *   targets procs N NAME  forks N children named NAME (the comm that
 *                         pidwait matches); each waits in pause() until
 *                         SIGKILL. The parent reaps each child at once.
 *   targets threads N     starts N threads with small stacks; each exits
 *                         when it receives SIGUSR1 through tgkill().
 *
 * Prints one PID or TID per line, then "ready", and exits once every target
 * is gone. Children get SIGKILL when this process dies (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int procs(long count, const char *name)
{
	for (long i = 0; i < count; i++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			prctl(PR_SET_NAME, name);
			for (;;)
				pause();
		}
		printf("%d\n", pid);
	}
	printf("ready\n");
	fflush(stdout);
	while (wait(NULL) >= 0 || errno == EINTR)
		;
	return 0;
}

static _Thread_local volatile sig_atomic_t stop;
static pid_t *tids;
static atomic_long started;

static void on_usr1(int sig)
{
	(void)sig;
	stop = 1;
}

static void *thread_main(void *arg)
{
	long index = (long)arg;
	tids[index] = gettid();
	atomic_fetch_add(&started, 1);

	sigset_t unblocked;
	sigemptyset(&unblocked);
	while (!stop)
		sigsuspend(&unblocked);
	return NULL;
}

static int threads(long count)
{
	struct sigaction action = { .sa_handler = on_usr1 };
	sigemptyset(&action.sa_mask);
	sigaction(SIGUSR1, &action, NULL);

	/* Threads inherit the blocked SIGUSR1 and take it only in sigsuspend(). */
	sigset_t blocked;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);

	tids = calloc((size_t)count, sizeof(pid_t));
	pthread_t *handles = calloc((size_t)count, sizeof(pthread_t));
	if (!tids || !handles)
		die("calloc");
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
	for (long i = 0; i < count; i++) {
		int err = pthread_create(&handles[i], &attr, thread_main, (void *)i);
		if (err) {
			errno = err;
			die("pthread_create");
		}
	}
	while (atomic_load(&started) < count)
		usleep(1000);
	for (long i = 0; i < count; i++)
		printf("%d\n", tids[i]);
	printf("ready\n");
	fflush(stdout);
	for (long i = 0; i < count; i++)
		pthread_join(handles[i], NULL);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "procs") == 0)
		return procs(strtol(argv[2], NULL, 10), argv[3]);
	if (argc == 3 && strcmp(argv[1], "threads") == 0)
		return threads(strtol(argv[2], NULL, 10));
	fprintf(stderr, "usage: targets procs N NAME | targets threads N\n");
	return 2;
}
