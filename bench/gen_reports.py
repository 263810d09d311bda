#!/usr/bin/env python3
"""Writes N TLS-RPT report e-mails, generated from the repository's samples with varied
report ids, dates and counts, one .eml file each (RFC 8460 §5.3: multipart/report;
report-type=tlsrpt, an application/tlsrpt+gzip attachment, TLS-Report-Domain and
TLS-Report-Submitter headers). Deterministic for a seed.

    gen_reports.py N OUTDIR [SEED [FIRST]]

FIRST (default 0) numbers the messages FIRST..FIRST+N-1, so batches written one after another
are distinct reports.
"""
import base64
import copy
import datetime
import email.utils
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
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    for i in range(first, first + n):
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
        rid = report["report-id"]
        attachment = base64.encodebytes(gzip.compress(json.dumps(report).encode(), mtime=0))
        boundary = f"=============={rng.randrange(10**18):019d}=="
        date = email.utils.format_datetime(
            datetime.datetime(day.year, day.month, day.day, 6, tzinfo=datetime.timezone.utc))
        # RFC 8460 §5.3: multipart/report; report-type=tlsrpt, a human part and the report as
        # an application/tlsrpt+gzip attachment (written as a template: the email package
        # takes 2 ms a message, too slow for a million).
        msg = (
            "From: noreply-smtp-tls-reporting@reporter.example\r\n"
            f"To: tlsrpt@{domain}\r\n"
            f"Subject: Report Domain: {domain} Submitter: reporter.example Report-ID:\r\n <{rid}>\r\n"
            f"Date: {date}\r\n"
            f"Message-ID: <{rid}@reporter.example>\r\n"
            f"TLS-Report-Domain: {domain}\r\n"
            "TLS-Report-Submitter: reporter.example\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type="tlsrpt";\r\n boundary="{boundary}"\r\n'
            "\r\n"
            f"--{boundary}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: 7bit\r\n\r\n"
            f"This is an aggregate TLS report from {org}.\r\n\r\n"
            f"--{boundary}\r\n"
            "Content-Type: application/tlsrpt+gzip\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment;\r\n"
            f' filename="reporter.example!{domain}!{day}!{i}.json.gz"\r\n'
            "\r\n"
        ).encode() + attachment.replace(b"\n", b"\r\n") + f"\r\n--{boundary}--\r\n".encode()
        (out / f"{i:06d}.eml").write_bytes(msg)


if __name__ == "__main__":
    main()
