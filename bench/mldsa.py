#!/usr/bin/env python3
"""Cold credential-process with ML-DSA keys vs curl's same TLS POST (bench/mldsa.sh).

Same method as bench/run.py (its `measure`/`compare`: RUNS interleaved runs through
bench/rusage.c, medians): iamra credential-process --no-cache with the ML-DSA-65 leaf
(ML-DSA CA chain) against curl making the same TLS POST to the same local endpoint; then
ML-DSA-87 and RSA-2048 against the same curl, in the same run.
"""
import os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: measure, compare, BIN, T)

T, BIN = run.T, run.BIN


def main():
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(T, "arns.env")) if "=" in line)
    work = tempfile.mkdtemp()
    port_file = os.path.join(work, "port")
    ep = subprocess.Popen([
        os.path.join(BIN, "iamra-test-endpoint"), "--trust-anchor", f"{T}/ca/root.pem",
        "--tls-cert", f"{T}/tls/server.pem", "--tls-key", f"{T}/tls/server.key",
        "--listen", "127.0.0.1:0", "--port-file", port_file], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read():
                break
            time.sleep(0.05)
        url = f"https://127.0.0.1:{open(port_file).read()}"

        def iamra(cert, key, chain):
            return [os.path.join(BIN, "iamra"), "credential-process",
                    "--certificate", f"{T}/{cert}", "--private-key", f"{T}/{key}",
                    "--intermediates", f"{T}/{chain}",
                    "--trust-anchor-arn", env["TRUST_ANCHOR_ARN"], "--profile-arn", env["PROFILE_ARN"],
                    "--role-arn", env["ROLE_ARN"], "--endpoint", url, "--ca-bundle", f"{T}/tls/ca.pem",
                    "--no-cache"]
        curl = ["curl", "-s", "-o", "/dev/null", "--cacert", f"{T}/tls/ca.pem", "-X", "POST",
                "-H", "Content-Type: application/json", "--data", '{"durationSeconds":3600}',
                f"{url}/sessions?profileArn=x&roleArn=y&trustAnchorArn=z"]
        run.compare("credential-process ML-DSA-65 vs curl (same TLS POST to the local endpoint)",
                    [("iamra credential-process --no-cache (ML-DSA-65)",
                      iamra("mldsa65/cert.pem", "mldsa65/key.seed.pem", "mldsa-ca/chain.pem")),
                     ("curl", curl)])
        run.compare("credential-process ML-DSA-87 vs curl",
                    [("iamra credential-process --no-cache (ML-DSA-87)",
                      iamra("mldsa87/cert.pem", "mldsa87/key.seed.pem", "mldsa-ca/chain.pem")),
                     ("curl", curl)])
        run.compare("credential-process RSA-2048 vs curl",
                    [("iamra credential-process --no-cache (RSA-2048)",
                      iamra("rsa2048/cert.pem", "rsa2048/key.pkcs8.pem", "chain.pem")),
                     ("curl", curl)])
    finally:
        ep.terminate()
        ep.wait()


if __name__ == "__main__":
    main()
