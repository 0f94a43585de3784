/*
 * pyhost.h - the Python host of the core (pyhost.c): the hooks that keep a
 * Python timer's target alive while it is active, run due Python timers in
 * batches under the GIL, and have a busy interpreter hand the GIL over to
 * an expiry thread at its next bytecode boundary.
 *
 * Built only into the Python extension (build_ffi.py); the declarations
 * between the markers are its cffi cdef.
 */
#ifndef HRT_PYHOST_H
#define HRT_PYHOST_H

#include "hrtimer.h"

/* cffi:begin */
/*
 * The callback every Python timer is set up with (RawTimerCallback::run):
 * calls the binding's dispatch function with the timer's target, its owner
 * and the expiry run's now; returns what it returns (enum hrt_restart).
 */
int hrt_py_run(struct hrt_timer *timer, void *data);

/*
 * Set up `t` as a Python timer (hrt_timer_setup with hrt_py_run, hosted):
 * `owner` is the address (id()) of the Python object that owns `t` and
 * frees it before it dies; it is handed to the dispatch function as the
 * timer that fired. 0 or -errno as hrt_timer_setup.
 */
int hrt_py_setup(struct hrt_timer *t, struct hrt_domain *d, int clock,
		 int mode, uintptr_t owner);

/*
 * Install the binding's dispatch function, dispatch(target, timer, now) ->
 * 0 or 1, given as the address of the object (its id()); the host keeps a
 * reference. Call it before any Python timer fires. 0, or -EINVAL for a
 * null address.
 */
int hrt_py_set_dispatch(uintptr_t fn);

/*
 * hrt_timer_start_range_data for a Python timer: `target` is the address
 * (id()) of the callback target, a live object; the core holds a reference
 * to it while this start keeps the timer active.
 */
int hrt_py_start(struct hrt_timer *t, int64_t expires, int64_t slack,
		 uintptr_t target);

/* Install the host hooks (once). 0 or -errno. */
int hrt_py_install(void);

/*
 * The interpreter is ending (the main thread has finished): no GIL handover
 * from now on, and none in progress when this returns. It lets the GIL go
 * while it waits.
 */
void hrt_py_stop_handover(void);

/* Interpreter exit: stop the handover, never touch Python objects again. */
void hrt_py_close(void);

/*
 * How an expiry thread gets the GIL from a busy interpreter:
 * HRT_HANDOVER_NONE (waits for the switch interval like any thread),
 * HRT_HANDOVER_INTERVAL (CPython 3.10, 3.11: the switch interval is
 * lowered while it waits), HRT_HANDOVER_PENDING (3.12+: a pending call
 * makes the thread running bytecode yield the GIL).
 */
enum hrt_handover {
	HRT_HANDOVER_NONE = 0,
	HRT_HANDOVER_INTERVAL = 1,
	HRT_HANDOVER_PENDING = 2
};
int hrt_py_handover(void);

/*
 * hrt_sleep_until for Python: the GIL comes back through the handover, so a
 * precise sleep stays precise while another thread runs bytecode.
 */
int64_t hrt_py_sleep_until(int clock, int64_t deadline);

/* What the handover did since the start. */
struct hrt_py_handover_stats {
	uint64_t requests;       /* an expiry thread asked for the GIL early */
	uint64_t yields;         /* a thread running bytecode let it go */
	uint64_t yield_timeouts; /* ... and waited 1 ms in vain (asked again) */
};
int hrt_py_handover_stats(struct hrt_py_handover_stats *out);

/* Switch the handover off (0) or back on (1), for measurements. */
void hrt_py_set_handover(int on);
/* cffi:end */

#ifdef Py_PYTHON_H
/*
 * PyEval_RestoreThread for the binding's C calls (see build_ffi.py): inside
 * a batch on an expiry thread it asks for the GIL early.
 */
void hrt_py_restore_thread(PyThreadState *ts);

/*
 * One C call of the binding. The GIL stays held through it unless the core
 * is about to wait (the host's block hook): then the call lets the GIL go
 * and takes it back when it returns. Most calls (start, cancel of a timer
 * not running, introspection, forward) never wait, and cost no GIL round
 * trip and no thread switch. Frames nest (a callback run inside a call).
 */
struct hrt_py_call {
	struct hrt_py_call *prev;
	PyThreadState *ts; /* the GIL was let go; NULL: still held */
};

extern __thread struct hrt_py_call *hrt_py_call_top;

static inline void hrt_py_call_enter(struct hrt_py_call *c)
{
	c->prev = hrt_py_call_top;
	c->ts = NULL;
	hrt_py_call_top = c;
}

static inline void hrt_py_call_exit(struct hrt_py_call *c)
{
	hrt_py_call_top = c->prev;
	if (c->ts)
		hrt_py_restore_thread(c->ts);
}
#endif

#endif /* HRT_PYHOST_H */
