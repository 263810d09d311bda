#!/usr/bin/env python3
"""Writes N TLS-RPT report e-mails, generated from the repository's samples with varied
report ids, dates and counts, one .eml file each (RFC 8460 §5.3: multipart/report;
report-type=tlsrpt, an application/tlsrpt+gzip attachment, TLS-Report-Domain and
TLS-Report-Submitter headers). Deterministic for a seed.

    gen_reports.py N OUTDIR [SEED]
"""
import copy
import datetime
import email.message
import email.policy
import gzip
import json
import pathlib
import random
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "crates" / "proto" / "tests" / "data" / "tlsrpt"
TEMPLATES = [
    "mox__testdata__tlsreports__example_google_extracted.json",
    "mox__testdata__tlsreports__microsoft_extracted.json",
    "parsedmarc__smtp_tls__rfc8460.json",
    "parsedmarc__smtp_tls__smtp_tls.json",
]


def main():
    n = int(sys.argv[1])
    out = pathlib.Path(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    out.mkdir(parents=True, exist_ok=True)
    templates = [json.loads((SAMPLES / t).read_text()) for t in TEMPLATES]
    start = datetime.date(2026, 1, 1)
    for i in range(n):
        report = copy.deepcopy(templates[i % len(templates)])
        day = start + datetime.timedelta(days=i % 300)
        report["report-id"] = f"bench-{i:06d}-{rng.randrange(1 << 30)}"
        report["date-range"] = {
            "start-datetime": f"{day}T00:00:00Z",
            "end-datetime": f"{day}T23:59:59Z",
        }
        domain = f"d{i % 500:03d}.example"
        for p in report["policies"]:
            p["policy"]["policy-domain"] = domain
            p["summary"]["total-successful-session-count"] = rng.randrange(1, 5000)
        org = report["organization-name"]
        msg = email.message.EmailMessage(policy=email.policy.SMTP)
        msg["From"] = "noreply-smtp-tls-reporting@reporter.example"
        msg["To"] = f"tlsrpt@{domain}"
        msg["Subject"] = f"Report Domain: {domain} Submitter: reporter.example Report-ID: <{report['report-id']}>"
        msg["Date"] = email.utils.format_datetime(datetime.datetime(day.year, day.month, day.day, 6, tzinfo=datetime.timezone.utc))
        msg["Message-ID"] = f"<{report['report-id']}@reporter.example>"
        msg["TLS-Report-Domain"] = domain
        msg["TLS-Report-Submitter"] = "reporter.example"
        msg.set_content(f"This is an aggregate TLS report from {org}.\n")
        msg.add_attachment(
            gzip.compress(json.dumps(report).encode(), mtime=0),
            maintype="application",
            subtype="tlsrpt+gzip",
            filename=f"reporter.example!{domain}!{day}!{i}.json.gz",
        )
        # multipart/report; report-type=tlsrpt, as RFC 8460 §5.3 asks.
        msg.replace_header("Content-Type", msg.get("Content-Type").replace("multipart/mixed", "multipart/report") + "; report-type=tlsrpt")
        (out / f"{i:06d}.eml").write_bytes(msg.as_bytes())


if __name__ == "__main__":
    main()
