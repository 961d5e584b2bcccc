#!/usr/bin/env python3
"""Cold credential-process with ML-DSA keys vs curl's same TLS POST (bench/mldsa.sh).

Same method as bench/run.py (its `measure`/`compare`: RUNS interleaved rounds through
bench/rusage.c, medians): iamra credential-process --no-cache with the ML-DSA-65 leaf
(ML-DSA CA chain), the ML-DSA-87 leaf and the RSA-2048 leaf against curl making the same
TLS POST to the same local endpoint, all four in every round. Each round starts in a
second of its own (RUNS=60: a minute), so each key signs RUNS different messages: an
ML-DSA signature's cost depends on the message (the rejection loop), and a run inside a
few seconds would measure a few messages only.

BEFORE_BIN=DIR adds a row: the ML-DSA-65 call made by DIR/iamra (another build), in the
same rounds, for a before/after comparison. Every binary is measured from a copy
(run.installed), as installed.
"""
import os, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py: start_endpoint, curl_post, compare, BIN, T)

T, BIN = run.T, run.BIN


def main():
    env = run.arns()
    ep, url = run.start_endpoint(tempfile.mkdtemp())
    try:
        def iamra(cert, key, chain, bin_dir=BIN):
            return [os.path.join(bin_dir, "iamra"), "credential-process",
                    "--certificate", f"{T}/{cert}", "--private-key", f"{T}/{key}",
                    "--intermediates", f"{T}/{chain}",
                    "--trust-anchor-arn", env["TRUST_ANCHOR_ARN"], "--profile-arn", env["PROFILE_ARN"],
                    "--role-arn", env["ROLE_ARN"], "--endpoint", url, "--ca-bundle", f"{T}/tls/ca.pem",
                    "--no-cache"]
        curl = run.curl_post(url)
        rows = [("iamra credential-process --no-cache (ML-DSA-65)",
                 iamra("mldsa65/cert.pem", "mldsa65/key.seed.pem", "mldsa-ca/chain.pem")),
                ("iamra credential-process --no-cache (ML-DSA-87)",
                 iamra("mldsa87/cert.pem", "mldsa87/key.seed.pem", "mldsa-ca/chain.pem")),
                ("iamra credential-process --no-cache (RSA-2048)",
                 iamra("rsa2048/cert.pem", "rsa2048/key.pkcs8.pem", "chain.pem"))]
        before = run.installed(os.environ.get("BEFORE_BIN"))
        if before:
            rows.append((f"iamra credential-process --no-cache (ML-DSA-65), {os.environ['BEFORE_BIN']}",
                         iamra("mldsa65/cert.pem", "mldsa65/key.seed.pem", "mldsa-ca/chain.pem",
                               bin_dir=before)))
        # The floor comes last: every row is compared with it.
        rows.append(("curl", curl))
        # One table: every key type and curl in each round, each round in a second of
        # its own (60 rounds: 60 different messages per key).
        run.compare("credential-process ML-DSA-65, ML-DSA-87 and RSA-2048 vs curl "
                    "(same TLS POST to the local endpoint; one round per second)",
                    rows, spread=True)
    finally:
        ep.terminate()
        ep.wait()


if __name__ == "__main__":
    main()
