#!/usr/bin/env python3
"""Drive a memcached-compatible server with pymemcache (Debian python3-pymemcache).

Usage: pymemcache_test.py HOST PORT [PATIENCE]

PATIENCE (seconds, default 120) bounds each wait that ends early unless
the server hangs: each socket operation, and waiting for an item to expire.
No check depends on how fast the machine is.

Exits 0 when every check passes; prints each failed check and exits 1
otherwise. Run by TestPymemcache in internal/interop.
"""

import sys
import time

from pymemcache.client.base import Client
from pymemcache import serde

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


def eventually(what, cond, patience):
    """Polls cond until it is true; a failed check after patience seconds."""
    deadline = time.monotonic() + patience
    while not cond():
        if time.monotonic() > deadline:
            failures.append("%s: still not so after %ss" % (what, patience))
            return
        time.sleep(0.01)


class RecordingSerde(object):
    """Stores bytes with the flags given in the value tuple, and records the
    flags each get returns."""

    def __init__(self):
        self.seen = {}

    def serialize(self, key, value):
        data, flags = value
        return data, flags

    def deserialize(self, key, value, flags):
        self.seen[key if isinstance(key, str) else key.decode()] = flags
        return value


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    patience = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    server = (host, port)
    # The default client: default_noreply=True, so stores send noreply
    # unless asked otherwise.
    c = Client(server, connect_timeout=patience, timeout=patience)

    # set/get, with and without noreply
    check("set noreply", c.set("a", b"alpha"), True)
    check("get a", c.get("a"), b"alpha")
    check("set reply", c.set("b", b"beta", noreply=False), True)
    check("get b", c.get("b"), b"beta")
    check("get missing", c.get("missing"), None)
    check("get default", c.get("missing", default=b"d"), b"d")
    check("binary value", c.set("bin", b"\x00\r\n\xff", noreply=False), True)
    check("get bin", c.get("bin"), b"\x00\r\n\xff")

    # get_many
    keys = ["m%d" % i for i in range(50)]
    c.set_many({k: k.encode() for k in keys}, noreply=False)
    got = c.get_many(keys + ["nope1", "nope2"])
    check("get_many count", len(got), 50)
    check("get_many values", all(got[k] == k.encode() for k in keys), True)

    # gets/cas
    value, token = c.gets("a")
    check("gets value", value, b"alpha")
    check("gets token type", isinstance(token, bytes) and token.isdigit(), True)
    check("cas ok", c.cas("a", b"alpha2", token, noreply=False), True)
    check("cas stale", c.cas("a", b"alpha3", token, noreply=False), False)
    check("cas missing", c.cas("missing", b"x", b"1", noreply=False), None)
    check("after cas", c.get("a"), b"alpha2")
    check("gets missing", c.gets("missing"), (None, None))

    # incr/decr
    check("set n", c.set("n", b"10", noreply=False), True)
    check("incr", c.incr("n", 5), 15)
    check("decr", c.decr("n", 3), 12)
    check("decr floor", c.decr("n", 100), 0)
    check("incr missing", c.incr("missing", 1), None)
    check("decr missing", c.decr("missing", 1), None)
    check("incr noreply", c.incr("n", 7, noreply=True), None)
    # memcached keeps the length of a value that incr/decr shortens,
    # padding it with spaces ("12" - 100 is "0 ", + 7 is "7 ").
    check("after incr noreply", c.get("n"), b"7 ")
    check("set big", c.set("big", b"18446744073709551615", noreply=False), True)
    check("incr wrap", c.incr("big", 1), 0)

    # add/replace/append/prepend
    check("add existing", c.add("a", b"x", noreply=False), False)
    check("add new", c.add("new", b"fresh", noreply=False), True)
    check("get new", c.get("new"), b"fresh")
    check("replace existing", c.replace("new", b"replaced", noreply=False), True)
    check("replace missing", c.replace("missing", b"x", noreply=False), False)
    check("append", c.append("new", b">>", noreply=False), True)
    check("prepend", c.prepend("new", b"<<", noreply=False), True)
    check("after append/prepend", c.get("new"), b"<<replaced>>")
    check("append missing", c.append("missing", b"x", noreply=False), False)
    check("prepend missing", c.prepend("missing", b"x", noreply=False), False)

    # delete
    check("delete", c.delete("new", noreply=False), True)
    check("delete again", c.delete("new", noreply=False), False)
    check("get deleted", c.get("new"), None)
    check("delete_many", c.delete_many(["m0", "m1", "missing"], noreply=False), True)
    check("get_many after delete_many", sorted(c.get_many(["m0", "m1", "m2"])), ["m2"])

    # touch and expiry
    # The servers' clocks tick in whole seconds: an expire of 3 lives at
    # least 2 seconds (one of 1 may end at once), so the checks that need
    # the items alive run only when they came within 2 seconds.
    # "touched" is stored first: once "short" has expired, so would have
    # "touched" without its touch.
    start = time.monotonic()
    check("set touched", c.set("touched", b"t", expire=3, noreply=False), True)
    check("set short", c.set("short", b"s", expire=3, noreply=False), True)
    touched = c.touch("touched", 100, noreply=False)
    short = c.get("short")
    if time.monotonic() - start < 2:
        check("touch", touched, True)
        check("get short before", short, b"s")
    check("touch missing", c.touch("missing", 100, noreply=False), False)
    eventually("short expires", lambda: c.get("short") is None, patience)
    if touched:
        check("get touched after expiry", c.get("touched"), b"t")

    # flags with the python-memcache serializer pymemcache ships
    pc = Client(server, serde=serde.pickle_serde, connect_timeout=patience, timeout=patience)
    samples = {
        "s_text": u"h\u00e9llo",
        "s_int": 12345,
        "s_bytes": b"raw",
        "s_list": [1, "two", {"three": 3}],
    }
    for k, v in samples.items():
        check("serde set " + k, pc.set(k, v, noreply=False), True)
    for k, v in samples.items():
        check("serde get " + k, pc.get(k), v)
    check("serde get_many", pc.get_many(list(samples)), samples)

    # raw flags round trip (the whole 32-bit range)
    rec = RecordingSerde()
    rc = Client(server, serde=rec, connect_timeout=patience, timeout=patience)
    for k, flags in [("f0", 0), ("f1", 1), ("f16", 16), ("fmax", 4294967295)]:
        check("flags set " + k, rc.set(k, (b"v", flags), noreply=False), True)
        check("flags get " + k, rc.get(k), b"v")
        check("flags of " + k, rec.seen.get(k), flags)

    # version/stats/flush_all
    check("version", c.version().startswith(b"1.6."), True)
    stats = c.stats()
    check("stats has curr_items", b"curr_items" in stats, True)
    check("flush_all", c.flush_all(noreply=False), True)
    check("get after flush_all", c.get("a"), None)

    for cl in (c, pc, rc):
        cl.close()

    if failures:
        for f in failures:
            print("FAIL " + f)
        return 1
    print("ok: all pymemcache checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
