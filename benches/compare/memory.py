#!/usr/bin/env python3
"""Resident memory of a release `promptgauge serve` around large suites
(BENCHMARKS.md): RSS before, peak (VmHWM) and after posting an N-test JSON
suite to /api/suites, then four at once, then a 100,000-test echo
execution (peak while it runs, RSS after it ends).

    cargo build --release && python3 benches/compare/memory.py [N] [--yaml]
"""
import json, os, socket, subprocess, sys, tempfile, threading, time, urllib.request

N = int(next((a for a in sys.argv[1:] if a.isdigit()), "1000000"))
YAML = "--yaml" in sys.argv
BIN = os.path.join(os.path.dirname(__file__), "../../target/release/promptgauge")


def status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # MB
    return 0.0


def reset_peak(pid):
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def suite_text(n):
    """N tests of one var each (22 bytes a test in JSON, as the issue's
    22 MB suite), graded by a defaultTest assertion."""
    if YAML:
        lines = ["prompts: ['Q: {{i}}']", "providers: [echo]",
                 "defaultTest: {assert: [{type: contains, value: Q}]}", "tests:"]
        lines += [f"  - vars: {{i: {i}}}" for i in range(n)]
        return "\n".join(lines) + "\n", "application/yaml"
    tests = ",".join(f'{{"vars":{{"i":{i}}}}}' for i in range(n))
    return ('{"prompts":["Q: {{i}}"],"providers":["echo"],'
            '"defaultTest":{"assert":[{"type":"contains","value":"Q"}]},"tests":[' + tests + "]}",
            "application/json")


def post(port, path, body, ctype):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(), method="POST",
                                 headers={"content-type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=3600) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
        return json.loads(r.read())


def settle(pid, seconds=12.0):
    time.sleep(seconds)
    return status(pid, "VmRSS")


def start():
    """A fresh release server on a free port and an empty database."""
    work = tempfile.mkdtemp()
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ, DATABASE_PATH=f"{work}/m.db", PORT=str(port), RUST_LOG="warn",
               PERFORMANCE_MONITORING_INTERVAL="3600000", MAX_CONCURRENT_TESTS="200")
    server = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            get(port, "/api/performance/health"); break
        except Exception:
            time.sleep(0.1)
    return server, port


def main():
    server, port = start()
    try:
        pid = server.pid
        body, ctype = suite_text(N)
        print(f"{N} tests, {'YAML' if YAML else 'JSON'} suite of {len(body) / 1e6:.1f} MB, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
        base = settle(pid, 1)
        reset_peak(pid)
        t = time.time()
        code, answer = post(port, "/api/suites", body, ctype)
        took = time.time() - t
        peak = status(pid, "VmHWM")
        print(f"one post: HTTP {code} in {took:.1f} s; RSS {base:.0f} MB before, peak {peak:.0f} MB, {settle(pid):.0f} MB 12 s after")
        if code >= 300:
            print(f"  {str(answer)[:300]}")
        reset_peak(pid)
        bodies = [body.replace("Q: {{i}}", f"Q{k}: {{{{i}}}}") for k in range(4)]
        codes = []
        threads = [threading.Thread(target=lambda b=b: codes.append(post(port, "/api/suites", b, ctype)[0])) for b in bodies]
        [th.start() for th in threads]; [th.join() for th in threads]
        print(f"four at once: HTTP {sorted(codes)}; peak {status(pid, 'VmHWM'):.0f} MB, {settle(pid):.0f} MB 12 s after")
        del bodies
    finally:
        server.terminate(); server.wait()
    # A 100,000-test execution (echo) on a fresh server: its peak.
    server, port = start()
    try:
        pid = server.pid
        base = settle(pid, 1)
        n = 100_000
        run_body = json.dumps({"suite": {"prompts": ["Q: {{q}}"], "providers": ["echo"], "tests": [
            {"vars": {"q": f"question {i}"}, "assert": [{"type": "contains", "value": "Q"}]} for i in range(n)]},
            "cache": False})
        t = time.time()
        code, answer = post(port, "/api/executions", run_body, "application/json")
        eid = answer.get("id")
        while get(port, f"/api/executions/{eid}")["status"] not in ("completed", "failed", "cancelled"):
            time.sleep(0.5)
        print(f"{n}-test execution (fresh server, {base:.0f} MB before): {time.time() - t:.1f} s, peak {status(pid, 'VmHWM'):.0f} MB, {settle(pid):.0f} MB 12 s after")
    finally:
        server.terminate(); server.wait()


main()
