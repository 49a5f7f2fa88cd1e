"""detach.py: for the tools a hostile instance runs. detach() leaves the
instance's session as a daemon would (a double fork and setsid, stdio
closed): only the reaper of its uid ends it."""
import os
import sys


def detach():
    if os.fork():
        sys.exit(0)
    os.setsid()
    if os.fork():
        sys.exit(0)
    for fd in (0, 1, 2):
        os.close(fd)
