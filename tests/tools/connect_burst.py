#!/usr/bin/env python3
"""connect_burst.py - many HTTP CONNECT requests at once through an egress relay.

    connect_burst.py PORT PID TIMEOUT HOST:PORT...

Opens one connection to 127.0.0.1:PORT per HOST:PORT, all at once, sends
"CONNECT HOST:PORT HTTP/1.1" on each and waits up to TIMEOUT seconds for
the status line. Meanwhile samples the thread count of process PID
(/proc/PID/status) every 20 ms. Prints one line:
    threads_max=N status_503=N status_502=N ... none=N max_503_ms=N
where none counts connections without a status line and max_503_ms is the
longest time a 503 answer took, from the start of its connect.
"""
import asyncio
import collections
import sys
import time


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


async def one(port, dest, timeout, results):
    start = time.monotonic()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        w.write(f"CONNECT {dest} HTTP/1.1\r\nHost: {dest}\r\n\r\n".encode())
        await w.drain()
        line = await asyncio.wait_for(r.readline(), timeout)
        w.close()
    except (OSError, asyncio.TimeoutError):
        line = b""
    parts = line.split()
    status = parts[1].decode() if len(parts) > 1 else "none"
    results[status] += 1
    if status == "503":
        results["lat_503"] = max(results["lat_503"], int((time.monotonic() - start) * 1000))


async def sample(pid, state):
    while not state["done"]:
        state["max"] = max(state["max"], threads(pid))
        await asyncio.sleep(0.02)


async def main(port, pid, timeout, dests):
    results = collections.Counter()
    state = {"done": False, "max": threads(pid)}
    sampler = asyncio.ensure_future(sample(pid, state))
    await asyncio.gather(*(one(port, d, timeout, results) for d in dests))
    state["done"] = True
    await sampler
    out = [f"threads_max={state['max']}"]
    out += [f"status_{k}={v}" for k, v in sorted(results.items()) if k not in ("none", "lat_503")]
    out += [f"none={results['none']}", f"max_503_ms={results['lat_503']}"]
    print(" ".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]))
