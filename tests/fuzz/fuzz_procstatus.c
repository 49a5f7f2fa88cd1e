/* fuzz_procstatus.c - libFuzzer harness for the reader of /proc/PID/status
 * (proto/procstatus.h), whose Name: line a process chooses: any text is
 * read, cut short or refused with a reason, never crashes, and is only read
 * whole with its State, Uid and Threads lines all there. */
#include <stdint.h>

#include "fuzz.h"
#include "proto/procstatus.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct procstatus st;
    const char *err = NULL;

    enum parse_result r = procstatus_parse((const char *)data, size, &st, &err);
    check(r != PARSE_INVALID || err != NULL);
    if (r == PARSE_OK) {
        check(st.state != 0 && st.threads != PROCSTATUS_UNSET);
        for (int i = 0; i < 4; i++)
            check(st.uid[i] != PROCSTATUS_UNSET);
        (void)procstatus_alive(&st);
    }
    return 0;
}
