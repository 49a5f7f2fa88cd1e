/* db.h - the per-user SQLCipher database of the smartgrid application:
 * tables metrics(id, timestamp, power, impedance, tension) and
 * alarms(id, metric, threshold), an index on metrics(timestamp).
 *
 * The key is 64 hex digits (a raw 256-bit SQLCipher key, so opening skips
 * the passphrase KDF). It is used only to open the database and is never
 * stored or logged. */
#ifndef SMARTGRID_DB_H
#define SMARTGRID_DB_H

#include <sqlite3.h>
#include <stddef.h>

#define SG_KEY_HEX 64

/* Returns 1 when key[0..len) is SG_KEY_HEX hex digits, 0 otherwise. */
int sg_db_key_valid(const char *key, size_t len);

/* Opens the database at path with key[0..len) (checked by sg_db_key_valid).
 * create: 1 creates the file and the schema (provisioning), 0 requires the
 * file to exist and never creates one. Returns 0 and sets *db (close with
 * sqlite3_close), -ENOENT when the file does not exist, -EACCES when the key
 * does not decrypt it (the file is not written), -EINVAL for a malformed
 * key, -EIO otherwise. */
int sg_db_open(const char *path, const char *key, size_t len, int create, sqlite3 **db);

/* Runs sql (no parameters, no rows) on db; returns 0 or -EIO. */
int sg_db_exec(sqlite3 *db, const char *sql);

#endif
