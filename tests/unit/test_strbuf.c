/* test_strbuf.c - strbuf_json_string(): the text it is given cannot end
 * the JSON string it writes, nor break the document around it (the HTTP
 * proxy's error bodies): quotes, backslashes and every control byte are
 * escaped, valid UTF-8 is kept, invalid UTF-8 becomes U+FFFD, and what was
 * in the buffer before stays. Each input is also fed at the end of a page
 * followed by an unreadable one, so a read past its NUL crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "guard.h"

/* s (with its NUL) right before a guard page, appended after "{" */
static void
json_is(const char *s, const char *want)
{
    struct strbuf sb = {0};
    struct guard g;
    const char *copy = (const char *)guard_copy(&g, s, strlen(s) + 1);

    strbuf_printf(&sb, "{");
    strbuf_json_string(&sb, copy);
    assert_false(sb.failed);
    assert_string_equal(sb.data + 1, want);
    guard_free(&g);
    strbuf_free(&sb);
}

static void
test_escaped(void **state)
{
    (void)state;
    json_is("", "\"\"");
    json_is("plain text", "\"plain text\"");
    json_is("a \"quoted\" word", "\"a \\\"quoted\\\" word\"");
    json_is("ends in a quote\"", "\"ends in a quote\\\"\"");
    json_is("back\\slash", "\"back\\\\slash\"");
    json_is("\"},\"error\":\"forged", "\"\\\"},\\\"error\\\":\\\"forged\"");
    json_is("line\nbreak\r\ttab", "\"line\\nbreak\\r\\ttab\"");
    json_is("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
}

static void
test_utf8(void **state)
{
    (void)state;
    json_is("gr\xc3\xb6\xc3\x9f"
            "e \xf0\x9f\x98\x80",
            "\"gr\xc3\xb6\xc3\x9f"
            "e \xf0\x9f\x98\x80\"");
    /* a lone continuation byte, an overlong '"', a cut sequence at the end */
    json_is("\x80", "\"\\ufffd\"");
    json_is("\xc0\xa2", "\"\\ufffd\\ufffd\"");
    json_is("a\xe2\x82", "\"a\\ufffd\\ufffd\"");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
