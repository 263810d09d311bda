#!/usr/bin/env python3
"""Counts what each tool actually found, so that a broken setup cannot produce a fake ratio.

usage: count.py manifest.tsv mtasts.jsonl checkdmarc.json   (either output may be "-" to skip)

Prints one line per tool:
  <tool> domains=<results> enforce=<domains with a fetched, parsed enforce policy>
         starttls_domains=<domains whose every MX did STARTTLS with a valid certificate>
         starttls_hosts=<distinct MX names that did STARTTLS>
and the generator's expectations. Exits 1 if a tool's counts are below what the generator
guarantees (each good-enforce domain has a fetchable enforce policy and all-STARTTLS MX).
"""

import json
import sys


def expected(manifest):
    exp = {"domains": 0, "good_enforce": 0, "good_any": 0}
    with open(manifest) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            exp["domains"] += 1
            if parts[1] == "good-enforce":
                exp["good_enforce"] += 1
            if parts[1] in ("good-enforce", "good-testing"):
                exp["good_any"] += 1
    return exp


def mtasts(path):
    c = {"domains": 0, "enforce": 0, "starttls_domains": 0}
    hosts = set()
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            c["domains"] += 1
            if (r.get("policy") or {}).get("mode") == "enforce":
                c["enforce"] += 1
            mx = r.get("mx") or []
            ok = [m for m in mx if m.get("tls_ok") is True]
            for m in ok:
                hosts.add(m["host"])
            if mx and len(ok) == len(mx):
                c["starttls_domains"] += 1
    c["starttls_hosts"] = len(hosts)
    return c


def checkdmarc(path):
    with open(path) as f:
        results = json.load(f)
    if isinstance(results, dict):
        results = [results]
    c = {"domains": len(results), "enforce": 0, "starttls_domains": 0}
    hosts = set()
    for r in results:
        sts = r.get("mta_sts") or {}
        if sts.get("valid") and (sts.get("policy") or {}).get("mode") == "enforce":
            c["enforce"] += 1
        mx = (r.get("mx") or {}).get("hosts") or []
        ok = [h for h in mx if h.get("starttls") is True]
        for h in ok:
            hosts.add(h["hostname"])
        if mx and len(ok) == len(mx):
            c["starttls_domains"] += 1
    c["starttls_hosts"] = len(hosts)
    return c


def fmt(name, c):
    return (f"{name:<11} domains={c['domains']} enforce={c['enforce']} "
            f"starttls_domains={c['starttls_domains']} starttls_hosts={c['starttls_hosts']}")


def main():
    manifest, m_path, c_path = sys.argv[1:4]
    exp = expected(manifest)
    print(f"{'generator':<11} domains={exp['domains']} good_enforce={exp['good_enforce']} "
          f"good_enforce_or_testing={exp['good_any']}")
    bad = False
    for name, path, fn in (("mtasts", m_path, mtasts), ("checkdmarc", c_path, checkdmarc)):
        if path == "-":
            continue
        c = fn(path)
        print(fmt(name, c))
        if c["domains"] != exp["domains"]:
            print(f"FAIL: {name} reported {c['domains']} domains, expected {exp['domains']}")
            bad = True
        if c["enforce"] < exp["good_enforce"]:
            print(f"FAIL: {name} found fewer enforce policies than the good-enforce domains")
            bad = True
        if c["starttls_domains"] < exp["good_any"]:
            print(f"FAIL: {name} found fewer all-STARTTLS domains than the good domains")
            bad = True
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
