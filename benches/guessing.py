#!/usr/bin/env python3
"""Latency of /health, /boot/ and the right user's GET while N clients guess
passwords under http_basic (docs/performance.md, "Password guessing").

usage: guessing.py BINARY [--guessers 16] [--seconds 20] [--cost 12] [--no-backoff]

Starts BINARY serve on a fresh data dir with an htpasswd of one user (bcrypt
cost --cost). Guessers connect from 127.0.0.2, the measuring client from
127.0.0.3 (Linux routes all of 127/8 to loopback). Prints percentiles in ms.
"""
import argparse, base64, http.client, os, socket, statistics, subprocess, sys, tempfile, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("binary")
ap.add_argument("--guessers", type=int, default=16)
ap.add_argument("--seconds", type=float, default=20)
ap.add_argument("--cost", type=int, default=12)
ap.add_argument("--no-backoff", action="store_true")
a = ap.parse_args()

import warnings  # noqa: E402
warnings.simplefilter("ignore", DeprecationWarning)
import crypt  # noqa: E402  (libxcrypt's bcrypt; Python <= 3.12)

d = tempfile.mkdtemp()
os.makedirs(f"{d}/httpboot")
open(f"{d}/httpboot/probe.ipxe", "w").write("#!ipxe\n")
open(f"{d}/htpasswd", "w").write("admin:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << a.cost)) + "\n")
limits = "auth_failure_limit = 1000000\nauth_address_failure_limit = 1000000\n" if a.no_backoff else ""
open(f"{d}/ironic.conf", "w").write(
    f"[DEFAULT]\nauth_strategy = http_basic\nhttp_basic_auth_user_file = {d}/htpasswd\n"
    f"[deploy]\nhttp_root = {d}/httpboot\n[api]\n{limits}")
p = subprocess.Popen([a.binary, "--config-file", f"{d}/ironic.conf", "serve", "--port", "0"],
                     env={**os.environ, "IRONLEDGER_DATA_DIR": d}, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, text=True)
host, port = p.stdout.readline().strip().rsplit("/", 1)[1].split(":")
port = int(port)

def conn(src):
    c = http.client.HTTPConnection(host, port, timeout=120, source_address=(src, 0))
    return c

def basic(u, pw):
    return "Basic " + base64.b64encode(f"{u}:{pw}".encode()).decode()

stop = time.time() + a.seconds
codes = {}
lock = threading.Lock()

def guess(g):
    c = conn("127.0.0.2")
    i = 0
    while time.time() < stop:
        try:
            c.request("GET", "/v1/nodes", headers={"Authorization": basic("admin", f"g{g}-{i}")})
            r = c.getresponse(); r.read()
            with lock:
                codes[r.status] = codes.get(r.status, 0) + 1
        except Exception:
            c = conn("127.0.0.2")
        i += 1

def measure(path, auth=None):
    c = conn("127.0.0.3")
    t = time.perf_counter()
    c.request("GET", path, headers={"Authorization": auth} if auth else {})
    r = c.getresponse(); r.read(); c.close()
    return (time.perf_counter() - t) * 1000, r.status

def sample(label, n=20):
    out = {}
    for name, path, auth in [("health", "/health", None), ("boot", "/boot/probe.ipxe", None),
                             ("right user", "/v1/nodes", basic("admin", "s3cret"))]:
        ms = []
        for _ in range(n):
            v, st = measure(path, auth)
            assert st == 200, (name, st)
            ms.append(v)
        ms.sort()
        out[name] = f"p50 {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"
    print(label, out, flush=True)

measure("/v1/nodes", basic("admin", "s3cret"))  # first login
sample("idle:")
threads = [threading.Thread(target=guess, args=(g,)) for g in range(a.guessers)]
for t in threads: t.start()
time.sleep(1)
sample(f"{a.guessers} guessers:")
for t in threads: t.join()
print("guesser answers:", codes)
p.terminate(); p.wait()
