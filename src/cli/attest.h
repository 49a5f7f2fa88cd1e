/* attest.h - `airlock attest`: verify evidence, print fresh sim evidence. */
#ifndef AIRLOCK_CLI_ATTEST_H
#define AIRLOCK_CLI_ATTEST_H

/* argv[0] is "attest". Returns the exit status: 0 valid (verify) or printed
 * (get), 1 invalid evidence or provider failure, 2 usage errors. */
int cmd_attest(int argc, char **argv);

#endif
