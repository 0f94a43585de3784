/*
 * pyhost.c - the Python host of the core. See pyhost.h.
 *
 * `data` of a Python timer is its callback target (a PyObject, given by the
 * binding as its id()). The core holds one reference to it per activation
 * (acquire/release) and runs due Python timers between batch_enter and
 * batch_exit, which take the GIL once for the whole run; hrt_py_run hands
 * each to the binding's dispatch function.
 *
 * The binding's C calls keep the GIL (see struct hrt_py_call in pyhost.h):
 * the core calls the block hook before it waits, which lets the GIL go for
 * the rest of the call. The core never calls a hook under one of its locks
 * and never waits for the GIL under one, so a thread that holds the GIL
 * while it takes a core lock cannot deadlock with an expiry thread.
 *
 * The last hop of a Python callback is the GIL. A thread that waits for it
 * gets it when the holder reaches an eval-breaker check after a drop
 * request, and the waiter only sets that request after waiting the switch
 * interval (5 ms by default): a busy interpreter would make every Python
 * callback that late. So an expiry thread asks for the GIL early, at the
 * holder's next bytecode boundary, exactly where a switch would happen
 * anyway (no new re-entrancy), and the holder waits for the GIL afterwards
 * like any thread: it yields only until the expiry thread holds the GIL,
 * never until the batch ends. The means differ by CPython version:
 *
 *  - HRT_HANDOVER_PENDING (3.12+): a pending call, `park`, queued for any
 *    thread of the interpreter; the GIL holder runs it at its next check,
 *    and it releases the GIL until an expiry thread has taken it.
 *  - HRT_HANDOVER_INTERVAL (3.10, 3.11): there, pending calls run on the
 *    main thread only, and a call queued from another thread does not raise
 *    the eval breaker. So the switch interval is lowered to 20 us while an
 *    expiry thread waits (its drop request raises the breaker then)
 *    and put back as soon as it holds the GIL. `park` is queued too: the
 *    main thread runs pending calls before it honours a drop request, so a
 *    busy main thread parks, and waits for the GIL again only once the
 *    interval is back (else its own wait could see 20 us and take the GIL
 *    straight back from the batch). A busy worker thread yields through the
 *    drop request alone, without that ordering.
 *
 * Priorities follow the kernel's: a HARD callback is never made to yield
 * to a SOFT one, a SOFT one yields to HARD, any other thread yields to both.
 * The private CPython functions are looked up at run time, so the module
 * stays built for the stable ABI; where one is missing, the expiry thread
 * waits for the GIL like any thread.
 */
#define Py_LIMITED_API 0x030A0000
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>

#include "hrt_builtins.h"
#include "hrtimer.h"
#include "pyhost.h"

/* Public, but outside the limited API: exported by every CPython 3.10+. */
PyAPI_FUNC(int) PyGILState_Check(void);

static atomic_int py_closed;
static PyObject *dispatch_fn; /* the binding's dispatch(target, timer, now) */

__thread struct hrt_py_call *hrt_py_call_top;

/* ------------------------------------------------------------ handover */

enum { PRIO_SOFT = 0, PRIO_HARD = 1, PRIO_OTHER = 2 };

/*
 * The switch interval while an expiry thread waits (INTERVAL). Lower wakes
 * sooner on paper, but a waiter whose timed wait is shorter than a wake-up
 * spins on the GIL's mutex and thrashes with the holder (1 us: stalls of
 * tens of ms on a loaded 2-CPU machine); 5-50 us measured alike at p50
 * (the thread wake-ups cost more than the wait), 20 us had the best tail.
 */
#define HANDOVER_INTERVAL_US 20UL
#define PARK_MAX_NS 1000000L      /* a parked thread re-checks after 1 ms */

typedef int (*pending_fn)(void *);
typedef int (*add_pending_t)(PyInterpreterState *, pending_fn, void *, int);

static int handover;                 /* enum hrt_handover */
static atomic_int handover_on = 1;
static atomic_int ho_stopped;        /* for good: the interpreter is ending */
static add_pending_t add_pending;    /* PENDING */
static PyInterpreterState *main_interp;
static void (*set_interval)(unsigned long);  /* INTERVAL */
static unsigned long (*get_interval)(void);

static pthread_mutex_t ho_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ho_cond;       /* CLOCK_MONOTONIC; a grant happened */
static unsigned ho_waiting[2];       /* expiry threads waiting, per prio */
static unsigned long ho_grants;      /* GIL acquisitions by those */
static unsigned ho_parked;           /* threads waiting in park() */
static unsigned ho_in_park;          /* threads in park() without the GIL */
static atomic_int ho_queued;         /* a park() call is queued */
/* INTERVAL: */
static unsigned iv_lowered;          /* waiters that lowered the interval */
static unsigned long iv_saved;       /* the interval to put back */
static bool iv_hard_batch;           /* the HARD thread holds the GIL */
static struct hrt_py_handover_stats ho_stats;

/* The priority of the calling thread (see the top of the file). */
static int thread_prio(void)
{
	switch (hrt_ctx_thread()) {
	case HRT_CTX_THREAD_HARD_HOSTED:
		return PRIO_HARD;
	case HRT_CTX_THREAD_SOFT:
		return PRIO_SOFT;
	default:
		return PRIO_OTHER;
	}
}

/* Does a thread of priority `me` have to yield now? ho_lock held. */
static bool must_yield(int me)
{
	if (me == PRIO_HARD)
		return false;
	if (me == PRIO_SOFT)
		return ho_waiting[PRIO_HARD] > 0;
	return ho_waiting[PRIO_HARD] + ho_waiting[PRIO_SOFT] > 0;
}

static int park(void *arg);

static void queue_park(void)
{
	if (atomic_exchange(&ho_queued, 1))
		return;
	if (add_pending(main_interp, park, NULL, 0) != 0)
		atomic_store(&ho_queued, 0); /* queue full: wait as usual */
}

/*
 * A pending call, run with the GIL by whichever thread of the interpreter
 * reaches an eval-breaker check first. Releases the GIL until an expiry
 * thread that must go first has taken it (or 1 ms has passed: then the
 * next holder is asked again), then waits for the GIL like any thread.
 */
static int park(void *arg)
{
	int me = thread_prio();
	struct timespec deadline;
	PyThreadState *ts;
	unsigned long grants;
	bool again;

	(void)arg;
	atomic_store(&ho_queued, 0);
	pthread_mutex_lock(&ho_lock);
	if (atomic_load(&ho_stopped) || !must_yield(me)) {
		pthread_mutex_unlock(&ho_lock);
		return 0;
	}
	grants = ho_grants;
	ho_in_park++;
	pthread_mutex_unlock(&ho_lock);

	ts = PyEval_SaveThread();
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += PARK_MAX_NS;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ho_lock);
	ho_parked++;
	ho_stats.yields++;
	while (ho_grants == grants && must_yield(me) && !atomic_load(&ho_stopped))
		if (pthread_cond_timedwait(&ho_cond, &ho_lock, &deadline) == ETIMEDOUT)
			break;
	ho_parked--;
	again = ho_grants == grants && must_yield(me) && !atomic_load(&ho_stopped);
	ho_stats.yield_timeouts += again;
	pthread_mutex_unlock(&ho_lock);
	PyEval_RestoreThread(ts);
	pthread_mutex_lock(&ho_lock);
	if (--ho_in_park == 0 && atomic_load(&ho_stopped))
		pthread_cond_broadcast(&ho_cond); /* hrt_py_stop_handover() waits */
	pthread_mutex_unlock(&ho_lock);
	if (again)
		queue_park();
	return 0;
}

/* INTERVAL: lower the switch interval unless already low. ho_lock held. */
static void iv_lower(void)
{
	unsigned long cur = get_interval();

	if (cur != HANDOVER_INTERVAL_US) {
		iv_saved = cur;
		set_interval(HANDOVER_INTERVAL_US);
	}
}

/*
 * INTERVAL: put the user's switch interval back, unless it was changed
 * meanwhile (sys.setswitchinterval wins). ho_lock held, GIL held.
 */
static void iv_restore(void)
{
	/* (iv_saved is 0 until a first lowering: then the value is the user's) */
	if (iv_saved && get_interval() == HANDOVER_INTERVAL_US)
		set_interval(iv_saved);
}

/* Before an expiry thread of priority `prio` waits for the GIL. */
static bool handover_begin(int prio)
{
	bool lowered = false;

	pthread_mutex_lock(&ho_lock);
	ho_waiting[prio]++;
	ho_stats.requests++;
	if (handover == HRT_HANDOVER_INTERVAL &&
	    !(prio == PRIO_SOFT && iv_hard_batch)) {
		iv_lower();
		iv_lowered++;
		lowered = true;
	}
	pthread_mutex_unlock(&ho_lock);
	queue_park();
	return lowered;
}

/* After it has taken the GIL. */
static void handover_end(int prio, bool lowered)
{
	pthread_mutex_lock(&ho_lock);
	ho_waiting[prio]--;
	ho_grants++;
	if (ho_parked)
		pthread_cond_broadcast(&ho_cond);
	if (handover == HRT_HANDOVER_INTERVAL) {
		if (lowered && --iv_lowered == 0)
			iv_restore();
		if (prio == PRIO_HARD) {
			/* A SOFT waiter must not take the GIL from this batch. */
			iv_hard_batch = true;
			iv_restore();
		}
	}
	pthread_mutex_unlock(&ho_lock);
}

static void handover_batch_done(int prio)
{
	if (handover == HRT_HANDOVER_INTERVAL && prio == PRIO_HARD) {
		pthread_mutex_lock(&ho_lock);
		iv_hard_batch = false;
		pthread_mutex_unlock(&ho_lock);
	}
}

static void handover_fork_prepare(void)
{
	pthread_mutex_lock(&ho_lock);
}

static void handover_fork_parent(void)
{
	pthread_mutex_unlock(&ho_lock);
}

static void init_cond(void)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ho_cond, &attr);
	pthread_condattr_destroy(&attr);
}

/*
 * The child has no expiry threads and no parked threads: nobody waits,
 * nothing stays lowered, and the condition variable forgets the parent's
 * waiters.
 */
static void handover_fork_child(void)
{
	init_cond();
	if (handover == HRT_HANDOVER_INTERVAL && iv_lowered)
		iv_restore();
	ho_waiting[PRIO_SOFT] = ho_waiting[PRIO_HARD] = 0;
	ho_parked = 0;
	ho_in_park = 0;
	iv_lowered = 0;
	iv_hard_batch = false;
	atomic_store(&ho_queued, 0);
	pthread_mutex_unlock(&ho_lock);
}

/* 3.13 without the private entry point: the public one (main thread). */
static int add_pending_main(PyInterpreterState *interp, pending_fn fn,
			    void *arg, int flags)
{
	(void)interp;
	(void)flags;
	return Py_AddPendingCall(fn, arg);
}

static void handover_init(void)
{
	int major = 0, minor = 0;

	init_cond();
	pthread_atfork(handover_fork_prepare, handover_fork_parent,
		       handover_fork_child);

	if (sscanf(Py_GetVersion(), "%d.%d", &major, &minor) != 2 || major != 3)
		return;
	if (minor >= 12) {
		/* (interp, fn, arg, 0): any thread of interp runs it. */
		add_pending = (add_pending_t)dlsym(RTLD_DEFAULT,
						   "_PyEval_AddPendingCall");
		if (!add_pending && minor >= 13)
			add_pending = add_pending_main;
		PyGILState_STATE g = PyGILState_Ensure();

		main_interp = PyInterpreterState_Get();
		PyGILState_Release(g);
		if (add_pending)
			handover = HRT_HANDOVER_PENDING;
	} else {
		*(void **)&set_interval = dlsym(RTLD_DEFAULT,
						"_PyEval_SetSwitchInterval");
		*(void **)&get_interval = dlsym(RTLD_DEFAULT,
						"_PyEval_GetSwitchInterval");
		if (set_interval && get_interval) {
			add_pending = add_pending_main;
			handover = HRT_HANDOVER_INTERVAL;
		}
	}
}

int hrt_py_handover_stats(struct hrt_py_handover_stats *out)
{
	pthread_mutex_lock(&ho_lock);
	*out = ho_stats;
	pthread_mutex_unlock(&ho_lock);
	return 0;
}

int hrt_py_handover(void)
{
	return atomic_load(&handover_on) && !atomic_load(&ho_stopped) ? handover
									: HRT_HANDOVER_NONE;
}

void hrt_py_set_handover(int on)
{
	atomic_store(&handover_on, on != 0);
}

/* ------------------------------------------------------------ host hooks */

static void py_acquire(void *data)
{
	PyGILState_STATE s = PyGILState_Ensure();

	Py_INCREF((PyObject *)data);
	PyGILState_Release(s);
}

static void py_release(void *data)
{
	if (atomic_load(&py_closed))
		return; /* the interpreter is going away: leak, never touch it */
	PyGILState_STATE s = PyGILState_Ensure();

	Py_DECREF((PyObject *)data);
	PyGILState_Release(s);
}

/*
 * The core is about to wait: the binding's call that runs on this thread
 * lets the GIL go until it returns (hrt_py_call_exit takes it back).
 */
static void py_block(void)
{
	struct hrt_py_call *c = hrt_py_call_top;

	if (c && !c->ts && PyGILState_Check())
		c->ts = PyEval_SaveThread();
}

/* Per thread: the open batch, and whether the thread keeps its state. */
static __thread int batch_depth;
static __thread int batch_prio;
static __thread PyGILState_STATE batch_gil;
static __thread bool thread_state_kept;
static __thread bool wake_precise; /* back from a precise sleep */

/*
 * An expiry thread's Python thread gets its OS name (hrt-soft, hrt-hard-py),
 * so threading.current_thread().name and logging's threadName say which
 * timer thread runs a callback (else CPython names it "Dummy-<n>"). GIL held.
 */
static void name_python_thread(void)
{
	char name[17] = "";
	PyObject *threading, *t, *s;

	if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0 || !name[0])
		return;
	threading = PyImport_ImportModule("threading");
	if (!threading) {
		PyErr_Clear();
		return;
	}
	t = PyObject_CallMethod(threading, "current_thread", NULL);
	Py_DECREF(threading);
	if (!t) {
		PyErr_Clear();
		return;
	}
	s = PyUnicode_FromString(name);
	if (!s || PyObject_SetAttrString(t, "name", s) < 0)
		PyErr_Clear();
	Py_XDECREF(s);
	Py_DECREF(t);
}

static void py_batch_enter(void)
{
	bool fresh, lowered = false, ask;

	if (batch_depth++ > 0)
		return;
	batch_prio = thread_prio();
	ask = batch_prio != PRIO_OTHER && hrt_py_handover() != HRT_HANDOVER_NONE;
	fresh = batch_prio != PRIO_OTHER && !thread_state_kept &&
		PyGILState_GetThisThreadState() == NULL;
	if (ask)
		lowered = handover_begin(batch_prio);
	batch_gil = PyGILState_Ensure();
	if (ask)
		handover_end(batch_prio, lowered);
	if (fresh) {
		/*
		 * An expiry thread keeps the thread state made for its first
		 * batch (a second, never released Ensure): each batch then only
		 * takes the GIL, and threading.local and context variables
		 * persist from batch to batch on that thread.
		 */
		(void)PyGILState_Ensure();
		thread_state_kept = true;
		name_python_thread();
	}
}

/*
 * The GIL comes back after a C call of the binding (cffi releases it around
 * every call). Inside a batch of an expiry thread this asks for it as
 * batch_enter does: a callback that calls into the core under load must not
 * wait out a switch interval to continue. After a precise sleep it asks
 * with SOFT priority (a HARD callback never yields to a sleeper).
 */
void hrt_py_restore_thread(PyThreadState *ts)
{
	bool lowered;
	int prio = batch_depth ? batch_prio : PRIO_OTHER;

	if (wake_precise) {
		wake_precise = false;
		if (prio == PRIO_OTHER)
			prio = PRIO_SOFT;
	}
	if (prio == PRIO_OTHER || hrt_py_handover() == HRT_HANDOVER_NONE) {
		PyEval_RestoreThread(ts);
		return;
	}
	lowered = handover_begin(prio);
	PyEval_RestoreThread(ts);
	handover_end(prio, lowered);
}

int64_t hrt_py_sleep_until(int clock, int64_t deadline)
{
	int64_t r;

	py_block();
	r = hrt_sleep_until(clock, deadline);

	wake_precise = true;
	return r;
}

static void py_batch_exit(void)
{
	if (--batch_depth > 0)
		return;
	handover_batch_done(batch_prio);
	PyGILState_Release(batch_gil);
}

/* Runs inside a batch: the GIL is held. */
int hrt_py_run(struct hrt_timer *timer, void *data)
{
	PyObject *now, *r;
	long ret;

	if (atomic_load(&py_closed) || !dispatch_fn)
		return HRT_NORESTART;
	now = PyLong_FromLongLong(hrt_timer_cb_now(timer));
	if (!now) {
		PyErr_WriteUnraisable(dispatch_fn);
		return HRT_NORESTART;
	}
	/* The owner frees the timer before it dies, and waits for a running
	 * callback then: it is alive here. */
	r = PyObject_CallFunctionObjArgs(dispatch_fn, (PyObject *)data,
					 (PyObject *)hrt_timer_owner(timer), now, NULL);
	Py_DECREF(now);
	if (!r) {
		/* (dispatch reports a callback's errors itself: this is its own) */
		PyErr_WriteUnraisable(dispatch_fn);
		return HRT_NORESTART;
	}
	ret = PyLong_AsLong(r);
	Py_DECREF(r);
	if (ret == -1 && PyErr_Occurred())
		PyErr_WriteUnraisable(dispatch_fn);
	return ret == HRT_RESTART ? HRT_RESTART : HRT_NORESTART;
}

/* Called by the binding: the GIL is held (see struct hrt_py_call). */
int hrt_py_set_dispatch(uintptr_t fn)
{
	PyObject *old = dispatch_fn;

	if (!fn)
		return -EINVAL;
	Py_INCREF((PyObject *)fn);
	dispatch_fn = (PyObject *)fn;
	Py_XDECREF(old);
	return 0;
}

int hrt_py_setup(struct hrt_timer *t, struct hrt_domain *d, int clock,
		 int mode, uintptr_t owner)
{
	int rc;

	if (!owner)
		return -EINVAL;
	rc = hrt_timer_setup(t, d, clock, mode, hrt_py_run, NULL, HRT_F_HOSTED);
	if (rc == 0)
		hrt_timer_set_owner(t, (void *)owner);
	return rc;
}

int hrt_py_start(struct hrt_timer *t, int64_t expires, int64_t slack,
		 uintptr_t target)
{
	if (!target)
		return -EINVAL;
	return hrt_timer_start_range_data(t, expires, slack, (void *)target);
}

static const struct hrt_host py_host = {
	py_acquire, py_release, py_batch_enter, py_batch_exit, py_block,
};

int hrt_py_install(void)
{
	handover_init();
	return hrt_set_host(&py_host);
}

/*
 * No park() may be without the GIL once this returns, and none starts
 * again: CPython 3.13's finalization runs the pending calls in a loop that
 * holds the GIL until the thread handling them (a parked one) is done, and
 * that thread needs the GIL back. The GIL is let go first: the parked
 * threads get it back meanwhile.
 */
void hrt_py_stop_handover(void)
{
	py_block();
	atomic_store(&ho_stopped, 1);
	pthread_mutex_lock(&ho_lock);
	pthread_cond_broadcast(&ho_cond);
	while (ho_in_park)
		pthread_cond_wait(&ho_cond, &ho_lock);
	pthread_mutex_unlock(&ho_lock);
}

void hrt_py_close(void)
{
	hrt_py_stop_handover();
	atomic_store(&py_closed, 1);
}
