/*
 * /init of the kernel-matrix initramfs: mounts /proc, runs
 * `/pidwatch check --json` once on the kernel's own regime and once forced
 * into each regime, each between marker lines on the serial console, then
 * reboots (qemu runs with -no-reboot, so it exits).
 */
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void run(const char *label, char *const argv[])
{
	int status = 0;
	pid_t pid;

	printf("=== pidwatch-matrix begin %s\n", label);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		perror("execv /pidwatch");
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		perror("running /pidwatch");
	printf("=== pidwatch-matrix end %s %d\n", label,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fflush(stdout);
}

int main(void)
{
	static const char *const regimes[] = {
		"fixed", "legacy-thread-pidfd", "no-thread-pidfd", "no-pidfd",
	};
	char *check[] = { "/pidwatch", "check", "--json", NULL };
	unsigned int i;

	mkdir("/proc", 0555);
	if (mount("proc", "/proc", "proc", 0, NULL) != 0)
		perror("mount /proc");

	run("auto", check);
	for (i = 0; i < sizeof(regimes) / sizeof(regimes[0]); i++) {
		char *forced[] = { "/pidwatch", "check", "--json", "--regime",
				   (char *)regimes[i], NULL };
		run(regimes[i], forced);
	}

	printf("=== pidwatch-matrix done\n");
	fflush(stdout);
	sync();
	reboot(RB_AUTOBOOT);
	return 0;
}
