/* field.h - `airlock field encrypt|decrypt|rewrap`: the field-encryption
 * rewriter on a JSON file or stdin (docs/field-encryption.md). */
#ifndef AIRLOCK_CLI_FIELD_H
#define AIRLOCK_CLI_FIELD_H

/* argv[0] is "field". Returns the exit status: 0 rewritten (on stdout), 1
 * refused (one line on stderr, nothing on stdout), 2 usage errors. */
int cmd_field(int argc, char **argv);

#endif
