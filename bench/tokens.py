#!/usr/bin/env python3
"""One-shot credential-process with a hardware key, next to the standard one-shot
signer plus curl, measured interleaved in the same run.

  PKCS#11 (SoftHSM2 token in a temp dir):
    iamra credential-process --certificate 'pkcs11:token=bench;id=%0N' (certificate,
      key and PIN from the token; a full CreateSession to the local endpoint)
    floor = pkcs11-tool --login --sign (same module, token and key, the same hash
      mechanism iamra uses) + curl's TLS POST to the same endpoint
    and the cost of a cache miss: the RSA key's call with the cache on, emptied before
      each call, against the same call with --no-cache
  TPM 2.0 (swtpm on loopback TCP, TSS2 key files made by the tpm2 OpenSSL provider,
  parent 0x40000001, so every use re-creates the storage primary key):
    iamra credential-process --private-key KEY.tss2.pem (TPM2TOOLS_TCTI)
    floor = openssl pkeyutl -sign with the tpm2 provider (same key) + curl

Each run is measured by the C launcher bench/rusage.c (wall time around fork+wait,
CPU = user+sys of the child). The floor's two commands run one after the other; its
wall and CPU for a run are their sums. RUNS rounds (default 30) alternate iamra and
the floor; medians are printed as Markdown with the load average.

  bench/tokens.sh                         # builds, then runs this
  IAMRA_BIN=<dir> RUNS=30 python3 bench/tokens.py
"""
import os, shutil, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T = os.path.join(ROOT, "certs-testdata")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("IAMRA_BIN", os.path.join(TARGET, "release"))
# The local endpoint is a cargo example (never installed): <target>/release/examples.
ENDPOINT = os.environ.get("IAMRA_TEST_ENDPOINT", os.path.join(TARGET, "release", "examples", "iamra-test-endpoint"))
RUSAGE = os.environ.get("RUSAGE", os.path.join(TARGET, "bench-rusage"))
RUNS = int(os.environ.get("RUNS", "30"))
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "bench-pin-1"
EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
       "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")


def run(argv, env=None, **kw):
    r = subprocess.run(argv, env=env, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, argv))}\n{r.stderr.decode(errors='replace')}")
    return r.stdout


def measure(argv, env):
    out = subprocess.run([RUSAGE] + argv, check=True, capture_output=True, text=True, env=env).stdout.split()
    if int(out[3]) != 0:
        sys.exit(f"failed ({out[3]}): {' '.join(argv)}")
    return float(out[0]), float(out[1])


def arns():
    return dict(l.strip().split("=", 1) for l in open(os.path.join(T, "arns.env")) if "=" in l)


def certify(work, name, pub_pem):
    cert = os.path.join(work, f"{name}.crt")
    run(["openssl", "x509", "-new", "-subj", f"/CN=bench-{name}", "-force_pubkey", pub_pem,
         "-CA", f"{T}/ca/intermediate.pem", "-CAkey", f"{T}/ca/intermediate.key", "-days", "30",
         "-extfile", os.path.join(work, "ee.ext"), "-out", cert])
    return cert


def softhsm(work):
    conf = os.path.join(work, "softhsm2.conf")
    os.makedirs(os.path.join(work, "tokens"))
    with open(conf, "w") as f:
        f.write(f"directories.tokendir = {work}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    run(["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin", "12345678", "--pin", PIN], env)
    p11 = ["pkcs11-tool", "--module", MODULE, "--token-label", "bench", "--login", "--pin", PIN]
    keys = []
    for name, kid, kind, mech in [("p11-rsa", "01", "rsa:2048", "SHA256-RSA-PKCS"),
                                  ("p11-ec", "02", "EC:prime256v1", "ECDSA")]:
        run(p11 + ["--keypairgen", "--key-type", kind, "--id", kid], env)
        der = os.path.join(work, f"{name}.pub.der")
        pem = os.path.join(work, f"{name}.pub.pem")
        run(p11 + ["--read-object", "--type", "pubkey", "--id", kid, "-o", der], env)
        run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", der, "-out", pem])
        cert = certify(work, name, pem)
        cert_der = os.path.join(work, f"{name}.crt.der")
        run(["openssl", "x509", "-outform", "DER", "-in", cert, "-out", cert_der])
        run(p11 + ["--write-object", cert_der, "--type", "cert", "--id", kid], env)
        keys.append((name, kid, mech))
    return env, keys


def swtpm(work, procs):
    state = os.path.join(work, "tpm")
    os.makedirs(state)
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        try:
            s2 = socket.socket()
            s2.bind(("127.0.0.1", port + 1))
            s2.close()
            break
        except OSError:
            continue
    p = subprocess.Popen(["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}",
                          "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                          "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                          "--flags", "not-need-init,startup-clear"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port + 1)).close()
            break
        except OSError:
            time.sleep(0.05)
    tcti = f"swtpm:host=127.0.0.1,port={port}"
    env = dict(os.environ, TPM2TOOLS_TCTI=tcti, TPM2OPENSSL_TCTI=tcti, TSS2_LOG="all+none")
    keys = []
    for name, alg in [("tpm-rsa", ["-algorithm", "RSA", "-pkeyopt", "bits:2048"]),
                      ("tpm-ec", ["-algorithm", "EC", "-pkeyopt", "group:P-256"])]:
        key = os.path.join(work, f"{name}.tss2.pem")
        pub = os.path.join(work, f"{name}.pub.pem")
        prov = ["-provider", "tpm2", "-provider", "default"]
        run(["openssl", "genpkey"] + prov + alg + ["-out", key], env)
        run(["openssl", "pkey"] + prov + ["-in", key, "-pubout", "-out", pub], env)
        keys.append((name, key, certify(work, name, pub)))
    return env, keys


def endpoint(work, procs):
    port_file = os.path.join(work, "port")
    p = subprocess.Popen([ENDPOINT, "--trust-anchor", f"{T}/ca/root.pem",
                          "--tls-cert", f"{T}/tls/server.pem", "--tls-key", f"{T}/tls/server.key",
                          "--listen", "127.0.0.1:0", "--port-file", port_file], stdout=subprocess.DEVNULL)
    procs.append(p)
    for _ in range(200):
        if os.path.exists(port_file) and open(port_file).read():
            break
        time.sleep(0.05)
    return f"https://127.0.0.1:{open(port_file).read()}"


def compare(label, iamra, floor, env, before=None):
    """iamra alone vs the floor's commands run in turn, RUNS rounds interleaved;
    `before` (if given) runs ahead of each iamra call, outside the measurement."""
    measure(iamra, env)
    for f in floor:
        measure(f, env)
    a, b = [], []
    for _ in range(RUNS):
        if before:
            before()
        a.append(measure(iamra, env))
        parts = [measure(f, env) for f in floor]
        b.append((sum(p[0] for p in parts), sum(p[1] for p in parts)))
    med = lambda xs, i: statistics.median(x[i] for x in xs) * 1000
    aw, ac, bw, bc = med(a, 0), med(a, 1), med(b, 0), med(b, 1)
    print(f"| {label} | {aw:.1f} | {ac:.1f} | {bw:.1f} | {bc:.1f} | {aw / bw:.2f}x | {ac / bc:.2f}x |", flush=True)


def main():
    for tool in ["softhsm2-util", "pkcs11-tool", "swtpm", "openssl", "curl"]:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install softhsm2 opensc swtpm tpm2-openssl curl)")
    a = arns()
    procs = []
    work = tempfile.mkdtemp()
    try:
        with open(os.path.join(work, "ee.ext"), "w") as f:
            f.write(EXT)
        url = endpoint(work, procs)
        common = ["--trust-anchor-arn", a["TRUST_ANCHOR_ARN"], "--profile-arn", a["PROFILE_ARN"],
                  "--role-arn", a["ROLE_ARN"], "--endpoint", url, "--ca-bundle", f"{T}/tls/ca.pem",
                  "--intermediates", f"{T}/chain.pem", "--no-cache"]
        curl = ["curl", "-s", "-o", "/dev/null", "--cacert", f"{T}/tls/ca.pem", "-X", "POST",
                "-H", "Content-Type: application/json", "--data", '{"durationSeconds":3600}',
                f"{url}/sessions?profileArn=x&roleArn=y&trustAnchorArn=z"]
        # What a credential-process signs: a SigV4 string-to-sign (here its hash for
        # raw ECDSA, as iamra hands the token a host SHA-256).
        msg = os.path.join(work, "msg")
        with open(msg, "wb") as f:
            f.write(b"AWS4-X509-RSA-SHA256\n20261201T000000Z\n20261201/us-east-1/rolesanywhere/aws4_request\n" + b"0" * 64)
        digest = os.path.join(work, "msg.sha256")
        with open(digest, "wb") as f:
            f.write(__import__("hashlib").sha256(open(msg, "rb").read()).digest())
        sig = os.path.join(work, "sig")
        iamra = os.path.join(BIN, "iamra")
        load = os.getloadavg()
        print(f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {RUNS} rounds\n")
        print("| key | iamra wall ms | iamra CPU ms | floor wall ms | floor CPU ms | wall vs floor | CPU vs floor |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        env, keys = softhsm(work)
        env = dict(env, IAMRA_PKCS11_PIN=PIN)
        for name, kid, mech in keys:
            cp = [iamra, "credential-process", "--certificate", f"pkcs11:token=bench;id=%{kid}",
                  "--pkcs11-lib", MODULE] + common
            signer = ["pkcs11-tool", "--module", MODULE, "--token-label", "bench", "--login", "--pin", PIN,
                      "--sign", "--id", kid, "-m", mech, "-i", digest if mech == "ECDSA" else msg, "-o", sig]
            compare(f"{name} (SoftHSM2; floor: pkcs11-tool --sign + curl)", cp, [signer, curl], env)
        # What the credential cache costs on a miss (its key resolves the URI, then
        # the key loads, then the entry is written): the same call with the cache on
        # and emptied before each call, against the call with --no-cache.
        name, kid, _ = keys[0]
        cache = os.path.join(work, "cache")
        cp = [iamra, "credential-process", "--certificate", f"pkcs11:token=bench;id=%{kid}",
              "--pkcs11-lib", MODULE] + common
        compare(f"{name} (SoftHSM2), cache on, every call a miss; floor: the same call with --no-cache",
                [arg for arg in cp if arg != "--no-cache"], [cp],
                dict(env, IAMRA_NO_CACHE="false", IAMRA_CACHE_DIR=cache),
                before=lambda: shutil.rmtree(cache, ignore_errors=True))
        env, keys = swtpm(work, procs)
        for name, key, cert in keys:
            cp = [iamra, "credential-process", "--certificate", cert, "--private-key", key] + common
            signer = ["openssl", "pkeyutl", "-sign", "-provider", "tpm2", "-provider", "default",
                      "-inkey", key, "-rawin", "-digest", "sha256", "-in", msg, "-out", sig]
            compare(f"{name} (swtpm; floor: openssl pkeyutl -sign + curl)", cp, [signer, curl], env)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
