/*
 * expiry.c - the expiry thread of a context: it sleeps in epoll on a
 * CLOCK_MONOTONIC timerfd armed (absolute) to the earliest hard expiry, an
 * eventfd to wake or stop it, and a CLOCK_REALTIME timerfd with
 * TFD_TIMER_CANCEL_ON_SET that reports wall-clock jumps. It runs with 1 ns
 * timer slack and every signal blocked but the fault signals.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "hrt_internal.h"

/* Far-future arming of the cancel-on-set REALTIME timerfd. */
#define RT_WATCH_SEC (1LL << 40)

static void arm_rt_watch(int rtfd)
{
	struct itimerspec its = { .it_value = { .tv_sec = RT_WATCH_SEC } };

	timerfd_settime(rtfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
			&its, NULL);
}

/* Program the timerfd for `mono` (INT64_MAX: disarm). Lock held. */
void hrt_cpu_base_program(struct hrt_cpu_base *cpu_base, int64_t mono)
{
	struct itimerspec its = { 0 };

	if (mono == cpu_base->next_event)
		return;
	cpu_base->next_event = mono;
	if (cpu_base->domain->manual || cpu_base->tfd < 0)
		return;
	if (mono != HRT_KTIME_MAX) {
		if (mono < 1)
			mono = 1; /* 0 would disarm */
		its.it_value.tv_sec = mono / 1000000000LL;
		its.it_value.tv_nsec = mono % 1000000000LL;
	}
	timerfd_settime(cpu_base->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	cpu_base->stats.reprograms++;
}

/* Wake the thread so it runs an expiry pass. Lock held or not. */
void hrt_cpu_base_wake(struct hrt_cpu_base *cpu_base)
{
	uint64_t one = 1;
	ssize_t n;

	if (cpu_base->efd >= 0)
		do
			n = write(cpu_base->efd, &one, sizeof(one));
		while (n < 0 && errno == EINTR);
}

/* A timerfd or eventfd read returns the whole count at once: one read. */
static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
}

static void *expiry_main(void *arg)
{
	struct hrt_cpu_base *cpu_base = arg;
	struct epoll_event ev[3];
	unsigned gen = atomic_load(&hrt_fork_generation);

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	static const char *const names[HRT_NCTX] = {
		[HRT_CTX_SOFT] = "hrt-soft",
		[HRT_CTX_HARD] = "hrt-hard",
		[HRT_CTX_HARD_HOSTED] = "hrt-hard-py",
	};

	prctl(PR_SET_NAME, names[cpu_base->index], 0, 0, 0);
	pthread_mutex_lock(&cpu_base->lock);
	while (!cpu_base->stopping) {
		pthread_mutex_unlock(&cpu_base->lock);
		int n = epoll_wait(cpu_base->epfd, ev, 3, -1);

		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			uint64_t v;

			if (fd == cpu_base->rtfd) {
				if (read(fd, &v, sizeof(v)) < 0 && errno == ECANCELED) {
					arm_rt_watch(fd);
					pthread_mutex_lock(&cpu_base->lock);
					cpu_base->stats.clock_sets++;
					pthread_mutex_unlock(&cpu_base->lock);
				}
			} else {
				drain(fd);
			}
		}
		pthread_mutex_lock(&cpu_base->lock);
		if (cpu_base->stopping)
			break;
		/* A clock set moves the REALTIME offset: reprogram from scratch. */
		cpu_base->next_event = HRT_FORCE_REPROGRAM;
		cpu_base->run(cpu_base);
		/*
		 * A callback forked, and this is the child: its copy of this
		 * thread returned into the core. The child's core starts afresh
		 * without it (fds closed, no thread): end here.
		 */
		if (atomic_load(&hrt_fork_generation) != gen)
			break;
	}
	pthread_mutex_unlock(&cpu_base->lock);
	return NULL;
}

static void close_fds(struct hrt_cpu_base *cpu_base)
{
	int *fds[] = { &cpu_base->tfd, &cpu_base->rtfd, &cpu_base->efd, &cpu_base->epfd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static int open_fds(struct hrt_cpu_base *cpu_base)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[3];

	cpu_base->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	cpu_base->rtfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	cpu_base->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cpu_base->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cpu_base->tfd < 0 || cpu_base->rtfd < 0 || cpu_base->efd < 0 || cpu_base->epfd < 0)
		goto fail;
	fds[0] = cpu_base->tfd;
	fds[1] = cpu_base->rtfd;
	fds[2] = cpu_base->efd;
	for (int i = 0; i < 3; i++) {
		ev.data.fd = fds[i];
		if (epoll_ctl(cpu_base->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			goto fail;
	}
	arm_rt_watch(cpu_base->rtfd);
	return 0;
fail:;
	int err = -errno;

	close_fds(cpu_base);
	return err;
}

/* Start the thread of a real context if it is not running. Lock held. */
int hrt_cpu_base_ensure_thread(struct hrt_cpu_base *cpu_base)
{
	sigset_t all, old;
	int err;

	if (cpu_base->thread_running)
		return 0;
	if (cpu_base->tfd < 0) {
		err = open_fds(cpu_base);
		if (err)
			return err;
	}
	cpu_base->stopping = false;
	sigfillset(&all);
	/* Faults stay deliverable, so a crashing callback is reported as one. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&cpu_base->thread, NULL, expiry_main, cpu_base);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	cpu_base->thread_running = true;
	/* Whatever was programmed before belongs to no thread: redo it. */
	cpu_base->next_event = HRT_FORCE_REPROGRAM;
	hrt_cpu_base_wake(cpu_base);
	return 0;
}

/*
 * Stop and join the thread (lock not held). One caller joins; a concurrent
 * caller waits until the join is done.
 */
void hrt_cpu_base_stop_thread(struct hrt_cpu_base *cpu_base)
{
	pthread_t th;

	host_block(); /* the thread may need the host's lock to end */
	pthread_mutex_lock(&cpu_base->lock);
	if (cpu_base->stopping) {
		while (cpu_base->thread_running) {
			cpu_base->waiters++;
			pthread_cond_wait(&cpu_base->cond, &cpu_base->lock);
			cpu_base->waiters--;
		}
		pthread_mutex_unlock(&cpu_base->lock);
		return;
	}
	if (!cpu_base->thread_running) {
		pthread_mutex_unlock(&cpu_base->lock);
		return;
	}
	cpu_base->stopping = true;
	th = cpu_base->thread;
	hrt_cpu_base_wake(cpu_base);
	pthread_mutex_unlock(&cpu_base->lock);
	pthread_join(th, NULL);
	pthread_mutex_lock(&cpu_base->lock);
	cpu_base->thread_running = false;
	pthread_cond_broadcast(&cpu_base->cond);
	pthread_mutex_unlock(&cpu_base->lock);
}

/* In a fork child: the thread is gone and the fds are the parent's. */
void hrt_cpu_base_forget_thread(struct hrt_cpu_base *cpu_base)
{
	cpu_base->thread_running = false;
	cpu_base->stopping = false;
	close_fds(cpu_base);
}
