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
void hrt_cpu_base_program(struct hrt_cpu_base *cb, int64_t mono)
{
	struct itimerspec its = { 0 };

	if (mono == cb->next_event)
		return;
	cb->next_event = mono;
	if (cb->domain->manual || cb->tfd < 0)
		return;
	if (mono != HRT_KTIME_MAX) {
		if (mono < 1)
			mono = 1; /* 0 would disarm */
		its.it_value.tv_sec = mono / 1000000000LL;
		its.it_value.tv_nsec = mono % 1000000000LL;
	}
	timerfd_settime(cb->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	cb->stats.reprograms++;
}

/* Wake the thread so it runs an expiry pass. Lock held or not. */
void hrt_cpu_base_wake(struct hrt_cpu_base *cb)
{
	uint64_t one = 1;
	ssize_t n;

	if (cb->efd >= 0)
		do
			n = write(cb->efd, &one, sizeof(one));
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
	struct hrt_cpu_base *cb = arg;
	struct epoll_event ev[3];
	unsigned gen = atomic_load(&hrt_fork_generation);

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	static const char *const names[HRT_NCTX] = {
		[HRT_CTX_SOFT] = "hrt-soft",
		[HRT_CTX_HARD] = "hrt-hard",
		[HRT_CTX_HARD_HOSTED] = "hrt-hard-py",
	};

	prctl(PR_SET_NAME, names[cb->index], 0, 0, 0);
	pthread_mutex_lock(&cb->lock);
	while (!cb->stopping) {
		pthread_mutex_unlock(&cb->lock);
		int n = epoll_wait(cb->epfd, ev, 3, -1);

		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			uint64_t v;

			if (fd == cb->rtfd) {
				if (read(fd, &v, sizeof(v)) < 0 && errno == ECANCELED) {
					arm_rt_watch(fd);
					pthread_mutex_lock(&cb->lock);
					cb->stats.clock_sets++;
					pthread_mutex_unlock(&cb->lock);
				}
			} else {
				drain(fd);
			}
		}
		pthread_mutex_lock(&cb->lock);
		if (cb->stopping)
			break;
		/* A clock set moves the REALTIME offset: reprogram from scratch. */
		cb->next_event = HRT_FORCE_REPROGRAM;
		cb->run(cb);
		/*
		 * A callback forked, and this is the child: its copy of this
		 * thread returned into the core. The child's core starts afresh
		 * without it (fds closed, no thread): end here.
		 */
		if (atomic_load(&hrt_fork_generation) != gen)
			break;
	}
	pthread_mutex_unlock(&cb->lock);
	return NULL;
}

static void close_fds(struct hrt_cpu_base *cb)
{
	int *fds[] = { &cb->tfd, &cb->rtfd, &cb->efd, &cb->epfd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static int open_fds(struct hrt_cpu_base *cb)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fds[3];

	cb->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	cb->rtfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	cb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	cb->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cb->tfd < 0 || cb->rtfd < 0 || cb->efd < 0 || cb->epfd < 0)
		goto fail;
	fds[0] = cb->tfd;
	fds[1] = cb->rtfd;
	fds[2] = cb->efd;
	for (int i = 0; i < 3; i++) {
		ev.data.fd = fds[i];
		if (epoll_ctl(cb->epfd, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			goto fail;
	}
	arm_rt_watch(cb->rtfd);
	return 0;
fail:;
	int err = -errno;

	close_fds(cb);
	return err;
}

/* Start the thread of a real context if it is not running. Lock held. */
int hrt_cpu_base_ensure_thread(struct hrt_cpu_base *cb)
{
	sigset_t all, old;
	int err;

	if (cb->thread_running)
		return 0;
	if (cb->tfd < 0) {
		err = open_fds(cb);
		if (err)
			return err;
	}
	cb->stopping = false;
	sigfillset(&all);
	/* Faults stay deliverable, so a crashing callback is reported as one. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&cb->thread, NULL, expiry_main, cb);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	cb->thread_running = true;
	/* Whatever was programmed before belongs to no thread: redo it. */
	cb->next_event = HRT_FORCE_REPROGRAM;
	hrt_cpu_base_wake(cb);
	return 0;
}

/*
 * Stop and join the thread (lock not held). One caller joins; a concurrent
 * caller waits until the join is done.
 */
void hrt_cpu_base_stop_thread(struct hrt_cpu_base *cb)
{
	pthread_t th;

	host_block(); /* the thread may need the host's lock to end */
	pthread_mutex_lock(&cb->lock);
	if (cb->stopping) {
		while (cb->thread_running) {
			cb->waiters++;
			pthread_cond_wait(&cb->cond, &cb->lock);
			cb->waiters--;
		}
		pthread_mutex_unlock(&cb->lock);
		return;
	}
	if (!cb->thread_running) {
		pthread_mutex_unlock(&cb->lock);
		return;
	}
	cb->stopping = true;
	th = cb->thread;
	hrt_cpu_base_wake(cb);
	pthread_mutex_unlock(&cb->lock);
	pthread_join(th, NULL);
	pthread_mutex_lock(&cb->lock);
	cb->thread_running = false;
	pthread_cond_broadcast(&cb->cond);
	pthread_mutex_unlock(&cb->lock);
}

/* In a fork child: the thread is gone and the fds are the parent's. */
void hrt_cpu_base_forget_thread(struct hrt_cpu_base *cb)
{
	cb->thread_running = false;
	cb->stopping = false;
	close_fds(cb);
}
