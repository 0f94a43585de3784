/*
 * test_core.c - the C core's defects of the line-by-line review (issue 15)
 * and of the adversarial pass (issue 9), with a host installed: fork from a
 * hosted callback, concurrent stop, free races, builtins with slack, the
 * host's acquire/release order, integer limits, at-most-once expiry runs,
 * nested manual advances, fork during another thread's callback, a stopped
 * advance, the atomic manual clock, a timer freed by its own callback.
 *
 * The tests that stop the default domain run last (a stopped domain stays
 * stopped). Tests that fork are left out under TSan (it does not support a
 * multi-threaded fork child that starts threads).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hrtimer.h"
#include "hrt_builtins.h"
#include "hrt_internal.h"

#define MS 1000000LL
#define SEC 1000000000LL

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

/* `make stress` runs the plain build under valgrind: fewer rounds there. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef UNDER_VALGRIND
#define UNDER_VALGRIND 0
#endif

/* Iterations of a loop that makes a race likely: n, or n / 10 when slowed. */
static int rounds(int n)
{
	return UNDER_TSAN || UNDER_VALGRIND ? n / 10 : n;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / SEC, .tv_nsec = ns % SEC };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Run fn(arg) in a thread; false if it did not return within timeout_ns
 * (the thread is left behind, stuck: the check fails). */
static bool run_with_timeout(void *(*fn)(void *), void *arg, int64_t timeout_ns)
{
	pthread_t th;
	struct timespec ts;

	if (pthread_create(&th, NULL, fn, arg))
		return false;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ns / SEC;
	ts.tv_nsec += timeout_ns % SEC;
	if (ts.tv_nsec >= SEC) {
		ts.tv_sec++;
		ts.tv_nsec -= SEC;
	}
	if (pthread_timedjoin_np(th, NULL, &ts) != 0) {
		pthread_detach(th);
		return false;
	}
	return true;
}

static bool wait_for(_Atomic int *v, int want, int64_t timeout_ns)
{
	int64_t end = check_mono_ns() + timeout_ns;

	while (atomic_load(v) < want) {
		if (check_mono_ns() > end)
			return false;
		sleep_ns(MS / 10);
	}
	return true;
}

/* ---- the host: reference counts per object, like Python's ---- */

struct obj {
	_Atomic int core_refs;   /* acquired by the core, not released yet */
	_Atomic int acquires;
	_Atomic int releases;
	_Atomic int bad;         /* a release without its acquire */
	int id;
};

static _Atomic int host_slow_acquire;   /* ns to stall in acquire (a GIL wait) */
static _Atomic int report_fd = -1;      /* fork tests: the child reports here */
static _Atomic int exit_on_release;     /* fork child: _exit after releasing this id */
static pid_t parent_pid;

static void host_acquire(void *data)
{
	struct obj *o = data;
	int stall = atomic_load(&host_slow_acquire);

	if (stall)
		sleep_ns(stall);
	atomic_fetch_add(&o->acquires, 1);
	atomic_fetch_add(&o->core_refs, 1);
}

static void child_report(char what, int id);

static void host_release(void *data)
{
	struct obj *o = data;

	atomic_fetch_add(&o->releases, 1);
	if (atomic_fetch_sub(&o->core_refs, 1) <= 0)
		atomic_fetch_add(&o->bad, 1);
	if (getpid() != parent_pid) {
		child_report('R', o->id);
		/* the child's other threads (a re-armed timer's) never end */
		if (o->id == atomic_load(&exit_on_release))
			_exit(0);
	}
}

static __thread int batch_depth;
static _Atomic int batch_bad;

static void host_batch_enter(void)
{
	batch_depth++;
}

static void host_batch_exit(void)
{
	if (--batch_depth < 0)
		atomic_fetch_add(&batch_bad, 1);
}

/* block: counted per thread; it must come without the timer's lock held */
static __thread int blocks;
static struct hrt_timer *_Atomic block_lock_of;
static _Atomic int block_under_lock;

static void test_host_block(void)
{
	struct hrt_timer *t = atomic_load(&block_lock_of);

	blocks++;
	if (t && t->base->cpu_base->lock.__data.__owner == (int)syscall(SYS_gettid))
		atomic_fetch_add(&block_under_lock, 1);
}

static const struct hrt_host host = {
	host_acquire, host_release, host_batch_enter, host_batch_exit, test_host_block,
};

static struct hrt_timer *hosted_timer(struct hrt_domain *d, int clock, int mode,
				      hrt_callback_t fn)
{
	struct hrt_timer *t = hrt_timer_alloc();

	if (!CHECK(t != NULL))
		return NULL;
	if (!CHECK_EQ(hrt_timer_setup(t, d, clock, mode, fn, NULL, HRT_F_HOSTED), 0)) {
		hrt_timer_free(t);
		return NULL;
	}
	return t;
}

static struct hrt_timer *c_timer(struct hrt_domain *d, int clock, int mode,
				 hrt_callback_t fn, void *data)
{
	struct hrt_timer *t = hrt_timer_alloc();

	if (!CHECK(t != NULL))
		return NULL;
	if (!CHECK_EQ(hrt_timer_setup(t, d, clock, mode, fn, data, 0), 0)) {
		hrt_timer_free(t);
		return NULL;
	}
	return t;
}

/* ---- 15.1: fork from a hosted callback ---- */

/* "R<id>" per release in a fork child, through a pipe to the parent. */
static void child_report(char what, int id)
{
	char msg[2] = { what, (char)('0' + id) };
	int fd = atomic_load(&report_fd);

	if (fd >= 0)
		(void)!write(fd, msg, 2);
}

static struct obj fk_a = { .id = 1 }, fk_b1 = { .id = 2 }, fk_b2 = { .id = 3 };
static struct hrt_timer *fk_ta, *fk_tb;
static _Atomic int fk_fired;
static _Atomic pid_t fk_child;

static int fork_cb(struct hrt_timer *t, void *data)
{
	pid_t pid;

	(void)t;
	(void)data;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* The child, on its copy of the expiry thread. B was queued at
		 * the fork: re-arm it with new data before releasing orphans
		 * (the orphan list must not go through B's tree node). */
		alarm(10);
		if (hrt_timer_start_range_data(fk_tb, 10 * SEC, 0, &fk_b2) != 1)
			child_report('E', 0);
		hrt_fork_release_orphans();	/* releases B's old data, not A's */
		hrt_timer_cancel(fk_tb);	/* releases B's new data */
		child_report('C', 0);		/* A's release follows: its run ends it */
		atomic_store(&exit_on_release, fk_a.id);
		return HRT_RESTART;		/* no restart in the child */
	}
	atomic_store(&fk_child, pid);
	atomic_fetch_add(&fk_fired, 1);
	return HRT_NORESTART;
}

static void test_fork_from_hosted_callback(void)
{
	int fds[2];
	char buf[64];
	int status, n, got = 0;
	int rel[4] = { 0 };
	bool done = false;

	if (UNDER_TSAN) {
		snprintf(check_note, sizeof(check_note), "[skipped under TSan: fork]");
		return;
	}
	REQUIRE(pipe(fds) == 0);
	fk_ta = hosted_timer(NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, fork_cb);
	fk_tb = hosted_timer(NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, fork_cb);
	REQUIRE(fk_ta && fk_tb);
	atomic_store(&report_fd, fds[1]);
	CHECK_EQ(hrt_timer_start_range_data(fk_tb, 100 * SEC, 0, &fk_b1), 1);
	CHECK_EQ(hrt_timer_start_range_data(fk_ta, MS, 0, &fk_a), 1);
	CHECK(wait_for(&fk_fired, 1, 5 * SEC));
	atomic_store(&report_fd, -1);
	close(fds[1]);
	REQUIRE(atomic_load(&fk_child) > 0);
	CHECK_EQ(waitpid(atomic_load(&fk_child), &status, 0), atomic_load(&fk_child));
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	while ((n = (int)read(fds[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fds[0]);
	for (int i = 0; i + 1 < got; i += 2) {
		if (buf[i] == 'R' && buf[i + 1] >= '1' && buf[i + 1] <= '3') {
			rel[buf[i + 1] - '0']++;
			/* A is released by its own run, after the callback */
			if (buf[i + 1] == '1')
				CHECK(done);
		} else if (buf[i] == 'C') {
			done = true;
		} else {
			CHECK(!"unexpected child report");
		}
	}
	buf[got] = '\0';
	snprintf(check_note, sizeof(check_note), "[child reported \"%s\"]", buf);
	CHECK(done);
	CHECK_EQ(rel[1], 1);	/* A: once, not twice */
	CHECK_EQ(rel[2], 1);	/* B's data at the fork */
	CHECK_EQ(rel[3], 1);	/* B's data of the child's re-arm */
	/* the parent: B still armed with its own data */
	CHECK_EQ(hrt_timer_cancel(fk_tb), 1);
	CHECK_EQ(atomic_load(&fk_b1.core_refs), 0);
	CHECK_EQ(atomic_load(&fk_a.core_refs), 0);
	CHECK_EQ(atomic_load(&fk_a.bad) + atomic_load(&fk_b1.bad), 0);
	hrt_timer_free(fk_ta);
	hrt_timer_free(fk_tb);
}

/* ---- 15.3: hrt_domain_free racing the last hrt_timer_free ---- */

/*
 * Fault injection: a signal every 20 us that stalls the thread it hits for
 * 10 us, at whatever instruction it is; a stall inside the few instructions
 * between two steps of the freeing sequence lets the other thread run its
 * whole free there. (The old two-counter code double-freed in 3 of 6 runs
 * of the default 10,000 rounds so stretched; HRT_FREE_RACE_ROUNDS sets the
 * number.)
 */
static void stall_handler(int sig)
{
	int64_t end = check_mono_ns() + 10000;

	(void)sig;
	while (check_mono_ns() < end)
		;
}

static bool stall_start(timer_t *tm)
{
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { { 0, 20000 }, { 0, 20000 } };

	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	return timer_create(CLOCK_MONOTONIC, &sev, tm) == 0 && timer_settime(*tm, 0, &its, NULL) == 0;
}

static void stall_stop(timer_t tm)
{
	timer_delete(tm);
}

struct free_race {
	pthread_barrier_t go;
	struct hrt_domain *d;
	struct hrt_timer *t;
	int rounds;
};

static int noop_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	return HRT_NORESTART;
}

static void *free_race_timer(void *arg)
{
	struct free_race *r = arg;
	timer_t tm;
	/* valgrind serializes threads: a signal storm there only slows it */
	bool stalls = !UNDER_VALGRIND && stall_start(&tm);

	CHECK(stalls || UNDER_VALGRIND);
	for (int i = 0; i < r->rounds; i++) {
		pthread_barrier_wait(&r->go);
		hrt_timer_free(r->t);
		pthread_barrier_wait(&r->go);
	}
	if (stalls)
		stall_stop(tm);
	return NULL;
}

static void test_domain_free_races_timer_free(void)
{
	const char *env = getenv("HRT_FREE_RACE_ROUNDS");
	struct free_race r = { .rounds = env ? atoi(env) : rounds(10000) };
	pthread_t th;

	signal(SIGUSR1, stall_handler);

	pthread_barrier_init(&r.go, NULL, 2);
	REQUIRE(pthread_create(&th, NULL, free_race_timer, &r) == 0);
	for (int i = 0; i < r.rounds; i++) {
		CHECK_EQ(hrt_domain_new_manual(&r.d, 0), 0);
		r.t = c_timer(r.d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, noop_cb, NULL);
		pthread_barrier_wait(&r.go);
		CHECK_EQ(hrt_domain_free(r.d), 0);	/* the last one frees it */
		pthread_barrier_wait(&r.go);
	}
	pthread_join(th, NULL);
	pthread_barrier_destroy(&r.go);
	snprintf(check_note, sizeof(check_note), "[%d rounds%s]", r.rounds,
		 UNDER_VALGRIND ? "" : " with stalls");
}

/* ---- 15.5: periodic builtins with slack >= interval ---- */

static void test_builtin_slack_no_spin(void)
{
	struct hrt_domain *d;
	struct hrt_counter c = { .interval = MS, .limit = 1000 };
	struct hrt_counter rc = { .interval = MS };
	struct hrt_timer *t, *rt;
	uint64_t n;

	/* manual: each expiry runs it once and moves it one interval on */
	REQUIRE(hrt_domain_new_manual(&d, 0) == 0);
	t = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, hrt_cb_count, &c);
	REQUIRE(t);
	CHECK_EQ(hrt_timer_start_range(t, MS, MS), 1);	/* soft 1 ms, hard 2 ms */
	CHECK_EQ(hrt_domain_advance(d, 2 * MS), 1);	/* woken at the hard expiry */
	CHECK_EQ(hrt_counter_value(&c), 1);
	CHECK(hrt_timer_get_softexpires(t) > hrt_domain_now(d, HRT_CLOCK_MONOTONIC));
	for (int k = 0; k < 10; k++)
		CHECK_EQ(hrt_domain_advance(d, MS), 1);
	CHECK_EQ(hrt_counter_value(&c), 11);
	hrt_timer_free(t);
	CHECK_EQ(hrt_domain_free(d), 0);

	/* real: a 1 ms counter with 1 ms slack for 100 ms */
	rt = c_timer(NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, hrt_cb_count, &rc);
	REQUIRE(rt);
	CHECK_EQ(hrt_timer_start_range(rt, MS, MS), 1);
	sleep_ns(100 * MS);
	hrt_timer_cancel(rt);
	n = hrt_counter_value(&rc);
	snprintf(check_note, sizeof(check_note), "[%llu runs in 100 ms]", (unsigned long long)n);
	CHECK(n >= 10 && n <= 150);
	hrt_timer_free(rt);
}

/* ---- 15.7: acquire before release, for every activation ---- */

static _Atomic int ar_fired;

static int ar_cb(struct hrt_timer *t, void *data)
{
	struct obj *o = data;

	(void)t;
	if (atomic_load(&o->core_refs) < 1)
		atomic_fetch_add(&o->bad, 1);	/* running without the reference */
	atomic_fetch_add(&ar_fired, 1);
	return HRT_NORESTART;
}

static void test_acquire_before_release(void)
{
	static struct obj o = { .id = 4 };
	struct hrt_timer *t = hosted_timer(NULL, HRT_CLOCK_MONOTONIC,
					   HRT_MODE_REL | HRT_MODE_HARD, ar_cb);
	int n = rounds(1000);

	REQUIRE(t);
	atomic_store(&host_slow_acquire, 50000);	/* 50 us "GIL" wait */
	for (int i = 0; i < n; i++) {
		CHECK_EQ(hrt_timer_start_range_data(t, 0, 0, &o), 1);	/* already due */
		if (!CHECK(wait_for(&ar_fired, i + 1, 5 * SEC)))
			break;
		/* the run's release follows the callback: wait for it */
		for (int k = 0; k < 10000 && atomic_load(&o.releases) < i + 1; k++)
			sleep_ns(10000);
	}
	atomic_store(&host_slow_acquire, 0);
	CHECK_EQ(atomic_load(&o.bad), 0);
	CHECK_EQ(atomic_load(&o.acquires), n);
	CHECK_EQ(atomic_load(&o.releases), n);
	CHECK_EQ(atomic_load(&o.core_refs), 0);
	hrt_timer_free(t);
}

/* ---- 15.9: integer limits ---- */

static int lat_cb_runs(struct hrt_timer *t, void *data)
{
	return hrt_cb_latency(t, data);
}

static void test_integer_limits(void)
{
	struct hrt_domain *d;
	struct hrt_timer *t;
	int64_t sample = 0;
	struct hrt_latency_rec rec = { .samples = &sample, .cap = 1, .done_fd = -1 };

	REQUIRE(hrt_domain_new_manual(&d, 0) == 0);
	/* the wall-clock shift saturates instead of wrapping */
	CHECK_EQ(hrt_domain_shift_realtime(d, INT64_MAX), 0);
	CHECK_EQ(hrt_domain_shift_realtime(d, INT64_MAX), 0);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_REALTIME), INT64_MAX);
	CHECK_EQ(hrt_domain_shift_realtime(d, INT64_MIN), 0);
	CHECK_EQ(hrt_domain_shift_realtime(d, INT64_MIN), 0);
	CHECK_EQ(hrt_domain_shift_realtime(d, INT64_MIN), 0);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_REALTIME), INT64_MIN);
	/* an INT64_MIN offset is not negated (UBSan) */
	t = c_timer(d, HRT_CLOCK_REALTIME, HRT_MODE_ABS | HRT_MODE_HARD, noop_cb, NULL);
	REQUIRE(t);
	CHECK_EQ(hrt_timer_start_range(t, 5, 0), 1);
	CHECK_EQ(hrt_timer_get_remaining(t), INT64_MAX);
	CHECK_EQ(hrt_domain_advance(d, 1), 0);
	CHECK_EQ(hrt_timer_cancel(t), 1);
	hrt_timer_free(t);
	/* the latency builtin on an ABS expiry of INT64_MIN saturates */
	t = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS | HRT_MODE_HARD, lat_cb_runs, &rec);
	REQUIRE(t);
	CHECK_EQ(hrt_timer_start_range(t, INT64_MIN, 0), 1);
	CHECK_EQ(hrt_domain_advance(d, 1), 1);
	CHECK_EQ(sample, INT64_MAX);
	hrt_timer_free(t);
	CHECK_EQ(hrt_domain_free(d), 0);
	/* introspection of NULL or a timer never set up */
	CHECK_EQ(hrt_timer_clock(NULL), -EINVAL);
	CHECK_EQ(hrt_timer_mode(NULL), -EINVAL);
	t = hrt_timer_alloc();
	REQUIRE(t);
	CHECK_EQ(hrt_timer_clock(t), -EINVAL);
	CHECK_EQ(hrt_timer_mode(t), -EINVAL);
	hrt_timer_free(t);
}

/* ---- reasoned: setup racing start on another thread ---- */

struct setup_race {
	struct hrt_domain *d[2];
	struct hrt_timer *t;
	_Atomic int stop;
};

static void *setup_race_starter(void *arg)
{
	struct setup_race *r = arg;

	while (!atomic_load(&r->stop)) {
		int rc = hrt_timer_start_range(r->t, SEC, 0);

		if (rc != 0 && rc != 1)
			CHECK_EQ(rc, 0);
		hrt_timer_cancel(r->t);
		sched_yield();	/* let set-ups find it inactive too */
	}
	return NULL;
}

static void test_setup_races_start(void)
{
	struct setup_race r = { 0 };
	pthread_t th;
	int ok = 0, busy = 0;

	REQUIRE(hrt_domain_new_manual(&r.d[0], 0) == 0);
	REQUIRE(hrt_domain_new_manual(&r.d[1], 0) == 0);
	r.t = c_timer(r.d[0], HRT_CLOCK_MONOTONIC, HRT_MODE_REL, noop_cb, NULL);
	REQUIRE(r.t);
	REQUIRE(pthread_create(&th, NULL, setup_race_starter, &r) == 0);
	for (int i = 0; i < rounds(20000); i++) {
		int rc = hrt_timer_setup(r.t, r.d[i & 1],
					 (i & 2) ? HRT_CLOCK_MONOTONIC : HRT_CLOCK_TAI,
					 HRT_MODE_REL | ((i & 4) ? HRT_MODE_HARD : 0), noop_cb,
					 NULL, 0);

		if (rc == 0)
			ok++;
		else if (CHECK_EQ(rc, -EBUSY))
			busy++;
	}
	atomic_store(&r.stop, 1);
	pthread_join(th, NULL);
	hrt_timer_cancel(r.t);
	for (int k = 0; k < 2; k++)
		for (int h = 0; h < HRT_NCTX; h++)
			for (int i = 0; i < HRT_NCLOCKS; i++) {
				CHECK_EQ(tq_check(&r.d[k]->ctx[h].clock_base[i].queue), 0);
				CHECK_EQ(r.d[k]->ctx[h].clock_base[i].queue.count, 0);
			}
	snprintf(check_note, sizeof(check_note), "[%d set-ups, %d busy]", ok, busy);
	hrt_timer_free(r.t);
	CHECK_EQ(hrt_domain_free(r.d[0]), 0);
	CHECK_EQ(hrt_domain_free(r.d[1]), 0);
}

/* ---- 9.3: a timer still due after its callback ---- */

enum due_kind { DUE_RESTART_RAW, DUE_REARM_NOW, DUE_TICK };

struct due {
	enum due_kind kind;
	int64_t interval;
	int64_t overruns;
	_Atomic int runs;
};

static int due_cb(struct hrt_timer *t, void *data)
{
	struct due *u = data;

	atomic_fetch_add(&u->runs, 1);
	switch (u->kind) {
	case DUE_RESTART_RAW:
		return HRT_RESTART;
	case DUE_REARM_NOW:
		hrt_timer_start_range(t, hrt_timer_cb_now(t), 0);
		return HRT_NORESTART;
	case DUE_TICK:
		u->overruns += hrt_timer_forward_now(t, u->interval) - 1;
		return HRT_RESTART;
	}
	return HRT_NORESTART;
}

static void test_still_due_runs_once_per_run(void)
{
	struct hrt_domain *d;

	REQUIRE(hrt_domain_new_manual(&d, 0) == 0);
	for (int k = 0; k < 3; k++) {
		struct due u = { .kind = (enum due_kind)k, .interval = 100 };
		struct due other = { .kind = DUE_TICK, .interval = 1000 };
		int mode = (k == DUE_REARM_NOW ? HRT_MODE_ABS : HRT_MODE_REL) | HRT_MODE_SOFT;
		struct hrt_timer *t = c_timer(d, HRT_CLOCK_MONOTONIC, mode, due_cb, &u);
		struct hrt_timer *o = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, due_cb, &other);
		int64_t now = hrt_domain_now(d, HRT_CLOCK_MONOTONIC);

		REQUIRE(t && o);
		/* the Tick pattern started with slack, woken inside its window */
		CHECK_EQ(hrt_timer_start_range(t, k == DUE_REARM_NOW ? now + 100 : 100,
					       k == DUE_TICK ? 50 : 0), 1);
		CHECK_EQ(hrt_timer_start_range(o, 100, 0), 1);
		CHECK_EQ(hrt_domain_advance(d, 120), 2);	/* each once */
		CHECK_EQ(atomic_load(&u.runs), 1);
		CHECK_EQ(atomic_load(&other.runs), 1);
		CHECK_EQ(hrt_domain_advance(d, 0), k == DUE_TICK ? 0 : 1);
		CHECK_EQ(atomic_load(&u.runs), k == DUE_TICK ? 1 : 2);
		CHECK_EQ(u.overruns, 0);
		CHECK_EQ(hrt_timer_try_to_cancel(t), 1);
		hrt_timer_cancel(o);
		hrt_timer_free(t);
		hrt_timer_free(o);
	}
	CHECK_EQ(hrt_domain_free(d), 0);

	/* a saturated clock with a periodic timer: once per advance */
	struct due u = { .kind = DUE_TICK, .interval = 1000 };
	struct hrt_timer *t;

	REQUIRE(hrt_domain_new_manual(&d, INT64_MAX - 10) == 0);
	t = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, due_cb, &u);
	REQUIRE(t);
	CHECK_EQ(hrt_timer_start_range(t, 1000, 0), 1);	/* saturates */
	CHECK_EQ(hrt_domain_advance(d, INT64_MAX), 1);
	CHECK_EQ(hrt_domain_advance(d, 0), 1);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_MONOTONIC), INT64_MAX);
	CHECK(u.overruns >= 0);
	hrt_timer_free(t);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* on a real domain: cancel() of a RESTART-without-forward timer returns */
static void *cancel_thread(void *arg)
{
	hrt_timer_cancel(arg);
	return NULL;
}

static void test_real_restart_raw_cancel_returns(void)
{
	struct due u = { .kind = DUE_RESTART_RAW };
	struct hrt_timer *t = c_timer(NULL, HRT_CLOCK_MONOTONIC,
				      HRT_MODE_REL | HRT_MODE_HARD, due_cb, &u);

	REQUIRE(t);
	CHECK_EQ(hrt_timer_start_range(t, 0, 0), 1);
	CHECK(wait_for(&u.runs, 2, 5 * SEC));
	CHECK(run_with_timeout(cancel_thread, t, 5 * SEC));
	CHECK_EQ(hrt_timer_is_active(t), 0);
	hrt_timer_free(t);
}

/* ---- the host's block hook: before every wait, never under a lock ---- */

static _Atomic int slow_running;

static int slow_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	atomic_store(&slow_running, 1);
	sleep_ns(20 * MS);
	return HRT_NORESTART;
}

static void test_block_before_waits(void)
{
	struct hrt_timer *t = c_timer(NULL, HRT_CLOCK_MONOTONIC,
				      HRT_MODE_REL | HRT_MODE_HARD, slow_cb, NULL);
	int b0;

	REQUIRE(t);
	atomic_store(&block_lock_of, t);
	/* A queued timer: no wait, no block. */
	CHECK_EQ(hrt_timer_start_range(t, 10 * SEC, 0), 1);
	b0 = blocks;
	CHECK_EQ(hrt_timer_cancel(t), 1);
	CHECK_EQ(blocks, b0);
	/* A running callback: cancel blocks once, then waits for it. */
	CHECK_EQ(hrt_timer_start_range(t, 0, 0), 1);
	for (int k = 0; k < 5000 && !atomic_load(&slow_running); k++)
		sleep_ns(100000);
	CHECK(atomic_load(&slow_running));
	b0 = blocks;
	CHECK_EQ(hrt_timer_cancel(t), 0);
	CHECK_EQ(blocks, b0 + 1);
	CHECK_EQ(hrt_timer_callback_running(t), 0);
	/* A sleep blocks before it sleeps. */
	b0 = blocks;
	CHECK(hrt_sleep_until(HRT_CLOCK_MONOTONIC, hrt_now(HRT_CLOCK_MONOTONIC) + MS) >= 0);
	CHECK_EQ(blocks, b0 + 1);
	atomic_store(&block_lock_of, NULL);
	CHECK_EQ(atomic_load(&block_under_lock), 0);
	hrt_timer_free(t);
}

/* ---- 9.4: nested manual advances know every pass on the thread ---- */

struct nest {
	struct hrt_domain *d1, *d2;
	struct hrt_timer *a, *b;
	int cancel_ret;
	int64_t inner_ran;
};

static int nest_outer_cb(struct hrt_timer *t, void *data)
{
	struct nest *n = data;

	(void)t;
	n->inner_ran = hrt_domain_advance(n->d2, 10);
	return HRT_RESTART;	/* cancelled from the inner callback: ignored */
}

static int nest_inner_cb(struct hrt_timer *t, void *data)
{
	struct nest *n = data;

	(void)t;
	n->cancel_ret = hrt_timer_cancel(n->a);	/* running on this thread */
	CHECK_EQ(hrt_domain_advance(n->d1, 1), -EBUSY);	/* outer run too */
	return HRT_NORESTART;
}

static void *nest_run(void *arg)
{
	struct nest *n = arg;

	CHECK_EQ(hrt_domain_advance(n->d1, 10), 1);
	return NULL;
}

static void test_nested_advance_cancel_outer(void)
{
	static struct nest n;

	REQUIRE(hrt_domain_new_manual(&n.d1, 0) == 0);
	REQUIRE(hrt_domain_new_manual(&n.d2, 0) == 0);
	n.a = c_timer(n.d1, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, nest_outer_cb, &n);
	n.b = c_timer(n.d2, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, nest_inner_cb, &n);
	REQUIRE(n.a && n.b);
	CHECK_EQ(hrt_timer_start_range(n.a, 10, 0), 1);
	CHECK_EQ(hrt_timer_start_range(n.b, 10, 0), 1);
	if (!CHECK(run_with_timeout(nest_run, &n, 5 * SEC))) {
		snprintf(check_note, sizeof(check_note), "[deadlock: left behind]");
		return;
	}
	CHECK_EQ(n.inner_ran, 1);
	CHECK_EQ(n.cancel_ret, 0);
	CHECK_EQ(hrt_timer_is_active(n.a), 0);	/* the cancel stopped the RESTART */
	hrt_timer_free(n.a);
	hrt_timer_free(n.b);
	CHECK_EQ(hrt_domain_free(n.d1), 0);
	CHECK_EQ(hrt_domain_free(n.d2), 0);
}

/* ---- 9.6: fork while another thread is inside a manual callback ---- */

struct mfork {
	struct hrt_domain *d;
	struct hrt_timer *a, *b;
	_Atomic int in_cb, release;
	struct obj oa, ob;
};

static int mfork_block_cb(struct hrt_timer *t, void *data)
{
	struct mfork *m = (struct mfork *)((char *)data - offsetof(struct mfork, oa));

	(void)t;
	atomic_store(&m->in_cb, 1);
	while (!atomic_load(&m->release))
		sleep_ns(MS / 10);
	return HRT_NORESTART;
}

static _Atomic int mfork_b_runs;

static int mfork_b_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	atomic_fetch_add(&mfork_b_runs, 1);
	return HRT_NORESTART;
}

static void *mfork_advance(void *arg)
{
	struct mfork *m = arg;

	hrt_domain_advance(m->d, 10);
	return NULL;
}

static void test_fork_during_manual_callback(void)
{
	static struct mfork m;
	pthread_t th;
	pid_t pid;
	int status;

	if (UNDER_TSAN) {
		snprintf(check_note, sizeof(check_note), "[skipped under TSan: fork]");
		return;
	}
	m.oa.id = 5;
	m.ob.id = 6;
	REQUIRE(hrt_domain_new_manual(&m.d, 0) == 0);
	m.a = hosted_timer(m.d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, mfork_block_cb);
	m.b = hosted_timer(m.d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, mfork_b_cb);
	REQUIRE(m.a && m.b);
	CHECK_EQ(hrt_timer_start_range_data(m.a, 10, 0, &m.oa), 1);
	CHECK_EQ(hrt_timer_start_range_data(m.b, 20, 0, &m.ob), 1);
	REQUIRE(pthread_create(&th, NULL, mfork_advance, &m) == 0);
	CHECK(wait_for(&m.in_cb, 1, 5 * SEC));
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int code = 0;

		alarm(10);
		/* A's callback belongs to a thread the child does not have */
		if (hrt_timer_callback_running(m.a))
			code |= 1;
		if (hrt_timer_cancel(m.a) != 0)
			code |= 2;
		if (hrt_fork_release_orphans() != 1 || atomic_load(&m.oa.core_refs) != 0)
			code |= 4;
		/* the clock moves and runs B (the stuck run is gone) */
		if (hrt_domain_advance(m.d, 10) != 1 || atomic_load(&mfork_b_runs) != 1)
			code |= 8;
		if (atomic_load(&m.ob.core_refs) != 0)
			code |= 16;
		_exit(code);
	}
	REQUIRE(pid > 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	atomic_store(&m.release, 1);
	pthread_join(th, NULL);
	CHECK_EQ(hrt_domain_advance(m.d, 10), 1);	/* the parent's B */
	hrt_timer_free(m.a);
	hrt_timer_free(m.b);
	CHECK_EQ(atomic_load(&m.oa.core_refs) + atomic_load(&m.ob.core_refs), 0);
	CHECK_EQ(hrt_domain_free(m.d), 0);
}

/* ---- 9.9: a callback stops the advance ---- */

struct stopper {
	bool stop;
	int stop_ret;
	_Atomic int runs;
};

static int stopper_cb(struct hrt_timer *t, void *data)
{
	struct stopper *s = data;

	atomic_fetch_add(&s->runs, 1);
	if (s->stop)
		s->stop_ret = hrt_timer_stop_expiry(t);
	return HRT_NORESTART;
}

static void test_stop_expiry_ends_advance(void)
{
	struct hrt_domain *d;
	struct stopper s[3] = { { .stop = false }, { .stop = true }, { .stop = false } };
	struct stopper soft = { 0 };
	struct hrt_timer *t[3], *ts;

	REQUIRE(hrt_domain_new_manual(&d, 0) == 0);
	for (int i = 0; i < 3; i++) {
		t[i] = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD,
			       stopper_cb, &s[i]);
		REQUIRE(t[i]);
		CHECK_EQ(hrt_timer_start_range(t[i], 10 + i, 0), 1);
	}
	ts = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, stopper_cb, &soft);
	REQUIRE(ts);
	CHECK_EQ(hrt_timer_start_range(ts, 5, 0), 1);
	/* outside a callback: refused */
	CHECK_EQ(hrt_timer_stop_expiry(t[0]), -EINVAL);
	CHECK_EQ(hrt_domain_advance(d, 100), -EINTR);
	CHECK_EQ(s[1].stop_ret, 0);
	CHECK_EQ(atomic_load(&s[0].runs) + atomic_load(&s[1].runs), 2);
	CHECK_EQ(atomic_load(&s[2].runs), 0);	/* the rest waits */
	CHECK_EQ(atomic_load(&soft.runs), 0);	/* the SOFT context too */
	CHECK_EQ(hrt_timer_is_queued(t[2]), 1);
	CHECK_EQ(hrt_domain_advance(d, 0), 2);
	CHECK_EQ(atomic_load(&s[2].runs), 1);
	CHECK_EQ(atomic_load(&soft.runs), 1);
	for (int i = 0; i < 3; i++)
		hrt_timer_free(t[i]);
	hrt_timer_free(ts);
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- 9.10: the manual clock moves by atomic adds ---- */

#define ADV_THREADS 4

static void *advancer(void *arg)
{
	struct hrt_domain *d = arg;

	for (int i = 0; i < rounds(200000); i++)
		hrt_domain_advance(d, 1);
	return NULL;
}

static void test_concurrent_advance_loses_nothing(void)
{
	struct hrt_domain *d;
	pthread_t th[ADV_THREADS];

	REQUIRE(hrt_domain_new_manual(&d, 0) == 0);
	for (int i = 0; i < ADV_THREADS; i++)
		REQUIRE(pthread_create(&th[i], NULL, advancer, d) == 0);
	for (int i = 0; i < ADV_THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(hrt_domain_now(d, HRT_CLOCK_MONOTONIC),
		 (int64_t)ADV_THREADS * rounds(200000));
	CHECK_EQ(hrt_domain_free(d), 0);
}

/* ---- 16.1: a timer freed by its own callback ---- */

struct selffree {
	struct hrt_timer *t;
	_Atomic int runs;
};

static int selffree_cb(struct hrt_timer *t, void *data)
{
	struct selffree *s = data;

	atomic_fetch_add(&s->runs, 1);
	hrt_timer_free(t);	/* deferred: the run frees it on return */
	s->t = NULL;
	return HRT_RESTART;	/* ignored */
}

static struct obj sf_obj = { .id = 7 };

static int selffree_hosted_cb(struct hrt_timer *t, void *data)
{
	(void)data;
	hrt_timer_free(t);
	return HRT_RESTART;
}

static void test_free_from_own_callback(void)
{
	struct hrt_domain *d;
	struct selffree s = { 0 }, r = { 0 };
	struct hrt_timer *h;

	REQUIRE(hrt_domain_new_manual(&d, 0) == 0);
	s.t = c_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL, selffree_cb, &s);
	REQUIRE(s.t);
	CHECK_EQ(hrt_timer_start_range(s.t, 10, 0), 1);
	CHECK_EQ(hrt_domain_advance(d, 10), 1);
	CHECK_EQ(hrt_domain_advance(d, 100), 0);	/* not re-queued */
	CHECK_EQ(atomic_load(&s.runs), 1);
	/* hosted: the activation's reference is released once */
	h = hosted_timer(d, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, selffree_hosted_cb);
	REQUIRE(h);
	CHECK_EQ(hrt_timer_start_range_data(h, 10, 0, &sf_obj), 1);
	CHECK_EQ(hrt_domain_advance(d, 10), 1);
	CHECK_EQ(atomic_load(&sf_obj.releases), 1);
	CHECK_EQ(atomic_load(&sf_obj.core_refs), 0);
	/* the domain's last reference went with the free: it frees cleanly */
	CHECK_EQ(hrt_domain_free(d), 0);
	/* a real domain: the expiry thread frees it */
	r.t = c_timer(NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD, selffree_cb, &r);
	REQUIRE(r.t);
	CHECK_EQ(hrt_timer_start_range(r.t, MS, 0), 1);
	CHECK(wait_for(&r.runs, 1, 5 * SEC));
	sleep_ns(20 * MS);
	CHECK_EQ(atomic_load(&r.runs), 1);
}

/* ---- last: the default domain stops (15.2, 15.6, 15.8, 9.2) ---- */

static _Atomic int sleeper_done;
static int64_t sleeper_late;

static void *rt_sleeper(void *arg)
{
	int64_t deadline = *(int64_t *)arg;

	sleeper_late = hrt_sleep_until(HRT_CLOCK_REALTIME, deadline);
	atomic_store(&sleeper_done, 1);
	return NULL;
}

static int64_t hosted_sleep_deadline;
static _Atomic int hosted_sleeping, hosted_slept;
static int64_t hosted_late;

/* A HARD hosted (Python) callback in an absolute REALTIME sleep. */
static int hosted_sleep_cb(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	atomic_store(&hosted_sleeping, 1);
	hosted_late = hrt_sleep_until(HRT_CLOCK_REALTIME, hosted_sleep_deadline);
	atomic_store(&hosted_slept, 1);
	return HRT_NORESTART;
}

static void *stopper_thread(void *arg)
{
	(void)arg;
	CHECK_EQ(hrt_domain_stop(NULL), 0);
	return NULL;
}

static _Atomic int starter_stop;

static void *starter(void *arg)
{
	struct hrt_timer *t = arg;

	while (!atomic_load(&starter_stop)) {
		int rc = hrt_timer_start_range(t, SEC, 0);

		if (rc == -ESHUTDOWN)
			break;
		hrt_timer_cancel(t);
	}
	return NULL;
}

static void *stop_all(void *arg)
{
	pthread_t th[2];

	(void)arg;
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, stopper_thread, NULL);
	CHECK_EQ(hrt_domain_stop(NULL), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

static void test_real_stop(void)
{
	static struct obj o = { .id = 8 };
	static int64_t deadline;
	struct hrt_timer *hs, *st;
	pthread_t sl, stt;

	hs = hosted_timer(NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_HARD,
			  hosted_sleep_cb);
	st = c_timer(NULL, HRT_CLOCK_MONOTONIC, HRT_MODE_REL | HRT_MODE_SOFT, noop_cb, NULL);
	REQUIRE(hs && st);
	deadline = hrt_now(HRT_CLOCK_REALTIME) + 400 * MS;
	hosted_sleep_deadline = deadline;
	REQUIRE(pthread_create(&sl, NULL, rt_sleeper, &deadline) == 0);
	CHECK_EQ(hrt_timer_start_range_data(hs, 0, 0, &o), 1);
	CHECK(wait_for(&hosted_sleeping, 1, 5 * SEC));
	REQUIRE(pthread_create(&stt, NULL, starter, st) == 0);
	sleep_ns(50 * MS);
	/* three concurrent stops; all return once the hosted sleep ends */
	if (!CHECK(run_with_timeout(stop_all, NULL, 5 * SEC))) {
		snprintf(check_note, sizeof(check_note), "[stop hangs: left behind]");
		return;
	}
	atomic_store(&starter_stop, 1);
	pthread_join(stt, NULL);
	CHECK_EQ(atomic_load(&hosted_slept), 1);
	CHECK(hosted_late >= 0);
	/* the plain sleeper's timer will not fire: it ends on the kernel clock */
	CHECK(wait_for(&sleeper_done, 1, 5 * SEC));
	if (atomic_load(&sleeper_done)) {
		pthread_join(sl, NULL);
		CHECK(sleeper_late >= 0);
	}
	CHECK(hrt_now(HRT_CLOCK_REALTIME) >= deadline);
	CHECK_EQ(hrt_timer_start_range(st, SEC, 0), -ESHUTDOWN);
	CHECK_EQ(atomic_load(&o.core_refs), 0);
	CHECK_EQ(atomic_load(&batch_bad), 0);
	hrt_timer_free(hs);
	hrt_timer_free(st);
}

/* test_core [PREFIX]: only the tests whose name starts with PREFIX. */
int main(int argc, char **argv)
{
	static const struct check_test tests[] = {
		{ "fork_from_hosted_callback (15.1)", test_fork_from_hosted_callback },
		{ "domain_free_races_timer_free (15.3)", test_domain_free_races_timer_free },
		{ "builtin_slack_no_spin (15.5)", test_builtin_slack_no_spin },
		{ "acquire_before_release (15.7)", test_acquire_before_release },
		{ "integer_limits (15.9)", test_integer_limits },
		{ "setup_races_start (15 reasoned)", test_setup_races_start },
		{ "still_due_runs_once_per_run (9.3)", test_still_due_runs_once_per_run },
		{ "real_restart_raw_cancel_returns (9.3)", test_real_restart_raw_cancel_returns },
		{ "block_before_waits (12)", test_block_before_waits },
		{ "nested_advance_cancel_outer (9.4)", test_nested_advance_cancel_outer },
		{ "fork_during_manual_callback (9.6)", test_fork_during_manual_callback },
		{ "stop_expiry_ends_advance (9.9)", test_stop_expiry_ends_advance },
		{ "concurrent_advance_loses_nothing (9.10)", test_concurrent_advance_loses_nothing },
		{ "free_from_own_callback (16.1)", test_free_from_own_callback },
		{ "real_stop: concurrent, sleepers, order (15.2 15.6 15.8 9.2)", test_real_stop },
	};

	parent_pid = getpid();
	if (hrt_set_host(&host) != 0) {
		printf("hrt_set_host failed\n");
		return 1;
	}
	alarm(UNDER_VALGRIND ? 600 : 120);	/* watchdog: a hang fails */
	if (argc > 1) {
		for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
			if (!strncmp(tests[i].name, argv[1], strlen(argv[1])))
				return check_main(&tests[i], 1);
		return 2;
	}
	return check_main(tests, ARRAY_SIZE(tests));
}
