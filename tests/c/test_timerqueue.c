/*
 * test_timerqueue.c - standalone tests for csrc/timerqueue.c.
 *
 * Build: gcc -std=gnu11 -Wall -Wextra -Werror -g -O1 \
 *        -fsanitize=address,undefined -fno-sanitize-recover=all \
 *        -Icsrc csrc/timerqueue.c tests/c/test_timerqueue.c -o /tmp/tq_test
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "timerqueue.h"

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

/* Stop the test: a broken tree may crash the next operation. */
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

/* ---- tests ---- */

static void test_empty(void)
{
	struct tq_head h;

	tq_init(&h);
	CHECK(tq_getnext(&h) == NULL);
	CHECK(h.count == 0);
	REQUIRE(tq_check(&h) == 0);
}

static void test_add_first(void)
{
	static const int64_t keys[] = { 50, 60, 40, 40, 45, 10, 100, 10, 9 };
	static const bool first[] = { 1, 0, 1, 0, 0, 1, 0, 0, 1 };
	struct item it[ARRAY_SIZE(keys)];
	struct tq_head h;
	size_t i;

	tq_init(&h);
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		tq_node_init(&it[i].node);
		CHECK(!tq_node_queued(&it[i].node));
		it[i].node.expires = keys[i];
		CHECK(tq_add(&h, &it[i].node) == first[i]);
		CHECK(tq_node_queued(&it[i].node));
		REQUIRE(tq_check(&h) == 0);
	}
	CHECK(h.count == ARRAY_SIZE(keys));
}

static void test_getnext_min(void)
{
	struct item it[64];
	struct tq_head h;
	int64_t min = INT64_MAX;
	size_t i;

	tq_init(&h);
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
}

static void test_del_nonempty(void)
{
	struct item it[32];
	struct tq_head h;
	struct tq_node *n;
	size_t i;

	tq_init(&h);
	for (i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)((i * 7) % 32);
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
	}
	/* delete from the middle, then drain from the front */
	CHECK(tq_del(&h, &it[5].node) == true);
	CHECK(!tq_node_queued(&it[5].node));
	CHECK(it[5].node.parent == NULL && it[5].node.left == NULL &&
	      it[5].node.right == NULL);
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
}

static void test_fifo_stability(void)
{
	enum { N = 1000, K = 10 };
	static struct item it[N];
	struct tq_head h;
	struct tq_node *n;
	int64_t last_key = INT64_MIN;
	uint64_t last_seq = 0;
	size_t i, popped = 0;

	tq_init(&h);
	for (i = 0; i < N; i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)(xorshift64() % K);
		it[i].seq = i;
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
	}
	REQUIRE(tq_check(&h) == 0);

	/* in-order walk must match pop order */
	n = tq_getnext(&h);
	for (i = 0; n; i++, n = tq_next(n))
		;
	CHECK(i == N);

	while ((n = tq_getnext(&h)) && popped <= N) {
		struct item *x = to_item(n);

		CHECK(n->expires >= last_key);
		if (popped && n->expires == last_key)
			CHECK(x->seq > last_seq);
		last_key = n->expires;
		last_seq = x->seq;
		tq_del(&h, n);
		popped++;
	}
	CHECK(popped == N);
	REQUIRE(tq_check(&h) == 0);
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

static bool ref_matches_walk(const struct tq_head *h)
{
	struct tq_node *n = tq_getnext(h);
	size_t i;

	for (i = 0; i < ref_n; i++, n = tq_next(n))
		if (n != &ref[i]->node)
			return false;
	return n == NULL;
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
	tq_init(&h);
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
			CHECK(ref_matches_walk(&h));
	}
	CHECK(ref_matches_walk(&h));
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
}

static void test_extremes(void)
{
	struct item it[6];
	struct tq_head h;
	static const int64_t keys[] = { 0, INT64_MAX, INT64_MIN, INT64_MAX,
					INT64_MIN, -1 };
	struct tq_node *n;

	tq_init(&h);
	for (size_t i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = keys[i];
		tq_add(&h, &it[i].node);
		REQUIRE(tq_check(&h) == 0);
	}
	n = tq_getnext(&h);
	CHECK(n == &it[2].node);
	n = tq_next(n);
	CHECK(n == &it[4].node);
	n = tq_next(n);
	CHECK(n == &it[5].node);
	n = tq_next(n);
	CHECK(n == &it[0].node);
	n = tq_next(n);
	CHECK(n == &it[1].node);
	n = tq_next(n);
	CHECK(n == &it[3].node);
	CHECK(tq_next(n) == NULL);

	CHECK(tq_del(&h, &it[2].node) == true);
	CHECK(tq_getnext(&h) == &it[4].node);
	REQUIRE(tq_check(&h) == 0);
}

static void test_check_detects(void)
{
	struct item it[16];
	struct tq_head h;
	size_t i;

	tq_init(&h);
	for (i = 0; i < ARRAY_SIZE(it); i++) {
		tq_node_init(&it[i].node);
		it[i].node.expires = (int64_t)i;
		tq_add(&h, &it[i].node);
	}
	CHECK(tq_check(&h) == 0);

	h.count++;
	CHECK(tq_check(&h) != 0);
	h.count--;

	h.leftmost = &it[1].node;
	CHECK(tq_check(&h) != 0);
	h.leftmost = &it[0].node;

	h.root->color = TQ_RED;
	CHECK(tq_check(&h) != 0);
	h.root->color = TQ_BLACK;

	it[0].node.expires = 100;
	CHECK(tq_check(&h) != 0);
	it[0].node.expires = 0;

	it[3].node.queued = 0;
	CHECK(tq_check(&h) != 0);
	it[3].node.queued = 1;

	CHECK(tq_check(&h) == 0);
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
		{ "check_detects_corruption", test_check_detects },
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
