/* db.c - opening and creating the smartgrid user database. */
#include "db.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "timestamp INTEGER NOT NULL, power REAL NOT NULL, impedance REAL NOT NULL, "
    "tension REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS metrics_timestamp ON metrics(timestamp);"
    "CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "metric TEXT NOT NULL, threshold REAL NOT NULL);";

int
sg_db_key_valid(const char *key, size_t len)
{
    if (len != SG_KEY_HEX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit((unsigned char)key[i]))
            return 0;
    return 1;
}

int
sg_db_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int
sg_db_open(const char *path, const char *key, size_t len, int create, sqlite3 **out)
{
    /* x'HEX' is SQLCipher's raw key form: no KDF */
    char raw[SG_KEY_HEX + 3];
    sqlite3 *db = NULL;
    int rc = -EIO;

    if (!sg_db_key_valid(key, len))
        return -EINVAL;
    if (!create && access(path, F_OK) != 0)
        return -ENOENT;
    raw[0] = 'x';
    raw[1] = '\'';
    memcpy(raw + 2, key, SG_KEY_HEX);
    raw[SG_KEY_HEX + 2] = '\'';
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK)
        goto fail;
    int krc = sqlite3_key(db, raw, (int)sizeof(raw));
    explicit_bzero(raw, sizeof(raw));
    if (krc != SQLITE_OK)
        goto fail;
    /* the first read tells whether the key decrypts the file */
    int qrc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master;", NULL, NULL, NULL);
    if (qrc == SQLITE_NOTADB) {
        rc = -EACCES;
        goto fail;
    }
    if (qrc != SQLITE_OK)
        goto fail;
    if (create && sg_db_exec(db, schema) != 0)
        goto fail;
    *out = db;
    return 0;
fail:
    explicit_bzero(raw, sizeof(raw));
    sqlite3_close(db);
    return rc;
}
