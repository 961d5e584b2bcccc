#!/usr/bin/env python3
"""Load benchmark of `iamra serve` next to nginx, a floor measured in the same run.

wrk (Debian package `wrk`) drives loopback HTTP/1.1 keep-alive connections, sharing the
machine's cores with the server, in two workloads:

  get      credentials GETs with a token taken before the run (the steady state of a
           service whose SDK caches its token);
  put-get  a token PUT then a credentials GET, in turn (an SDK's cold start);

at 1 connection (wrk -t1) and at 64 connections (wrk -t1 and -t2). nginx (Debian
package `nginx`, `worker_processes auto`, access log off) answers the same requests
with the same credentials document from memory: the cost of HTTP on this machine.

Rounds are interleaved (iamra, nginx, iamra, nginx, ...) so that machine noise hits
both alike; medians over ROUNDS are printed as Markdown. Also printed: the server's CPU
time per request (from /proc/PID/stat, less noisy than throughput on a shared machine)
and the peak RSS of `iamra serve` (VmHWM) after every run.

  bench/serve.py                       # ROUNDS=5 DURATION=10s
  ROUNDS=3 DURATION=5s bench/serve.py
  COMPARE=/path/to/other/iamra bench/serve.py   # A/B another build as well
  ONLY=get:64:2 bench/serve.py         # one workload (workload:connections:threads)
  COMPARE_ARGS="--threads 2" bench/serve.py     # the same build with other serve flags

Besides the medians, every run of every workload is printed (requests/s and p99 per
round), for goals that must hold in each run, not only in the median.
"""
import os, re, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = os.path.join(ROOT, "certs-testdata")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("IAMRA_BIN", os.path.join(TARGET, "release"))
# The local endpoint is a cargo example (never installed): <target>/release/examples.
ENDPOINT = os.environ.get("IAMRA_TEST_ENDPOINT", os.path.join(TARGET, "release", "examples", "iamra-test-endpoint"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
DURATION = os.environ.get("DURATION", "10s")
ROLE_PATH = "/latest/meta-data/iam/security-credentials/iamra-test-role"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def arns():
    env = {}
    for line in open(os.path.join(T, "arns.env")):
        if "=" in line and not line.startswith("#"):
            k, v = line.strip().split("=", 1)
            env[k.removeprefix("export ")] = v.strip('"')
    return env


def wait_for(path, proc):
    for _ in range(200):
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited with {proc.returncode}")
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {path}")


def cpu_seconds(pid):
    """utime + stime of every thread of `pid`."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m[2]]


class Server:
    """Something answering on `url`, whose CPU time can be read from `pids`."""

    def __init__(self, name, url, token, pids):
        self.name, self.url, self.token, self.pids = name, url, token, pids

    def cpu(self):
        return sum(cpu_seconds(p) for p in self.pids())


def start_iamra(name, binary, work, endpoint_port, procs, extra=()):
    a = arns()
    out = os.path.join(work, f"{name}.out")
    p = subprocess.Popen(
        [binary, "serve", "--port", "0",
         "--certificate", os.path.join(T, "rsa2048", "combined.pem"),
         "--intermediates", os.path.join(T, "chain.pem"),
         "--trust-anchor-arn", a["TRUST_ANCHOR_ARN"], "--profile-arn", a["PROFILE_ARN"],
         "--role-arn", a["ROLE_ARN"], "--endpoint", f"https://127.0.0.1:{endpoint_port}",
         "--ca-bundle", os.path.join(T, "tls", "ca.pem"), *extra],
        stdout=open(out, "w"), stderr=subprocess.DEVNULL)
    procs.append(p)
    wait_for(out, p)
    url = open(out).readline().strip().split("=", 1)[1].strip("'").rstrip("/")
    req = urllib.request.Request(url + "/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    token = urllib.request.urlopen(req).read().decode()
    doc = urllib.request.urlopen(urllib.request.Request(
        url + ROLE_PATH, headers={"X-aws-ec2-metadata-token": token})).read()
    return Server(name, url, token, lambda: [p.pid]), p, doc


def start_nginx(work, doc, procs):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        print("nginx not found (apt-get install nginx): no floor", file=sys.stderr)
        return None
    port_probe = __import__("socket").socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    body = doc.decode().rstrip("\n").replace("\\", "\\\\").replace("'", "\\'")
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off; worker_processes auto; pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off;
  server {{ listen 127.0.0.1:{port};
    location / {{ default_type application/json; add_header Cache-Control no-store;
      return 200 '{body}\\n'; }} }} }}
""")
    p = subprocess.Popen([nginx, "-c", conf, "-p", work], stderr=subprocess.DEVNULL)
    procs.append(p)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + ROLE_PATH).read()
            break
        except OSError:
            time.sleep(0.05)

    def pids():  # the master and its workers
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        return [p.pid] + [int(k) for k in kids]

    return Server("nginx", url, "unused", pids)


def wrk(server, workload, connections, threads, duration):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency"]
    if workload == "get":
        argv += ["-H", f"X-aws-ec2-metadata-token: {server.token}", server.url + ROLE_PATH]
    else:
        argv += ["-s", os.path.join(ROOT, "bench", "serve-put-get.lua"), server.url, "--", server.token]
    before = server.cpu()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    cpu = server.cpu() - before
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"{server.name} {workload} c={connections}: errors\n{out}")
    requests = int(re.search(r"(\d+) requests in", out)[1])
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p50": to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1]),
        "p99": to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1]),
        "cpu_us": cpu / requests * 1e6,
    }


def main():
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    if not os.environ.get("NO_BUILD"):
        subprocess.run(["cargo", "build", "--locked", "--release", "--quiet", "--bins",
                        "--example", "iamra-test-endpoint"], cwd=ROOT, check=True)
    procs = []
    work = tempfile.mkdtemp(prefix="iamra-serve-bench-")
    try:
        port_file = os.path.join(work, "ep-port")
        ep = subprocess.Popen(
            [ENDPOINT, "--trust-anchor", os.path.join(T, "ca", "root.pem"),
             "--tls-cert", os.path.join(T, "tls", "server.pem"), "--tls-key", os.path.join(T, "tls", "server.key"),
             "--listen", "127.0.0.1:0", "--port-file", port_file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ep)
        wait_for(port_file, ep)
        ep_port = open(port_file).read().strip()
        servers, iamras = [], []
        s, p, doc = start_iamra("iamra", os.path.join(BIN, "iamra"), work, ep_port, procs)
        servers.append(s)
        iamras.append((s, p))
        if os.environ.get("COMPARE") or os.environ.get("COMPARE_ARGS"):
            # Another build, or the same build with other serve flags (COMPARE_ARGS).
            binary = os.environ.get("COMPARE", os.path.join(BIN, "iamra"))
            extra = os.environ.get("COMPARE_ARGS", "").split()
            name = "compare " + " ".join(extra) if extra else "compare"
            s, p, _ = start_iamra(name, binary, work, ep_port, procs, extra)
            servers.append(s)
            iamras.append((s, p))
        floor = start_nginx(work, doc, procs)
        if floor:
            servers.append(floor)
        runs = [("get", 1, 1), ("get", 64, 1), ("get", 64, 2),
                ("put-get", 1, 1), ("put-get", 64, 1), ("put-get", 64, 2)]
        if os.environ.get("ONLY"):
            name, conns, threads = os.environ["ONLY"].split(":")
            runs = [(name, int(conns), int(threads))]
        for s in servers:  # warm-up
            wrk(s, "get", 64, 2, "2s")
        results = {}
        for r in range(ROUNDS):
            for run in runs:
                for s in servers:
                    results.setdefault((s.name,) + run, []).append(wrk(s, *run, DURATION))
            print(f"round {r + 1}/{ROUNDS} done", file=sys.stderr)
        nproc = os.cpu_count()
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
        print(f"\n{nproc} cores shared by server and load generator; wrk {wrk_version}; "
              f"{DURATION} per run; medians of {ROUNDS} interleaved rounds\n")
        print("| workload | connections | wrk threads | server | requests/s | p50 ms | p99 ms | server CPU µs/request |")
        print("|---|---:|---:|---|---:|---:|---:|---:|")
        for run in runs:
            for s in servers:
                rs = results[(s.name,) + run]
                med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
                print(f"| {run[0]} | {run[1]} | {run[2]} | {s.name} | {med['rps']:,.0f} | "
                      f"{med['p50']:.2f} | {med['p99']:.2f} | {med['cpu_us']:.1f} |")
        print("\nEvery run (round by round):\n")
        print("| workload | connections | wrk threads | server | requests/s per round | p99 ms per round |")
        print("|---|---:|---:|---|---|---|")
        for run in runs:
            for s in servers:
                rs = results[(s.name,) + run]
                rps = ", ".join(f"{x['rps']:,.0f}" for x in rs)
                p99 = ", ".join(f"{x['p99']:.2f}" for x in rs)
                print(f"| {run[0]} | {run[1]} | {run[2]} | {s.name} | {rps} | {p99} |")
        print()
        for s, p in iamras:
            print(f"peak RSS of {s.name} serve after every run: {peak_rss_mib(p.pid):.1f} MiB")
        if floor:
            rss = max(peak_rss_mib(pid) for pid in floor.pids())
            print(f"peak RSS of the largest nginx process: {rss:.1f} MiB")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
