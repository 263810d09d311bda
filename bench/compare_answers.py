#!/usr/bin/env python3
"""Compares two socketmap daemons' answers key by key (bench/resolver-vs-pmsr.sh).

    compare_answers.py MANIFEST MTASTS.tsv PMSR.tsv

MANIFEST is testworld's `domain<TAB>profile<TAB>mx-pool`; the answer files are
`socketmap-load --print` output (`key<TAB>reply`). `match=` lists are compared as sets
(postfix-mta-sts-resolver builds its list from a Python set, so its order varies).

Every difference gets a category. Expected, RFC-motivated ones:

- wildcard-form: both answer `OK secure`; postfix-mta-sts-resolver turns `mx: *.example.net`
  into `match=.example.net`, which Postfix < 3.10 matches at any depth; mtasts lists the live
  MX names the pattern matches one label deep (RFC 8461 section 4.1).
- txt-invalid-id: `id=2026-01-01` is not `1*32(ALPHA / DIGIT)` (RFC 8461 section 3.1), so
  the record is invalid and the sender "MUST assume the recipient domain does not have an
  available MTA-STS Policy"; postfix-mta-sts-resolver does not check the id's syntax and
  fetches the policy.

Anything else is printed as UNEXPLAINED, and the exit status is 3.
"""

import collections
import sys


def load(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            key, _, reply = line.partition("\t")
            out[key] = reply
    return out


def normal(reply):
    """The reply with its match= list as a sorted set."""
    words = reply.split(" ")
    out = []
    for w in words:
        if w.startswith("match="):
            names = sorted(set(w[len("match="):].split(":")))
            w = "match=" + ":".join(names)
        out.append(w)
    return " ".join(out)


def matches(reply):
    for w in reply.split(" "):
        if w.startswith("match="):
            return w[len("match="):].split(":")
    return []


def wildcard_form(ours, theirs):
    """pmsr's `.suffix` entries cover exactly our names that are one label under them."""
    if not (ours.startswith("OK secure") and theirs.startswith("OK secure")):
        return False
    o, t = set(matches(ours)), set(matches(theirs))
    if not any(n.startswith(".") for n in t):
        return False
    exact = {n for n in t if not n.startswith(".")}
    suffixes = {n for n in t if n.startswith(".")}
    for name in o - exact:
        head, _, tail = name.partition(".")
        if not head or "." + tail not in suffixes:
            return False
    rest_ours = {n for n in o if n in exact}
    if rest_ours != exact:
        return False
    # Ours without servername= etc. must agree on the other words.
    strip = lambda r: [w for w in r.split(" ") if not w.startswith("match=")]  # noqa: E731
    return strip(ours) == strip(theirs)


def main():
    manifest_path, ours_path, theirs_path = sys.argv[1:4]
    profile = {}
    with open(manifest_path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                profile[parts[0]] = parts[1]
    ours, theirs = load(ours_path), load(theirs_path)
    keys = list(ours)
    if set(keys) != set(theirs):
        print("FAIL: the two answer files have different keys")
        return 3
    equal = 0
    categories = collections.Counter()
    unexplained = []
    by_profile = collections.defaultdict(collections.Counter)
    for k in keys:
        o, t = ours[k], theirs[k]
        p = profile.get(k, "?")
        by_profile[p][o.split(" ")[0] + "/" + t.split(" ")[0]] += 1
        if normal(o) == normal(t):
            equal += 1
            continue
        if wildcard_form(o, t):
            categories["wildcard-form (expected: RFC 8461 4.1)"] += 1
        elif p == "broken:txt-invalid-id" and o.startswith("NOTFOUND") and t.startswith("OK"):
            categories["txt-invalid-id (expected: RFC 8461 3.1, pmsr does not check the id)"] += 1
        else:
            categories["UNEXPLAINED"] += 1
            unexplained.append((k, p, o, t))
    n = len(keys)
    print(f"answers: {n} keys, {equal} equal ({100.0 * equal / n:.1f} %), {n - equal} different")
    for c, count in sorted(categories.items()):
        print(f"  {count:6d}  {c}")
    print("replies by profile (mtasts/pmsr first word):")
    for p in sorted(by_profile):
        cells = ", ".join(f"{k} {v}" for k, v in sorted(by_profile[p].items()))
        print(f"  {p:32s} {cells}")
    for k, p, o, t in unexplained[:20]:
        print(f"UNEXPLAINED {k} ({p})\n  mtasts: {o}\n  pmsr:   {t}")
    return 3 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
