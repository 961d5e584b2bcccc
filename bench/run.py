#!/usr/bin/env python3
"""Whole-process benchmarks of iamra next to a floor measured in the same run.

Each command is run RUNS times, interleaved (a, b, a, b, ...) so that machine noise hits
both alike. For every run, measured by the C launcher bench/rusage.c: wall time
(CLOCK_MONOTONIC around fork+wait), CPU time (user+sys of the child, from wait4) and peak
RSS (ru_maxrss of the child). Medians are
printed as a Markdown table.

  1. iamra credential-process (RSA-2048 file key) against the local endpoint
     vs curl making the same TLS POST to the same endpoint;
  2. iamra sign-string vs openssl pkeyutl signing the same 82-byte message.
"""
import atexit, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = os.path.join(ROOT, "certs-testdata")


def installed(bin_dir):
    """A copy of bin_dir's programs (iamra, and iamra-tpm beside it when present) in a
    temporary folder, written in one go as a package manager writes them. The file the
    linker wrote starts measurably slower (0.4 ms in an A/A run; BENCHMARKS.md, "Two
    biases found in the bench"), and users run the installed one."""
    if not bin_dir:
        return bin_dir
    dest = tempfile.mkdtemp(prefix="iamra-bench-")
    atexit.register(shutil.rmtree, dest, True)
    for name in ("iamra", "iamra-tpm"):
        if os.path.exists(os.path.join(bin_dir, name)):
            shutil.copy2(os.path.join(bin_dir, name), dest)
    return dest


BIN = installed(os.environ.get("IAMRA_BIN", os.path.join(ROOT, "target", "release")))
# The local endpoint is a cargo example (never installed): target/release/examples.
ENDPOINT = os.environ.get("IAMRA_TEST_ENDPOINT",
                          os.path.join(ROOT, "target", "release", "examples", "iamra-test-endpoint"))
RUNS = int(os.environ.get("RUNS", "40"))
# The packaged build's directory (bench/run.sh builds it into target/packaged).
PACKAGED = installed(os.environ.get("PACKAGED_BIN"))


RUSAGE = os.environ.get("RUSAGE", os.path.join(ROOT, "target", "bench-rusage"))


def measure(argv, env=None):
    """One run through the C launcher (bench/rusage.c): wall s, CPU s, peak RSS MiB."""
    out = subprocess.run([RUSAGE] + argv, check=True, capture_output=True, text=True, env=env).stdout.split()
    wall, cpu, rss_kib, code = float(out[0]), float(out[1]), int(out[2]), int(out[3])
    if code != 0 and argv[0] != "curl":
        sys.exit(f"failed ({code}): {' '.join(argv)}")
    return wall, cpu, rss_kib / 1024.0


def next_second():
    """Sleeps until the next whole second of the clock (X-Amz-Date's resolution)."""
    time.sleep(1.0 - time.time() % 1.0 + 0.001)


def compare(label, cmds, env=None, spread=False):
    """RUNS interleaved rounds of `cmds`; the last one is the floor. With `spread`,
    each round starts in a second of its own, so that every round signs a different
    X-Amz-Date, as calls made at random times do (an ML-DSA signature's cost depends
    on the message: its rejection loop runs a message-dependent number of rounds).
    The order rotates from round to round, so that every command runs in every
    position equally often: with `spread`, the first command of a round runs after a
    sleep, on an idle machine, and an A/A run (one binary in two rows) measured it
    0.9 ms slower in first position than in fourth."""
    results = {name: [] for name, _ in cmds}
    for name, argv in cmds:  # warm-up
        measure(argv, env)
    for i in range(RUNS):
        if spread:
            next_second()
        k = i % len(cmds)
        for name, argv in cmds[k:] + cmds[:k]:
            results[name].append(measure(argv, env))
    print(f"\n### {label} (median of {RUNS} runs)\n")
    print("| command | wall ms | CPU ms | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    med = {}
    for name, _ in cmds:
        w = statistics.median(r[0] for r in results[name]) * 1000
        c = statistics.median(r[1] for r in results[name]) * 1000
        m = statistics.median(r[2] for r in results[name])
        med[name] = (w, c, m)
        print(f"| {name} | {w:.2f} | {c:.2f} | {m:.1f} |")
    names = [n for n, _ in cmds]
    floor = med[names[-1]]
    for n in names[:-1]:
        a = med[n]
        print(f"\n{n} / {names[-1]}: wall {a[0] / floor[0]:.2f}x, CPU {a[1] / floor[1]:.2f}x")


def trust_store(iamra, work):
    """The cold call with the system's CA bundle (plus the test CA) as AWS_CA_BUNDLE,
    interleaved with the one-certificate bundle; BEFORE_BIN adds an older build."""
    system = os.environ.get("SYSTEM_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    if not os.path.exists(system):
        print(f"\n{system} not found: no trust-store rows")
        return
    big = os.path.join(work, "system-plus-test-ca.pem")
    with open(big, "wb") as f:
        f.write(open(system, "rb").read() + open(f"{T}/tls/ca.pem", "rb").read())
    n = open(big).read().count("BEGIN CERTIFICATE")
    base = [a for a in iamra if a not in ("--ca-bundle", f"{T}/tls/ca.pem")] + ["--no-cache"]
    builds = [("this build", iamra[0])]
    if os.environ.get("BEFORE_BIN"):
        builds.append(("before", os.path.join(installed(os.environ["BEFORE_BIN"]), "iamra")))
    cmds = []
    for label, exe in builds:
        cmds.append((f"{label}, AWS_CA_BUNDLE = {n} certificates", [exe] + base[1:], big))
        cmds.append((f"{label}, AWS_CA_BUNDLE = 1 certificate", [exe] + base[1:], f"{T}/tls/ca.pem"))
    results = {name: [] for name, _, _ in cmds}
    envs = {name: dict(os.environ, AWS_CA_BUNDLE=bundle) for name, _, bundle in cmds}
    for name, argv, _ in cmds:
        measure(argv, envs[name])
    for _ in range(RUNS):
        for name, argv, _ in cmds:
            results[name].append(measure(argv, envs[name]))
    print(f"\n### trust store: {n}-certificate bundle vs 1 certificate (median of {RUNS} runs)\n")
    print("| command | wall ms | CPU ms | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    med = {}
    for name, _, _ in cmds:
        med[name] = [statistics.median(r[i] for r in results[name]) for i in range(3)]
        w, c, m = med[name]
        print(f"| {name} | {w * 1000:.2f} | {c * 1000:.2f} | {m:.1f} |")
    for label, _ in builds:
        big_, small = med[f"{label}, AWS_CA_BUNDLE = {n} certificates"], med[f"{label}, AWS_CA_BUNDLE = 1 certificate"]
        print(f"\n{label}: the {n}-certificate bundle costs {(big_[1] - small[1]) * 1000:+.2f} ms CPU, "
              f"{(big_[0] - small[0]) * 1000:+.2f} ms wall")


def arns():
    """The test PKI's ARNs (certs-testdata/arns.env)."""
    return dict(line.strip().split("=", 1) for line in open(os.path.join(T, "arns.env")) if "=" in line)


def start_endpoint(work, extra=()):
    """Starts the local endpoint (release build) on a kernel-chosen loopback port;
    returns the process and its https URL."""
    port_file = os.path.join(work, "port")
    ep = subprocess.Popen([
        ENDPOINT, "--trust-anchor", f"{T}/ca/root.pem",
        "--tls-cert", f"{T}/tls/server.pem", "--tls-key", f"{T}/tls/server.key",
        "--listen", "127.0.0.1:0", "--port-file", port_file, *extra],
        stdout=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read():
            break
        time.sleep(0.05)
    return ep, f"https://127.0.0.1:{open(port_file).read()}"


def curl_post(url):
    """curl making the same TLS POST as a CreateSession call: the floor."""
    return ["curl", "-s", "-o", "/dev/null", "--cacert", f"{T}/tls/ca.pem", "-X", "POST",
            "-H", "Content-Type: application/json", "--data", '{"durationSeconds":3600}',
            f"{url}/sessions?profileArn=x&roleArn=y&trustAnchorArn=z"]


def main():
    env = arns()
    work = tempfile.mkdtemp()
    ep, url = start_endpoint(work, ["--request-log", os.path.join(work, "requests.jsonl")])
    try:
        iamra = [os.path.join(BIN, "iamra"), "credential-process",
                 "--certificate", f"{T}/rsa2048/cert.pem", "--private-key", f"{T}/rsa2048/key.pkcs8.pem",
                 "--intermediates", f"{T}/chain.pem",
                 "--trust-anchor-arn", env["TRUST_ANCHOR_ARN"], "--profile-arn", env["PROFILE_ARN"],
                 "--role-arn", env["ROLE_ARN"], "--endpoint", url, "--ca-bundle", f"{T}/tls/ca.pem"]
        curl = curl_post(url)
        load = os.getloadavg()
        print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        compare("credential-process vs curl (same TLS POST to the local endpoint)",
                [("iamra credential-process --no-cache", iamra + ["--no-cache"]), ("curl", curl)])
        if PACKAGED:
            # The build the .deb/.rpm ship (features tpm,aws-sdk) next to this one.
            packaged = [os.path.join(PACKAGED, "iamra")] + iamra[1:] + ["--no-cache"]
            compare("packaged build (tpm,aws-sdk) vs default build vs curl, file key",
                    [("packaged iamra credential-process --no-cache", packaged),
                     ("default iamra credential-process --no-cache", iamra + ["--no-cache"]),
                     ("curl", curl)])
            compare("process start, packaged vs default build",
                    [("packaged iamra version", [os.path.join(PACKAGED, "iamra"), "version"]),
                     ("default iamra version", [os.path.join(BIN, "iamra"), "version"])])
        trust_store(iamra, work)
        cache_env = dict(os.environ, IAMRA_CACHE_DIR=os.path.join(work, "cache"))
        version = [os.path.join(BIN, "iamra"), "version"]
        compare("credential-process with a warm cache vs iamra version",
                [("iamra credential-process (warm cache)", iamra), ("iamra version", version)], cache_env)
        compare("credential-process warm cache vs no cache",
                [("iamra credential-process (warm cache)", iamra),
                 ("iamra credential-process --no-cache", iamra + ["--no-cache"])], cache_env)
        # 32 processes at once with a cold cache: how many CreateSession calls?
        cold_env = dict(os.environ, IAMRA_CACHE_DIR=os.path.join(work, "cold-cache"))
        log = os.path.join(work, "requests.jsonl")
        before = sum(1 for _ in open(log))
        t0 = time.perf_counter()
        procs = [subprocess.Popen(iamra, env=cold_env, stdout=subprocess.PIPE) for _ in range(32)]
        outs = [p.communicate()[0] for p in procs]
        wall = time.perf_counter() - t0
        assert all(p.returncode == 0 for p in procs) and len(set(outs)) == 1
        calls = sum(1 for _ in open(log)) - before
        print(f"\n### 32 parallel credential-process calls, cold cache\n")
        print(f"CreateSession calls seen by the endpoint: {calls}; total wall time {wall * 1000:.1f} ms; "
              f"all 32 printed the same credentials")
        compare("process start floor", [("iamra version", [os.path.join(BIN, "iamra"), "version"]),
                                        ("curl --version", ["curl", "--version"])])
    finally:
        ep.terminate()
        ep.wait()

    msg = os.path.join(work, "message.bin")
    # The message sign-string signs (the same bytes are handed to openssl).
    subprocess.run([os.path.join(BIN, "iamra"), "sign-string", "--private-key", f"{T}/rsa2048/key.pkcs8.pem",
                    "--format", "bin"], check=True, stdout=subprocess.DEVNULL)
    import hashlib
    pub = subprocess.run(["openssl", "rsa", "-in", f"{T}/rsa2048/key.pkcs8.pem", "-RSAPublicKey_out",
                          "-outform", "DER"], check=True, capture_output=True).stdout
    with open(msg, "wb") as f:
        f.write(b"AWS Roles Anywhere Credential Helper Signing Test1" + hashlib.sha256(b"IAM RA" + pub).digest())
    sign = [os.path.join(BIN, "iamra"), "sign-string", "--private-key", f"{T}/rsa2048/key.pkcs8.pem", "--format", "bin"]
    ossl = ["openssl", "pkeyutl", "-sign", "-inkey", f"{T}/rsa2048/key.pkcs8.pem", "-rawin", "-digest", "sha256",
            "-in", msg, "-out", os.path.join(work, "sig.bin")]
    # Same bytes out: RSA PKCS#1 v1.5 is deterministic.
    a = subprocess.run(sign, check=True, capture_output=True).stdout
    subprocess.run(ossl, check=True)
    assert a == open(os.path.join(work, "sig.bin"), "rb").read(), "iamra and openssl signatures differ"
    compare("sign-string vs openssl pkeyutl (RSA-2048, same message, same signature)",
            [("iamra sign-string", sign), ("openssl pkeyutl", ossl)])

    size = os.path.getsize(os.path.join(BIN, "iamra"))
    print(f"\nStripped release binary: {size / 1e6:.2f} MB ({size} bytes)")


if __name__ == "__main__":
    main()
