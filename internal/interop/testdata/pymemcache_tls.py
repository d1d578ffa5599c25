"""Drives a memcached-compatible server over TLS with pymemcache's
tls_context. Usage: pymemcache_tls.py HOST PORT CAFILE TIMEOUT_SECONDS.
Prints one line per check and exits non-zero on the first failure."""
import ssl
import sys

from pymemcache.client.base import Client

host, port, cafile, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])

ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the certificate is for 127.0.0.1, by IP
ctx.minimum_version = ssl.TLSVersion.TLSv1_2

c = Client((host, port), tls_context=ctx, connect_timeout=timeout, timeout=timeout)


def check(what, got, want):
    if got != want:
        print("FAIL %s: got %r, want %r" % (what, got, want))
        sys.exit(1)
    print("ok %s" % what)


check("set", c.set("tls:k", b"v" * 100, noreply=False), True)
check("get", c.get("tls:k"), b"v" * 100)
big = bytes(range(256)) * 64  # 16 KiB, more than one TLS record
check("set big", c.set("tls:big", big, noreply=False), True)
check("get big", c.get("tls:big"), big)
check("get_many", c.get_many(["tls:k", "tls:none", "tls:big"]), {"tls:k": b"v" * 100, "tls:big": big})
check("incr", (c.set("tls:n", b"41", noreply=False), c.incr("tls:n", 1))[1], 42)
check("delete", c.delete("tls:k", noreply=False), True)
check("get deleted", c.get("tls:k"), None)
check("version", c.version(), b"1.6.18")
c.close()
