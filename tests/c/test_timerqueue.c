/*
 * test_timerqueue.c - tests for csrc/timerqueue.c, and for the queue slot
 * that hrt_timer_setup() reserves (its -ENOMEM path).
 *
 * Linked with -Wl,--wrap=realloc,--wrap=free (Makefile:
 * CLINK_test_timerqueue) for the fault injection below.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hrt_internal.h"
#include "timerqueue.h"

/*
 * realloc fault injection (linked with --wrap=realloc,--wrap=free): the
 * next `realloc_fail` calls return NULL; with `realloc_shift` set, every
 * block comes back at the next offset within a 64-byte line (as a moving
 * realloc may place it; sanitizer allocators never do), so the queue has to
 * redo its line alignment. Shifted blocks are known to __wrap_free.
 */
static int realloc_fail;
static bool realloc_shift;
static unsigned shifted;	/* blocks handed out at a new line offset */
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __real_free(void *p);
void __wrap_free(void *p);

static struct shifted_block {
	void *user, *real;
	size_t size;
} blocks[8];

static struct shifted_block *block_of(const void *user)
{
	for (size_t i = 0; user && i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if (blocks[i].user == user)
			return &blocks[i];
	return NULL;
}

void __wrap_free(void *p)
{
	struct shifted_block *b = block_of(p);

	if (b) {
		__real_free(b->real);
		b->user = NULL;
		return;
	}
	__real_free(p);
}

void *__wrap_realloc(void *p, size_t n)
{
	struct shifted_block *old = block_of(p), *b;
	size_t off;
	char *real;

	if (realloc_fail > 0) {
		realloc_fail--;
		return NULL;
	}
	/* a block from before shifting began is not shifted (size unknown) */
	if (!(realloc_shift && (!p || old)) && !old)
		return __real_realloc(p, n);
	for (b = blocks; b < blocks + 8 && b->user; b++)
		;
	if (b == blocks + 8)
		return NULL;
	real = malloc(n + 64);
	if (!real)
		return NULL;
	/* the next 16-byte offset within a line after the old block's */
	off = ((p ? (uintptr_t)p : (uintptr_t)real) + 16 - (uintptr_t)real) % 64;
	if (old) {
		memcpy(real + off, p, old->size < n ? old->size : n);
		__wrap_free(p);
	}
	b->user = real + off;
	b->real = real;
	b->size = n;
	shifted++;
	return b->user;
}

static int failures;	/* failed checks within the current test */

static bool check(bool ok, const char *what, int line)
{
	if (!ok) {
		if (failures < 5)
			printf("  check failed: %s (line %d)\n", what, line);
		if (failures < 1000000)
			failures++;
	}
	return ok;
}

#define CHECK(cond) check((cond), #cond, __LINE__)

/* Stop the test: a broken queue may crash the next operation. */
#define REQUIRE(cond)							\
	do {								\
		if (!CHECK(cond))					\
			return;						\
	} while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct item {
	struct tq_node node;
	uint64_t seq;	/* insertion sequence number */
	size_t id;
};

static struct item *to_item(struct tq_node *n)
{
	return (struct item *)((char *)n - offsetof(struct item, node));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t xorshift64(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return x;
}

/* ---- helpers ---- */

/* An empty queue with n slots reserved. */
static bool q_init(struct tq_head *h, size_t n)
{
	tq_init(h);
	for (size_t i = 0; i < n; i++)
		if (!CHECK(tq_reserve(h) == 0))
			return false;
	return true;
}

/* Pop everything: the order must be by (expires, item seq). */
static size_t drain_in_order(struct tq_head *h)
{
	const struct item *prev = NULL;
	struct tq_node *n;
	size_t popped = 0;

	while ((n = tq_getnext(h))) {
		struct item *x = to_item(n);

		if (prev) {
			CHECK(prev->node.expires <= n->expires);
			if (prev->node.expires == n->expires)
				CHECK(prev->seq < x->seq);
		}
		prev = x;
		tq_del(h, n);
		CHECK(!tq_node_queued(n));
		if (++popped > h->reserved + 1)
			break;
	}
	return popped;
}

/* ---- tests ---- */

static void test_empty(void)
{
	struct tq_head h;
	struct item x;

	tq_init(&h);
	CHECK(tq_getnext(&h) == NULL);
	CHECK(h.count == 0 && h.cap == 0 && h.heap == NULL);
	REQUIRE(tq_check(&h) == 0);
	/* deleting an unqueued node changes nothing */
	tq_node_init(&x.node);
	CHECK(tq_del(&h, &x.node) == false);
	REQUIRE(tq_reserve(&h) == 0);
	CHECK(h.reserved == 1 && h.cap >= 1 && h.heap != NULL);
	REQUIRE(tq_check(&h) == 0);
	tq_unreserve(&h);
	CHECK(h.reserved == 0);
	REQUIRE(tq_check(&h) == 0);
	tq_destroy(&h);
	CHECK(h.heap == NULL && h.cap == 0);
}

static void test_add_first(void)
{
	static const int64_t keys[] = { 50, 60, 40, 40, 45, 10, 100, 10, 9 };
	static const bool first[] = { 1, 0, 1, 0, 0, 1, 0, 0, 1 };
	struct item it[ARRAY_SIZE(keys)];
	struct tq_head h;
	size_t i;

	REQUIRE(q_init(&h, ARRAY_SIZE(keys)));
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		tq_node_init(&it[i].node);
		CHECK(!tq_node_queued(&it[i].node));
		it[i].node.expires = keys[i];
		CHECK(tq_add(&h, &it[i].node) == first[i]);
		CHECK(tq_node_queued(&it[i].node));
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(h.count == ARRAY_SIZE(keys));
	tq_destroy(&h);
}

static void test_getnext_min(void)
{
	struct item it[64];
	struct tq_head h;
	int64_t min = INT64_MAX;
	size_t i;

	REQUIRE(q_init(&h, ARRAY_SIZE(it)));
	for (i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)(xorshift64() % 1000) - 500;
		if (it[i].node.expires < min)
			min = it[i].node.expires;
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
		CHECK(tq_getnext(&h) != NULL);
		CHECK(tq_getnext(&h)->expires == min);
	}
	REQUIRE(tq_check(&h) == 0);
	tq_destroy(&h);
}

static void test_del_nonempty(void)
{
	struct item it[32];
	struct tq_head h;
	struct tq_node *n;
	size_t i;

	REQUIRE(q_init(&h, ARRAY_SIZE(it)));
	for (i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)((i * 7) % 32);
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
	}
	/* delete from the middle, then drain from the front */
	CHECK(tq_del(&h, &it[5].node) == true);
	CHECK(!tq_node_queued(&it[5].node));
	CHECK(it[5].node.slot == 0);
	CHECK(tq_del(&h, &it[5].node) == true);	/* again: a no-op */
	CHECK(h.count == ARRAY_SIZE(it) - 1);
	REQUIRE(tq_check(&h) == 0);
	for (i = 0; i < ARRAY_SIZE(it) - 1; i++) {
		n = tq_getnext(&h);
		REQUIRE(n != NULL);
		CHECK(tq_del(&h, n) == (i < ARRAY_SIZE(it) - 2));
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(tq_getnext(&h) == NULL);
	CHECK(h.count == 0);

	/* single node */
	tq_add(&h, &it[0].node);
	CHECK(tq_del(&h, &it[0].node) == false);
	REQUIRE(tq_check(&h) == 0);
	tq_destroy(&h);
}

/* Equal expiries come out in add order, also after deletes and re-adds. */
static void test_fifo_stability(void)
{
	enum { N = 1000, K = 10 };
	static struct item it[N];
	struct tq_head h;
	uint64_t seq = 0;
	size_t i;

	REQUIRE(q_init(&h, N));
	for (i = 0; i < N; i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)(xorshift64() % K);
		it[i].seq = seq++;
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(drain_in_order(&h) == N);

	/* all equal: delete a random third and add them back (they go last) */
	for (i = 0; i < N; i++) {
		it[i].node.expires = 7;
		it[i].seq = seq++;
		tq_add(&h, &it[i].node);
	}
	for (i = 0; i < N; i++) {
		struct item *x = &it[xorshift64() % N];

		if (!tq_node_queued(&x->node))
			continue;
		tq_del(&h, &x->node);
		REQUIRE(tq_check(&h) == 0);
		x->seq = seq++;
		tq_add(&h, &x->node);
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(drain_in_order(&h) == N);
	REQUIRE(tq_check(&h) == 0);
	tq_destroy(&h);
}

/* Reference model: array kept sorted by (expires, seq). */
enum { POOL = 5000, OPS = 200000 };
static struct item pool[POOL];
static struct item *ref[POOL];
static size_t ref_n;

static bool ref_less(const struct item *a, const struct item *b)
{
	if (a->node.expires != b->node.expires)
		return a->node.expires < b->node.expires;
	return a->seq < b->seq;
}

static void ref_insert(struct item *x)
{
	size_t lo = 0, hi = ref_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ref_less(ref[mid], x))
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&ref[lo + 1], &ref[lo], (ref_n - lo) * sizeof(ref[0]));
	ref[lo] = x;
	ref_n++;
}

static void ref_remove(struct item *x)
{
	size_t i;

	for (i = 0; i < ref_n; i++)
		if (ref[i] == x)
			break;
	if (i == ref_n)
		return;
	memmove(&ref[i], &ref[i + 1], (ref_n - i - 1) * sizeof(ref[0]));
	ref_n--;
}

/*
 * The queue holds exactly the reference's nodes, in its order: the same
 * count, each reference node queued, the same first node, and the queue's
 * own order (tq_before) agreeing with the reference on every neighbour
 * pair — with tq_check's heap order that fixes the order of every pop.
 */
static bool ref_matches(const struct tq_head *h)
{
	if (h->count != ref_n)
		return false;
	if (tq_getnext(h) != (ref_n ? &ref[0]->node : NULL))
		return false;
	for (size_t i = 0; i < ref_n; i++) {
		if (!tq_node_queued(&ref[i]->node))
			return false;
		if (i && !tq_before(&ref[i - 1]->node, &ref[i]->node))
			return false;
	}
	return true;
}

static int64_t random_key(void)
{
	uint64_t r = xorshift64();

	switch (r % 4) {
	case 0:
		return (int64_t)(xorshift64() % 16);	/* many duplicates */
	case 1:
		return (int64_t)(xorshift64() % 100000) - 50000;
	case 2:
		return (int64_t)xorshift64();		/* full range */
	default:
		return (int64_t)(xorshift64() % 1000000);
	}
}

static void test_random(void)
{
	struct tq_head h;
	uint64_t seq = 0;
	size_t op, i;

	rng_state = 0x2545f4914f6cdd1dULL;
	REQUIRE(q_init(&h, POOL));
	ref_n = 0;
	for (i = 0; i < POOL; i++) {
		tq_node_init(&pool[i].node);
		pool[i].id = i;
	}

	for (op = 0; op < OPS; op++) {
		uint64_t r = xorshift64();
		struct item *x;

		if (r % 8 == 0 && ref_n) {
			/* pop the earliest */
			x = ref[0];
			CHECK(tq_getnext(&h) == &x->node);
		} else {
			x = &pool[(r >> 8) % POOL];
		}

		if (tq_node_queued(&x->node)) {
			ref_remove(x);
			CHECK(tq_del(&h, &x->node) == (ref_n != 0));
			CHECK(!tq_node_queued(&x->node));
		} else {
			bool expect_first;

			x->node.expires = random_key();
			x->seq = seq++;
			expect_first = ref_n == 0 ||
				       x->node.expires < ref[0]->node.expires;
			ref_insert(x);
			CHECK(tq_add(&h, &x->node) == expect_first);
		}

		CHECK(h.count == ref_n);
		CHECK(tq_getnext(&h) == (ref_n ? &ref[0]->node : NULL));
		if (op < 20000 || op % 1000 == 0) {
			if (tq_check(&h) != 0)
				printf("  tq_check failed at op %zu\n", op);
			REQUIRE(tq_check(&h) == 0);
		}
		if (op % 10000 == 0)
			CHECK(ref_matches(&h));
	}
	CHECK(ref_matches(&h));
	REQUIRE(tq_check(&h) == 0);

	/* drain */
	while (ref_n) {
		struct item *x = ref[0];

		REQUIRE(tq_getnext(&h) == &x->node);
		ref_remove(x);
		CHECK(tq_del(&h, &x->node) == (ref_n != 0));
	}
	CHECK(tq_getnext(&h) == NULL);
	REQUIRE(tq_check(&h) == 0);
	tq_destroy(&h);
}

static void test_extremes(void)
{
	struct item it[6];
	struct tq_head h;
	static const int64_t keys[] = { 0, INT64_MAX, INT64_MIN, INT64_MAX,
					INT64_MIN, -1 };
	static const size_t order[] = { 2, 4, 5, 0, 1, 3 };

	REQUIRE(q_init(&h, ARRAY_SIZE(it)));
	for (size_t i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = keys[i];
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		REQUIRE(tq_getnext(&h) == &it[order[i]].node);
		tq_del(&h, &it[order[i]].node);
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(tq_getnext(&h) == NULL);
	tq_destroy(&h);
}

/* Sibling groups start on a cache line (a performance property). */
static bool groups_aligned(const struct tq_head *h)
{
	return h->heap && (uintptr_t)&h->heap[1] % 64 == 0;
}

/*
 * The array grows as slots are reserved and shrinks as they are given
 * back, keeping every queued node in place (also when the array moves).
 */
static void test_growth_shrink(void)
{
	enum { N = 20000 };
	static struct item it[N];
	struct tq_head h;
	uint64_t seq = 0;
	size_t i, cap_max;

	tq_init(&h);
	realloc_shift = true;
	/* grow with nodes queued: reserve one, add one */
	for (i = 0; i < N; i++) {
		REQUIRE(tq_reserve(&h) == 0);
		CHECK(h.reserved == i + 1 && h.cap >= h.reserved);
		CHECK(groups_aligned(&h));
		tq_node_init(&it[i].node);
		it[i].node.expires = random_key();
		it[i].seq = seq++;
		tq_add(&h, &it[i].node);
		if (i % 997 == 0)
			REQUIRE(tq_check(&h) == 0);
	}
	REQUIRE(tq_check(&h) == 0);
	cap_max = h.cap;
	CHECK(cap_max < 2 * N + 16);
	/* delete three quarters at random positions, give their slots back */
	for (i = 0; i < N; i++) {
		if (i % 4 == 0)
			continue;
		CHECK(tq_del(&h, &it[i].node));
		tq_unreserve(&h);
		CHECK(h.count <= h.reserved && h.reserved <= h.cap);
		if (i % 997 == 0)
			REQUIRE(tq_check(&h) == 0);
	}
	REQUIRE(tq_check(&h) == 0);
	CHECK(h.reserved == N / 4);
	CHECK(h.cap < cap_max && h.cap <= 4 * h.reserved);
	CHECK(groups_aligned(&h));
	CHECK(drain_in_order(&h) == N / 4);
	for (i = 0; i < N / 4; i++)
		tq_unreserve(&h);
	CHECK(h.reserved == 0);
	CHECK(h.cap <= 32);
	REQUIRE(tq_check(&h) == 0);
	CHECK(shifted >= 10);	/* the test did move the array */
	realloc_shift = false;
	tq_destroy(&h);
}

/* -ENOMEM from tq_reserve changes nothing; a failed shrink keeps working. */
static void test_reserve_enomem(void)
{
	struct item it[16];
	struct tq_head h, before;
	size_t i;

	tq_init(&h);
	realloc_fail = 1;
	CHECK(tq_reserve(&h) == -ENOMEM);
	CHECK(h.reserved == 0 && h.cap == 0 && h.heap == NULL);
	REQUIRE(q_init(&h, ARRAY_SIZE(it)));	/* exactly the first capacity */
	for (i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)(ARRAY_SIZE(it) - i);
		it[i].seq = i;
		tq_add(&h, &it[i].node);
	}
	REQUIRE(h.reserved == h.cap);		/* the next reserve must grow */
	before = h;
	realloc_fail = 1;
	CHECK(tq_reserve(&h) == -ENOMEM);
	CHECK(memcmp(&before, &h, sizeof(h)) == 0);
	REQUIRE(tq_check(&h) == 0);
	REQUIRE(tq_reserve(&h) == 0);
	CHECK(h.cap > before.cap);
	REQUIRE(tq_check(&h) == 0);
	/* shrinking can fail: the slots are given back all the same */
	realloc_fail = 1000;
	for (i = h.reserved; i > ARRAY_SIZE(it); i--)
		tq_unreserve(&h);
	realloc_fail = 0;
	CHECK(h.reserved == ARRAY_SIZE(it));
	REQUIRE(tq_check(&h) == 0);
	CHECK(drain_in_order(&h) == ARRAY_SIZE(it));
	tq_destroy(&h);
}

struct skip_set {
	const bool *skipped;	/* by item id */
	unsigned calls;
};

static bool skip_item(const struct tq_node *n, const void *arg)
{
	struct skip_set *s = (struct skip_set *)arg;

	s->calls++;
	return s->skipped[to_item((struct tq_node *)n)->id];
}

/* tq_first_unskipped finds the first node of the order that is not skipped. */
static void test_first_unskipped(void)
{
	enum { N = 2000 };
	static struct item it[N];
	static bool skipped[N];
	struct skip_set s = { skipped, 0 };
	struct tq_head h;
	uint64_t seq = 0;

	rng_state = 0x5851f42d4c957f2dULL;
	REQUIRE(q_init(&h, N));
	ref_n = 0;
	CHECK(tq_first_unskipped(&h, skip_item, &s) == NULL);
	for (size_t i = 0; i < N; i++) {
		tq_node_init(&it[i].node);
		it[i].id = i;
		it[i].node.expires = (int64_t)(xorshift64() % 500);	/* ties */
		it[i].seq = seq++;
		tq_add(&h, &it[i].node);
		ref_insert(&it[i]);
	}
	for (int round = 0; round < 200; round++) {
		struct tq_node *want = NULL;
		unsigned density = (unsigned)(round % 10);	/* tenths skipped */
		size_t prefix = round % 3 == 0 ? (size_t)(xorshift64() % 50) : 0;

		for (size_t i = 0; i < N; i++)
			skipped[i] = xorshift64() % 10 < density;
		/* a skipped prefix of the order, as an expiry run leaves one */
		for (size_t k = 0; k < prefix; k++)
			skipped[ref[k]->id] = true;
		if (round == 199)
			for (size_t i = 0; i < N; i++)
				skipped[i] = true;
		for (size_t k = 0; k < ref_n && !want; k++)
			if (!skipped[ref[k]->id])
				want = &ref[k]->node;
		s.calls = 0;
		CHECK(tq_first_unskipped(&h, skip_item, &s) == want);
		/* nothing skipped at the front: a look at the run's first and
		 * the heap's top at most */
		if (want == tq_getnext(&h))
			CHECK(s.calls <= 2);
	}
	while (ref_n)
		ref_remove(ref[0]);
	CHECK(drain_in_order(&h) == N);
	tq_destroy(&h);
}

/* The search walks a skipped prefix of the run, on either side of the heap's top. */
static void test_first_unskipped_run(void)
{
	/* run: 10 20 30 40 (added in order), heap: 25 5 (each before 40) */
	static const int64_t keys[] = { 10, 20, 30, 40, 25, 5 };
	struct item it[ARRAY_SIZE(keys)];
	bool skipped[ARRAY_SIZE(keys)] = { false };
	struct skip_set s = { skipped, 0 };
	struct tq_head h;

	REQUIRE(q_init(&h, ARRAY_SIZE(keys)));
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		tq_node_init(&it[i].node);
		it[i].id = i;
		it[i].node.expires = keys[i];
		tq_add(&h, &it[i].node);
	}
	REQUIRE(tq_check(&h) == 0);
	REQUIRE(h.hcount == 2 && h.run_first == &it[0].node);
	/* heap top (5) skipped, run's 10 and 20 skipped: 25 (heap) */
	skipped[5] = skipped[0] = skipped[1] = true;
	CHECK(tq_first_unskipped(&h, skip_item, &s) == &it[4].node);
	/* ... and 25 too: 30 (run) */
	skipped[4] = true;
	CHECK(tq_first_unskipped(&h, skip_item, &s) == &it[2].node);
	/* heap top not skipped, but run nodes before it: 10 skipped, 20 not */
	memset(skipped, 0, sizeof(skipped));
	it[5].node.expires = 5;
	tq_del(&h, &it[5].node);
	it[5].node.expires = 22;	/* heap top 22 */
	tq_add(&h, &it[5].node);
	REQUIRE(tq_check(&h) == 0 && h.heap[0].node == &it[5].node);
	skipped[0] = true;
	CHECK(tq_first_unskipped(&h, skip_item, &s) == &it[1].node);
	/* every run node before the top skipped: the top */
	skipped[1] = true;
	CHECK(tq_first_unskipped(&h, skip_item, &s) == &it[5].node);
	tq_destroy(&h);
}

static void test_check_detects(void)
{
	struct item it[16];
	struct tq_head h;
	struct tq_entry e;
	struct tq_node *n;
	uint64_t seq;
	size_t i;

	/* 16 first (the run), then 15..0 (each before the run's last: heap),
	 * then 20, 21 appended to the run */
	REQUIRE(q_init(&h, ARRAY_SIZE(it)));
	for (i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = i < 14 ? (int64_t)(16 - i) : (int64_t)(6 + i);
		tq_add(&h, &it[i].node);
	}
	REQUIRE(tq_check(&h) == 0);
	REQUIRE(h.hcount == 13 && h.run_first == &it[0].node &&
		h.run_last == &it[15].node);

	h.reserved--;			/* more nodes than slots */
	CHECK(tq_check(&h) != 0);
	h.reserved++;

	n = h.heap[3].node;
	n->expires += 100;		/* key changed while queued */
	CHECK(tq_check(&h) != 0);
	n->expires -= 100;

	n->slot = 0;			/* position lost */
	CHECK(tq_check(&h) != 0);
	n->slot = 5;			/* wrong position */
	CHECK(tq_check(&h) != 0);
	n->slot = 4;

	/* parent after child, positions kept consistent */
	e = h.heap[0];
	h.heap[0] = h.heap[1];
	h.heap[1] = e;
	h.heap[0].node->slot = 1;
	h.heap[1].node->slot = 2;
	CHECK(tq_check(&h) != 0);
	e = h.heap[0];
	h.heap[0] = h.heap[1];
	h.heap[1] = e;
	h.heap[0].node->slot = 1;
	h.heap[1].node->slot = 2;
	CHECK(tq_check(&h) == 0);

	seq = n->seq;
	n->seq = h.seq;			/* a sequence number not handed out */
	CHECK(tq_check(&h) != 0);
	n->seq = seq;

	/* the run: out of order, a broken back link, a heap mark, the count */
	it[14].node.expires = 30;
	CHECK(tq_check(&h) != 0);
	it[14].node.expires = 20;
	it[15].node.prev = &it[0].node;
	CHECK(tq_check(&h) != 0);
	it[15].node.prev = &it[14].node;
	it[14].node.slot = 3;
	CHECK(tq_check(&h) != 0);
	it[14].node.slot = TQ_SLOT_RUN;
	h.hcount--;
	CHECK(tq_check(&h) != 0);
	h.hcount++;

	CHECK(tq_check(&h) == 0);
	tq_destroy(&h);
}

/*
 * The run takes what goes after its last node (later expiries, and equal
 * ones: they come later in add order) and the heap the rest; the queue's
 * order across both is by (expires, add order).
 */
static void test_run_and_heap(void)
{
	enum { N = 64 };
	static struct item it[N];
	struct tq_head h;
	uint64_t seq = 0;
	size_t i;

	REQUIRE(q_init(&h, N));
	/* timeouts: later and later, and some equal: all in the run */
	for (i = 0; i < 32; i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)(i / 2) * 10;
		it[i].seq = seq++;
		CHECK(tq_add(&h, &it[i].node) == (i == 0));
		CHECK(it[i].node.slot == TQ_SLOT_RUN);
	}
	CHECK(h.hcount == 0);
	REQUIRE(tq_check(&h) == 0);
	/* deleting from the run's middle, its first and its last */
	tq_del(&h, &it[9].node);
	tq_del(&h, &it[0].node);
	tq_del(&h, &it[31].node);
	CHECK(h.run_first == &it[1].node && h.run_last == &it[30].node);
	REQUIRE(tq_check(&h) == 0);
	/* before the run's last: the heap, including ties with run nodes */
	for (i = 32; i < N; i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)(xorshift64() % 16) * 10;
		it[i].seq = seq++;
		tq_add(&h, &it[i].node);
		CHECK(it[i].node.slot != TQ_SLOT_RUN || it[i].node.expires >= 150);
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(h.hcount > 0);
	/* re-add the deleted ones: they go after every node of equal expiry */
	it[9].seq = seq++;
	tq_add(&h, &it[9].node);
	it[0].seq = seq++;
	CHECK(tq_add(&h, &it[0].node) == false);	/* equal to the first */
	REQUIRE(tq_check(&h) == 0);
	CHECK(drain_in_order(&h) == N - 1);
	/* empty: the next add starts a new run, whatever its expiry */
	it[31].node.expires = -5;
	CHECK(tq_add(&h, &it[31].node) == true);
	CHECK(it[31].node.slot == TQ_SLOT_RUN && h.run_first == &it[31].node);
	tq_del(&h, &it[31].node);
	REQUIRE(tq_check(&h) == 0);
	tq_destroy(&h);
}

/* ---- the slot hrt_timer_setup() reserves ---- */

static size_t reserved_on(struct hrt_domain *d, int ctx, int clock_index)
{
	return d->ctx[ctx].clock_base[clock_index].queue.reserved;
}

static int free_self(struct hrt_timer *t, void *data)
{
	(void)data;
	hrt_timer_free(t);
	return HRT_NORESTART;
}

static int noop(struct hrt_timer *t, void *data)
{
	(void)t;
	(void)data;
	return HRT_NORESTART;
}

/*
 * Setup takes the slot (-ENOMEM: the timer is not set up, or stays where it
 * was), re-setup moves it, -EBUSY gives the new one back, free (also from
 * the timer's own callback) gives it back.
 */
static void test_setup_reserves(void)
{
	struct hrt_domain *d;
	struct hrt_timer *t = hrt_timer_alloc(), *u = hrt_timer_alloc();
	const int hard = HRT_CTX_HARD, mono = 0, boot = 2;

	REQUIRE(t && u);
	REQUIRE(hrt_domain_new_manual(&d, 1000) == 0);

	realloc_fail = 1;	/* the first slot of a base allocates */
	CHECK(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS | HRT_MODE_HARD,
			      noop, NULL, 0) == -ENOMEM);
	CHECK(reserved_on(d, hard, mono) == 0);
	CHECK(hrt_timer_start_range(t, 2000, 0) == -EINVAL);	/* not set up */
	REQUIRE(hrt_timer_setup(t, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS | HRT_MODE_HARD,
				noop, NULL, 0) == 0);
	CHECK(reserved_on(d, hard, mono) == 1);

	/* re-setup onto BOOTTIME fails for memory: still on MONOTONIC */
	realloc_fail = 1;
	CHECK(hrt_timer_setup(t, d, HRT_CLOCK_BOOTTIME, HRT_MODE_ABS | HRT_MODE_HARD,
			      noop, NULL, 0) == -ENOMEM);
	CHECK(hrt_timer_clock(t) == HRT_CLOCK_MONOTONIC);
	CHECK(reserved_on(d, hard, mono) == 1 && reserved_on(d, hard, boot) == 0);
	CHECK(hrt_timer_start_range(t, 2000, 0) == 1);

	/* active: -EBUSY, the new base's slot is given back */
	CHECK(hrt_timer_setup(t, d, HRT_CLOCK_BOOTTIME, HRT_MODE_ABS | HRT_MODE_HARD,
			      noop, NULL, 0) == -EBUSY);
	CHECK(reserved_on(d, hard, mono) == 1 && reserved_on(d, hard, boot) == 0);
	CHECK(hrt_timer_cancel(t) == 1);

	/* inactive: the slot moves */
	REQUIRE(hrt_timer_setup(t, d, HRT_CLOCK_BOOTTIME, HRT_MODE_ABS | HRT_MODE_HARD,
				noop, NULL, 0) == 0);
	CHECK(reserved_on(d, hard, mono) == 0 && reserved_on(d, hard, boot) == 1);

	/* freed from its own callback: given back when the callback returns */
	REQUIRE(hrt_timer_setup(u, d, HRT_CLOCK_MONOTONIC, HRT_MODE_ABS | HRT_MODE_HARD,
				free_self, NULL, 0) == 0);
	CHECK(reserved_on(d, hard, mono) == 1);
	CHECK(hrt_timer_start_range(u, 1500, 0) == 1);
	CHECK(hrt_domain_advance(d, 1000) == 1);
	CHECK(reserved_on(d, hard, mono) == 0);

	hrt_timer_free(t);
	CHECK(reserved_on(d, hard, boot) == 0);
	CHECK(hrt_domain_free(d) == 0);
}

struct test {
	const char *name;
	void (*fn)(void);
};

int main(void)
{
	static const struct test tests[] = {
		{ "empty", test_empty },
		{ "add_returns_first", test_add_first },
		{ "getnext_is_min", test_getnext_min },
		{ "del_returns_nonempty", test_del_nonempty },
		{ "fifo_stability", test_fifo_stability },
		{ "random_vs_reference", test_random },
		{ "extremes", test_extremes },
		{ "growth_shrink", test_growth_shrink },
		{ "reserve_enomem", test_reserve_enomem },
		{ "first_unskipped", test_first_unskipped },
		{ "run_and_heap", test_run_and_heap },
		{ "first_unskipped_run", test_first_unskipped_run },
		{ "check_detects_corruption", test_check_detects },
		{ "setup_reserves", test_setup_reserves },
	};
	int passed = 0, failed = 0;
	size_t i;

	/* keep output if a sanitizer kills us mid-run */
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		failures = 0;
		tests[i].fn();
		if (failures) {
			printf("FAIL %s (%d checks failed)\n", tests[i].name,
			       failures);
			failed++;
		} else {
			printf("ok   %s\n", tests[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
