#!/usr/bin/env python3
"""Fails when a package in the workspace's dependency graph declares a rust-version above
the workspace's own (read from `cargo metadata` on the committed Cargo.lock)."""
import json
import subprocess
import sys


def version(text):
    parts = [int(part) for part in text.split(".")[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    declared = sys.argv[1]
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(meta["workspace_members"])
    used = {node["id"] for node in meta["resolve"]["nodes"]} - members
    # Packages that build only for other targets (wasm, windows) do not count here.
    host = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    host_triple = next(l.split()[1] for l in host.splitlines() if l.startswith("host:"))
    tree = subprocess.run(
        ["cargo", "tree", "--workspace", "--locked", "-e", "normal,build,dev",
         "--target", host_triple, "--prefix", "none", "--format", "{p}"],
        check=True, capture_output=True, text=True,
    ).stdout
    on_host = {line.split()[0] for line in tree.splitlines() if line.strip()}
    too_new = sorted(
        (p["rust_version"], p["name"], p["version"])
        for p in meta["packages"]
        if p["id"] in used
        and p["name"] in on_host
        and p.get("rust_version")
        and version(p["rust_version"]) > version(declared)
    )
    highest = max(
        (version(p["rust_version"]), p["name"]) for p in meta["packages"]
        if p["id"] in used and p["name"] in on_host and p.get("rust_version")
    )
    print(f"declared rust-version {declared}; highest in the graph: "
          f"{'.'.join(map(str, highest[0]))} ({highest[1]})")
    for rv, name, ver in too_new:
        print(f"  {name} {ver} needs rust {rv}", file=sys.stderr)
    sys.exit(1 if too_new else 0)


main()
