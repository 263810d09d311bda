-- The parsed report is not kept beside the report as received: it is the parser's output of
-- raw_json, rebuilt when a report is shown. Half the bytes per report on disk and in the
-- write-ahead log.
ALTER TABLE tlsrpt_reports DROP COLUMN report_json;
