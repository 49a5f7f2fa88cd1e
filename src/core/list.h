/* list.h - an intrusive doubly linked list, the one every module uses.
 *
 * A head is a struct list set up by list_init() (it points at itself when
 * empty); an entry embeds a struct list and is unlinked while its pointers
 * are NULL, so a zeroed entry is a valid unlinked one and list_del() may be
 * called twice. Nothing allocates: adding and removing are O(1) and cannot
 * fail.
 *
 *   struct conn { ...; struct list link; };
 *   struct list conns;  list_init(&conns);
 *   list_add_tail(&conns, &c->link);
 *   list_for_each_safe(pos, tmp, &conns)
 *       conn_close(list_entry(pos, struct conn, link));
 */
#ifndef AIRLOCK_CORE_LIST_H
#define AIRLOCK_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
    struct list *prev, *next;
};

/* The entry of type that holds the struct list at p in its member. */
#define list_entry(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* Every node of head, from the first; pos may be unlinked (and freed) in
 * the body, tmp holds the next one. */
#define list_for_each_safe(pos, tmp, head)                                                         \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

static inline void
list_init(struct list *head)
{
    head->prev = head->next = head;
}

static inline bool
list_empty(const struct list *head)
{
    return head->next == head;
}

/* Returns true when node is on a list. */
static inline bool
list_linked(const struct list *node)
{
    return node->next != NULL;
}

static inline void
list_insert(struct list *prev, struct list *node, struct list *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

/* Adds node (unlinked) as the first entry of head. */
static inline void
list_add(struct list *head, struct list *node)
{
    list_insert(head, node, head->next);
}

/* Adds node (unlinked) as the last entry of head. */
static inline void
list_add_tail(struct list *head, struct list *node)
{
    list_insert(head->prev, node, head);
}

/* Unlinks node if it is on a list; safe to call twice. */
static inline void
list_del(struct list *node)
{
    if (!list_linked(node))
        return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
}

/* Returns the first node of head, NULL when it is empty. */
static inline struct list *
list_first(const struct list *head)
{
    return list_empty(head) ? NULL : head->next;
}

/* Returns the last node of head, NULL when it is empty. */
static inline struct list *
list_last(const struct list *head)
{
    return list_empty(head) ? NULL : head->prev;
}

#endif
