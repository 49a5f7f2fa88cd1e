/* test_list.c - the intrusive list (core/list.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/list.h"

struct item {
    int value;
    struct list link;
};

/* Writes the values of head's entries into out, first to last; returns
 * how many. */
static size_t
values(struct list *head, int *out, size_t max)
{
    struct list *pos, *tmp;
    size_t n = 0;
    list_for_each_safe(pos, tmp, head) {
        if (n < max)
            out[n] = list_entry(pos, struct item, link)->value;
        n++;
    }
    return n;
}

static void
test_order(void **state)
{
    (void)state;
    struct list head;
    struct item a = {.value = 1}, b = {.value = 2}, c = {.value = 3};
    int v[4];

    list_init(&head);
    assert_true(list_empty(&head));
    assert_null(list_first(&head));
    assert_null(list_last(&head));
    list_add_tail(&head, &b.link);
    list_add_tail(&head, &c.link);
    list_add(&head, &a.link);
    assert_int_equal(values(&head, v, 4), 3);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 2);
    assert_int_equal(v[2], 3);
    assert_ptr_equal(list_first(&head), &a.link);
    assert_ptr_equal(list_last(&head), &c.link);
}

static void
test_del_twice_and_zeroed(void **state)
{
    (void)state;
    struct list head;
    struct item a = {.value = 1}, b = {.value = 2}, never = {.value = 9};
    int v[4];

    list_init(&head);
    assert_false(list_linked(&never.link));
    list_del(&never.link); /* a zeroed entry is unlinked */
    list_add_tail(&head, &a.link);
    list_add_tail(&head, &b.link);
    assert_true(list_linked(&a.link));
    list_del(&a.link);
    list_del(&a.link);
    assert_false(list_linked(&a.link));
    assert_int_equal(values(&head, v, 4), 1);
    assert_int_equal(v[0], 2);
    list_del(&b.link);
    assert_true(list_empty(&head));
}

static void
test_del_while_walking(void **state)
{
    (void)state;
    struct list head, *pos, *tmp;
    struct item items[5];
    int v[5];

    list_init(&head);
    for (int i = 0; i < 5; i++) {
        items[i] = (struct item){.value = i};
        list_add_tail(&head, &items[i].link);
    }
    list_for_each_safe(pos, tmp, &head) {
        if (list_entry(pos, struct item, link)->value % 2 == 0)
            list_del(pos);
    }
    assert_int_equal(values(&head, v, 5), 2);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_del_twice_and_zeroed),
        cmocka_unit_test(test_del_while_walking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
