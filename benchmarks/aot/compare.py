#!/usr/bin/env python3
"""Native AOT binary against the JIT build of managedclip, interleaved and paired.

Each round runs both builds one after the other (the order alternating round by round), so the drift of a shared
machine hits both alike, and the ratio is taken within the round. Measured per run:
  - image embedding: `embed --image IMG x 16` with MANAGEDCLIP_TIMING=1, which reports the load time and the wall
    time of each pass of 8 images on stderr; pass 1 includes what a new process pays on its first pass (JIT
    compilation in the JIT build), pass 2 is the steady state;
  - start-up: the process wall time of `--version` (runtime start, no model) and of `tokenize` with the tiny model.

usage: compare.py --jit "dotnet path/ManagedClip.Cli.dll" --aot path/ManagedClip.Cli --model DIR --tiny DIR
                  --image IMG [--rounds 15]
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import time


def run(command, env=None):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return wall, done


def timing(stderr):
    for line in stderr.splitlines():
        if line.startswith('{"timing"'):
            return json.loads(line)["timing"]
    raise SystemExit("no timing line on stderr: " + stderr)


def summary(values):
    values = sorted(values)
    q = statistics.quantiles(values, n=4) if len(values) >= 4 else [values[0], statistics.median(values), values[-1]]
    return statistics.median(values), q[0], q[2], values[0], values[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jit", required=True)
    parser.add_argument("--aot", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tiny", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    builds = {"jit": shlex.split(args.jit), "aot": shlex.split(args.aot)}
    env = dict(os.environ, MANAGEDCLIP_TIMING="1")
    embed = ["embed", "--model", args.model, "--image"] + [args.image] * 16
    tokenize = ["tokenize", "--model", args.tiny, "this is a photo of adenocarcinoma histopathology"]
    samples = {(b, m): [] for b in builds for m in ("load", "pass1", "pass2", "version", "tokenize")}
    kernel = {}

    for b in builds:  # warm the page cache and the file system: not measured
        run(builds[b] + embed, env)
    for r in range(args.rounds):
        order = ["jit", "aot"] if r % 2 == 0 else ["aot", "jit"]
        for b in order:
            _, done = run(builds[b] + embed, env)
            t = timing(done.stderr)
            kernel[b] = t["kernel_path"]
            samples[(b, "load")].append(t["load_ms"])
            samples[(b, "pass1")].append(t["pass_ms"][0])
            samples[(b, "pass2")].append(t["pass_ms"][1])
            samples[(b, "version")].append(run(builds[b] + ["--version"])[0])
            samples[(b, "tokenize")].append(run(builds[b] + tokenize)[0])

    print(f"kernel path: JIT {kernel['jit']}, AOT {kernel['aot']}; {args.rounds} rounds")
    print("| measure | JIT median (IQR, min-max) ms | AOT median (IQR, min-max) ms | AOT / JIT, paired median (IQR) |")
    print("|---|---|---|---|")
    names = {"pass2": "8 images, steady pass", "pass1": "8 images, first pass of a process", "load": "model load",
             "version": "process: --version", "tokenize": "process: tokenize (tiny model)"}
    for m in ("pass2", "pass1", "load", "version", "tokenize"):
        jit, aot = samples[("jit", m)], samples[("aot", m)]
        ratios = [a / j for a, j in zip(aot, jit)]
        cells = []
        for values in (jit, aot):
            med, q1, q3, lo, hi = summary(values)
            cells.append(f"{med:.0f} ({q1:.0f}-{q3:.0f}, {lo:.0f}-{hi:.0f})")
        med, q1, q3, _, _ = summary(ratios)
        print(f"| {names[m]} | {cells[0]} | {cells[1]} | {med:.3f} ({q1:.3f}-{q3:.3f}) |")


if __name__ == "__main__":
    main()
