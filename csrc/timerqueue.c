/*
 * timerqueue.c - the run (a list appended in order) and a 4-ary min-heap of
 * timer nodes with positions in the nodes.
 *
 * Layout: children of position i are 4i+1 .. 4i+4, its parent (i-1)/4.
 * Entries are 16 bytes and the array is placed so that every group of four
 * siblings fills one 64-byte cache line: a level of a sift-down reads one
 * line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "timerqueue.h"

#define D 4
#define LINE 64
#define MIN_CAP 16

/* Entries to skip at the start of `mem` so heap + 1 is line-aligned. */
static size_t pad_of(const void *mem)
{
	uintptr_t a = (uintptr_t)mem;

	return ((LINE - sizeof(struct tq_entry) - a % LINE) % LINE) /
	       sizeof(struct tq_entry);
}

void tq_init(struct tq_head *head)
{
	memset(head, 0, sizeof(*head));
}

void tq_destroy(struct tq_head *head)
{
	free(head->mem);
	tq_init(head);
}

void tq_node_init(struct tq_node *node)
{
	node->slot = 0;
	node->seq = 0;
	node->prev = node->next = NULL;
}

/* Move the array to `cap` slots (>= count). 0 or -ENOMEM (unchanged). */
static int resize(struct tq_head *head, size_t cap)
{
	size_t old_pad = head->mem ? (size_t)(head->heap - (struct tq_entry *)head->mem) : 0;
	size_t pad;
	struct tq_entry *base;
	void *mem;

	/* extra room for the pad that puts sibling groups on lines (pad_of) */
	if (cap > SIZE_MAX / sizeof(struct tq_entry) - LINE / sizeof(struct tq_entry))
		return -ENOMEM;
	mem = realloc(head->mem, (cap + LINE / sizeof(struct tq_entry)) *
				 sizeof(struct tq_entry));
	if (!mem)
		return -ENOMEM;
	base = mem;
	pad = pad_of(mem);
	if (pad != old_pad)
		memmove(base + pad, base + old_pad, head->hcount * sizeof(*base));
	head->mem = mem;
	head->heap = base + pad;
	head->cap = cap;
	return 0;
}

int tq_reserve(struct tq_head *head)
{
	if (head->reserved == head->cap) {
		size_t cap = head->cap ? head->cap * 2 : MIN_CAP;

		if (head->reserved >= TQ_MAX_NODES)
			return -ENOMEM;
		if (cap > TQ_MAX_NODES)
			cap = TQ_MAX_NODES;
		if (resize(head, cap))
			return -ENOMEM;
	}
	head->reserved++;
	return 0;
}

void tq_unreserve(struct tq_head *head)
{
	if (head->reserved)
		head->reserved--;
	/* shrink by half once three quarters are unused (a failure keeps it) */
	if (head->cap > MIN_CAP && head->reserved <= head->cap / 4)
		resize(head, head->cap / 2);
}

static inline bool entry_before(const struct tq_entry *a,
				const struct tq_entry *b)
{
	return a->expires < b->expires ||
	       (a->expires == b->expires && a->node->seq < b->node->seq);
}

static inline void place(struct tq_entry *heap, size_t i, struct tq_entry e)
{
	heap[i] = e;
	e.node->slot = (uint32_t)(i + 1);
}

static void sift_up(struct tq_entry *heap, size_t i, struct tq_entry e)
{
	while (i) {
		size_t p = (i - 1) / D;

		if (!entry_before(&e, &heap[p]))
			break;
		place(heap, i, heap[p]);
		i = p;
	}
	place(heap, i, e);
}

/*
 * Position of the earliest of the D children of a full group starting at c:
 * the expiries decide without a branch; only a tie on the smallest expiry
 * (rare) compares sequence numbers.
 */
static inline size_t min_child4(const struct tq_entry *heap, size_t c)
{
	int64_t e0 = heap[c].expires, e1 = heap[c + 1].expires;
	int64_t e2 = heap[c + 2].expires, e3 = heap[c + 3].expires;
	size_t b01 = e1 < e0 ? c + 1 : c, b23 = e3 < e2 ? c + 3 : c + 2;
	int64_t m01 = e1 < e0 ? e1 : e0, m23 = e3 < e2 ? e3 : e2;
	size_t best = m23 < m01 ? b23 : b01;
	int64_t m = m23 < m01 ? m23 : m01;

	if (__builtin_expect((e0 == m) + (e1 == m) + (e2 == m) + (e3 == m) > 1, 0)) {
		best = c;
		for (size_t k = c + 1; k < c + D; k++)
			if (entry_before(&heap[k], &heap[best]))
				best = k;
	}
	return best;
}

/*
 * Fill the hole at position i (nothing above it comes after e) with e:
 * the hole moves down to a leaf along the earliest children, then e
 * rises from there (it rarely rises far: e is the heap's last entry).
 */
static void sift_down(struct tq_entry *heap, size_t n, size_t i,
		      struct tq_entry e)
{
	size_t c;

	while ((c = D * i + 1) + D <= n) {
		size_t best;

		/* the next level reads one of the children's groups: fetch all
		 * four while this level is compared (one line each) */
		if (D * c + 1 < n)
			for (size_t k = 0; k < D; k++)
				__builtin_prefetch(&heap[D * (c + k) + 1]);
		best = min_child4(heap, c);

		place(heap, i, heap[best]);
		i = best;
	}
	if (c < n) {	/* a last, partial group */
		size_t best = c;

		for (size_t k = c + 1; k < n; k++)
			if (entry_before(&heap[k], &heap[best]))
				best = k;
		place(heap, i, heap[best]);
		i = best;
	}
	sift_up(heap, i, e);
}

bool tq_add(struct tq_head *head, struct tq_node *node)
{
	struct tq_node *first = tq_getnext(head), *last = head->run_last;
	struct tq_entry *heap = head->heap;
	struct tq_entry e = { node->expires, node };
	size_t i;

	/* the newest sequence number loses every tie: compare expiries only */
	node->seq = head->seq++;
	head->count++;
	if (!last || node->expires >= last->expires) {
		node->prev = last;
		node->next = NULL;
		if (last)
			last->next = node;
		else
			head->run_first = node;
		head->run_last = node;
		node->slot = TQ_SLOT_RUN;
		return !first || node->expires < first->expires;
	}
	i = head->hcount++;
	while (i) {
		size_t p = (i - 1) / D;

		if (e.expires >= heap[p].expires)
			break;
		place(heap, i, heap[p]);
		i = p;
	}
	place(heap, i, e);
	return !first || node->expires < first->expires;
}

bool tq_del(struct tq_head *head, struct tq_node *node)
{
	struct tq_entry *heap = head->heap;
	struct tq_entry last;
	size_t i;

	if (!node->slot)
		return head->count != 0;
	head->count--;
	if (node->slot == TQ_SLOT_RUN) {
		if (node->prev)
			node->prev->next = node->next;
		else
			head->run_first = node->next;
		if (node->next)
			node->next->prev = node->prev;
		else
			head->run_last = node->prev;
		node->prev = node->next = NULL;
		node->slot = 0;
		return head->count != 0;
	}
	i = node->slot - 1;
	node->slot = 0;
	last = heap[--head->hcount];
	if (i < head->hcount) {
		if (i && entry_before(&last, &heap[(i - 1) / D]))
			sift_up(heap, i, last);
		else
			sift_down(heap, head->hcount, i, last);
	}
	return head->count != 0;
}

size_t tq_collect(const struct tq_head *head, struct tq_node **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < head->hcount; i++, n++)
		if (n < max)
			out[n] = head->heap[i].node;
	for (struct tq_node *r = head->run_first; r && n <= head->count; r = r->next, n++)
		if (n < max)
			out[n] = r;
	return n;
}

struct search {
	const struct tq_entry *heap;
	size_t n;
	bool (*skip)(const struct tq_node *, const void *);
	const void *arg;
	struct tq_entry best;	/* best.node == NULL: none yet */
};

/*
 * Visit the children of skipped position i: a child not before the best
 * found so far is no candidate, nor is anything below it; a skipped child
 * is searched in turn; any other is the new best. Depth <= heap height.
 */
static void search_below(struct search *s, size_t i)
{
	size_t c = D * i + 1, end = c + D < s->n ? c + D : s->n;

	for (; c < end; c++) {
		const struct tq_entry *e = &s->heap[c];

		if (s->best.node && !entry_before(e, &s->best))
			continue;
		if (s->skip(e->node, s->arg))
			search_below(s, c);
		else
			s->best = *e;
	}
}

struct tq_node *tq_first_unskipped(const struct tq_head *head,
				   bool (*skip)(const struct tq_node *, const void *),
				   const void *arg)
{
	struct search s = { head->heap, head->hcount, skip, arg, { 0, NULL } };
	const struct tq_entry *top = head->hcount ? &head->heap[0] : NULL;
	struct tq_node *r = head->run_first;

	if (top && !skip(top->node, arg)) {
		/* the run's nodes before the heap's top, in order */
		for (; r && tq_before(r, top->node); r = r->next)
			if (!skip(r, arg))
				return r;
		return top->node;
	}
	/* the run's first node not skipped, then anything of the heap before
	 * it (all of the heap comes after its top) */
	while (r && skip(r, arg))
		r = r->next;
	if (r)
		s.best = (struct tq_entry){ r->expires, r };
	if (top && (!r || entry_before(top, &s.best)))
		search_below(&s, 0);
	return s.best.node;
}

int tq_check(const struct tq_head *head)
{
	const struct tq_node *prev = NULL;
	size_t run = 0;

	if (head->count > head->reserved || head->reserved > head->cap ||
	    head->cap > TQ_MAX_NODES || (head->cap && !head->heap) ||
	    head->hcount > head->count)
		return -EINVAL;
	for (const struct tq_node *r = head->run_first; r; prev = r, r = r->next) {
		if (++run > head->count - head->hcount || r->slot != TQ_SLOT_RUN ||
		    r->prev != prev || r->seq >= head->seq ||
		    (prev && !tq_before(prev, r)))
			return -EINVAL;
	}
	if (prev != head->run_last || run != head->count - head->hcount)
		return -EINVAL;
	for (size_t i = 0; i < head->hcount; i++) {
		const struct tq_entry *e = &head->heap[i];

		if (!e->node || e->node->slot != i + 1 ||
		    e->expires != e->node->expires ||
		    e->node->seq >= head->seq)
			return -EINVAL;
		/* strictly after its parent: sequence numbers are unique */
		if (i && !entry_before(&head->heap[(i - 1) / D], e))
			return -EINVAL;
	}
	return 0;
}
