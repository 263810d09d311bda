//! `mtasts report summary --html FILE`: one self-contained page per run of the command, per
//! domain the sessions over time (successful vs failed), the failures over time stacked by
//! result type, and the failure breakdowns, as server-rendered SVG from an askama template
//! (`templates/summary.html`; escaped by the template engine, no script, nothing loaded from
//! the network).
//!
//! The view model is built here from the store's rows; the geometry is computed here, so the
//! template only places what it is given.

use std::collections::BTreeMap;

use askama::Template;
use mtasts_store::reports::{
    DayRow, FailureDay, FailureGroup, FailureKey, ReportStore, ReportStoreError,
};

const DAY: i64 = 86_400;
const CHART_W: f64 = 720.0;
const CHART_H: f64 = 150.0;
const LEFT: f64 = 56.0;
const BREAKDOWN_W: f64 = 260.0;
/// Days drawn at most (the most recent ones).
pub const MAX_DAYS: usize = 366;
/// Rows per failure breakdown.
pub const BREAKDOWN_ROWS: usize = 8;

/// Colours of the result types, in the order of RFC 8460 §4.3; others share the last.
const RESULT_COLOURS: [(&str, &str); 12] = [
    ("starttls-not-supported", "#d23f3f"),
    ("certificate-host-mismatch", "#e0782c"),
    ("certificate-expired", "#c9a227"),
    ("certificate-not-trusted", "#8e5bd0"),
    ("validation-failure", "#2f6fd6"),
    ("tlsa-invalid", "#0f8f8f"),
    ("dnssec-invalid", "#5a7d2a"),
    ("dane-required", "#9c3d74"),
    ("sts-policy-fetch-error", "#b0522d"),
    ("sts-policy-invalid", "#6b4f2b"),
    ("sts-webpki-invalid", "#3e5c8a"),
    ("", "#7a7f87"),
];

fn colour(result_type: &str) -> &'static str {
    RESULT_COLOURS
        .iter()
        .find(|(name, _)| *name == result_type)
        .map_or(RESULT_COLOURS[11].1, |(_, c)| c)
}

/// A UTC day as `YYYY-MM-DD`, from unix seconds.
pub fn day_text(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_else(|_| day.to_string())
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// One coloured piece of a bar.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Top, in SVG units.
    pub y: String,
    /// Height.
    pub h: String,
    /// Fill.
    pub colour: &'static str,
    /// Tooltip.
    pub title: String,
}

/// One day's bar.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Left edge.
    pub x: String,
    /// Width.
    pub w: String,
    /// Stacked pieces, bottom first.
    pub segments: Vec<Segment>,
}

/// A bar chart over days.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Accessible title.
    pub title: String,
    /// Width of the SVG.
    pub width: String,
    /// Height of the SVG (the plot plus the axis labels).
    pub height: String,
    /// The plot's bottom.
    pub base: String,
    /// The largest value, as the top label.
    pub max_label: String,
    /// Bars.
    pub bars: Vec<Bar>,
    /// First and last day, under the axis.
    pub first_day: String,
    /// Last day.
    pub last_day: String,
    /// Legend: (colour, label).
    pub legend: Vec<(&'static str, String)>,
}

/// One row of a breakdown.
#[derive(Debug, Clone)]
pub struct BreakdownRow {
    /// What.
    pub label: String,
    /// How many failed sessions.
    pub value: i64,
    /// Bar width.
    pub w: String,
}

/// Failures by one field.
#[derive(Debug, Clone)]
pub struct Breakdown {
    /// Heading.
    pub title: &'static str,
    /// Rows, largest first.
    pub rows: Vec<BreakdownRow>,
}

/// One domain's section.
#[derive(Debug, Clone)]
pub struct DomainView {
    /// The policy domain.
    pub name: String,
    /// Successful sessions.
    pub successful: i64,
    /// Failed sessions.
    pub failed: i64,
    /// Failed share, "0.12%".
    pub failed_pct: String,
    /// Reports counted.
    pub reports: i64,
    /// Sessions per day.
    pub sessions: Chart,
    /// Failures per day by result type (none when nothing failed).
    pub failures: Option<Chart>,
    /// Failure breakdowns.
    pub breakdowns: Vec<Breakdown>,
}

/// The pages' style sheet (inline: the pages load nothing from the network).
pub const CSS: &str = include_str!("page.css");

/// One domain's section (charts and breakdowns), also embedded by `serve`'s dashboard.
#[derive(Template)]
#[template(path = "domain_section.html")]
struct DomainSection<'a> {
    d: &'a DomainView,
    index: usize,
}

impl DomainView {
    /// This domain's section as an HTML fragment (`index` makes its element id unique on a
    /// page); style it with [`CSS`].
    pub fn section_html(&self, index: usize) -> String {
        DomainSection { d: self, index }
            .render()
            .unwrap_or_else(|e| format!("<p>cannot render the charts: {e}</p>"))
    }
}

/// The page.
#[derive(Template, Debug)]
#[template(path = "summary.html")]
pub struct SummaryPage {
    /// The style sheet ([`CSS`]).
    pub css: &'static str,
    /// Page title.
    pub title: String,
    /// When generated (UTC), as given by the caller.
    pub generated: String,
    /// First day covered.
    pub since: String,
    /// One section per domain.
    pub domains: Vec<DomainView>,
}

/// The breakdowns a caller may give, in display order.
pub const BREAKDOWN_TITLES: [&str; 4] =
    ["by result type", "by sending organisation", "by receiving MX", "by receiving IP"];

fn chart(
    title: String,
    days: &[i64],
    stacks: &BTreeMap<i64, Vec<(f64, &'static str, String)>>,
    legend: Vec<(&'static str, String)>,
) -> Chart {
    let max = stacks.values().map(|s| s.iter().map(|(v, _, _)| v).sum::<f64>()).fold(0.0, f64::max);
    let slot = (CHART_W - LEFT) / days.len().max(1) as f64;
    let w = (slot * 0.8).clamp(1.0, 24.0);
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let mut top = CHART_H;
            let segments = stacks
                .get(day)
                .map(|stack| {
                    stack
                        .iter()
                        .filter(|(v, _, _)| *v > 0.0)
                        .map(|(v, colour, label)| {
                            let h =
                                if max > 0.0 { (v / max * (CHART_H - 10.0)).max(1.0) } else { 0.0 };
                            top -= h;
                            Segment {
                                y: n(top),
                                h: n(h),
                                colour,
                                title: format!("{}: {label} {v}", day_text(*day)),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            Bar { x: n(LEFT + i as f64 * slot + (slot - w) / 2.0), w: n(w), segments }
        })
        .collect();
    Chart {
        title,
        width: n(CHART_W),
        height: n(CHART_H + 22.0),
        base: n(CHART_H),
        max_label: format!("{max}"),
        bars,
        first_day: days.first().map(|d| day_text(*d)).unwrap_or_default(),
        last_day: days.last().map(|d| day_text(*d)).unwrap_or_default(),
        legend,
    }
}

/// Builds the page. `breakdowns[i]` are the failure groups for [`BREAKDOWN_TITLES`]`[i]`.
pub fn build(
    title: &str,
    generated: &str,
    since: i64,
    days: &[DayRow],
    failure_days: &[FailureDay],
    breakdowns: &[Vec<FailureGroup>; 4],
) -> SummaryPage {
    let mut names: Vec<&str> = days.iter().map(|d| d.domain.as_str()).collect();
    names.dedup();
    let domains = names
        .into_iter()
        .map(|name| {
            let mine: Vec<&DayRow> = days.iter().filter(|d| d.domain == name).collect();
            let first = mine.iter().map(|d| d.day).min().unwrap_or(since);
            let last = mine.iter().map(|d| d.day).max().unwrap_or(since);
            let span: Vec<i64> =
                (0..).map(|i| first + i * DAY).take_while(|d| *d <= last).collect();
            let span: Vec<i64> = span[span.len().saturating_sub(MAX_DAYS)..].to_vec();
            let successful: i64 = mine.iter().map(|d| d.successful).sum();
            let failed: i64 = mine.iter().map(|d| d.failed).sum();
            let total = successful + failed;
            let mut sessions = BTreeMap::new();
            for d in &mine {
                sessions.insert(
                    d.day,
                    vec![
                        (d.successful as f64, "#2e9e48", "successful".to_owned()),
                        (d.failed as f64, "#d23f3f", "failed".to_owned()),
                    ],
                );
            }
            let sessions_chart = chart(
                format!("{name}: sessions per UTC day"),
                &span,
                &sessions,
                vec![("#2e9e48", "successful".into()), ("#d23f3f", "failed".into())],
            );
            let mut by_type: BTreeMap<i64, Vec<(f64, &'static str, String)>> = BTreeMap::new();
            let mut kinds: Vec<String> = Vec::new();
            for f in failure_days.iter().filter(|f| f.domain == name) {
                by_type.entry(f.day).or_default().push((
                    f.failed as f64,
                    colour(&f.result_type),
                    f.result_type.clone(),
                ));
                if !kinds.contains(&f.result_type) {
                    kinds.push(f.result_type.clone());
                }
            }
            kinds.sort();
            let failures = (!by_type.is_empty()).then(|| {
                chart(
                    format!("{name}: failed sessions per UTC day, by result type"),
                    &span,
                    &by_type,
                    kinds.iter().map(|k| (colour(k), k.clone())).collect(),
                )
            });
            let breakdowns = BREAKDOWN_TITLES
                .iter()
                .zip(breakdowns.iter())
                .filter_map(|(title, groups)| {
                    let rows: Vec<&FailureGroup> =
                        groups.iter().filter(|g| g.domain == name).take(BREAKDOWN_ROWS).collect();
                    let max = rows.iter().map(|g| g.failed).max()?;
                    Some(Breakdown {
                        title,
                        rows: rows
                            .iter()
                            .map(|g| BreakdownRow {
                                label: g.key.clone(),
                                value: g.failed,
                                w: n(if max > 0 {
                                    g.failed as f64 / max as f64 * BREAKDOWN_W
                                } else {
                                    0.0
                                }),
                            })
                            .collect(),
                    })
                })
                .collect();
            DomainView {
                name: if name.is_empty() {
                    "(no policy domain)".to_owned()
                } else {
                    name.to_owned()
                },
                successful,
                failed,
                failed_pct: if total > 0 {
                    format!("{:.2}%", 100.0 * failed as f64 / total as f64)
                } else {
                    "0%".into()
                },
                reports: mine.iter().map(|d| d.reports).sum(),
                sessions: sessions_chart,
                failures,
                breakdowns,
            }
        })
        .collect();
    SummaryPage {
        css: CSS,
        title: title.to_owned(),
        generated: generated.to_owned(),
        since: day_text(since),
        domains,
    }
}

/// The page for `domain` (or every domain) from `store`: reports from `since` (unix seconds,
/// a UTC midnight) on.
pub async fn load(
    store: &ReportStore,
    domain: Option<&str>,
    title: &str,
    generated: &str,
    since: i64,
) -> Result<SummaryPage, ReportStoreError> {
    let keys = [
        FailureKey::ResultType,
        FailureKey::Organization,
        FailureKey::ReceivingMx,
        FailureKey::ReceivingIp,
    ];
    let mut breakdowns: [Vec<FailureGroup>; 4] = Default::default();
    for (slot, key) in breakdowns.iter_mut().zip(keys) {
        *slot = store.failures(key, domain, since).await?;
    }
    Ok(build(
        title,
        generated,
        since,
        &store.days(domain, since).await?,
        &store.failure_days(domain, since).await?,
        &breakdowns,
    ))
}

impl SummaryPage {
    /// The HTML document.
    pub fn html(&self) -> Result<String, askama::Error> {
        self.render()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn day(domain: &str, day: i64, ok: i64, failed: i64) -> DayRow {
        DayRow { domain: domain.into(), day: day * DAY, successful: ok, failed, reports: 1 }
    }

    #[test]
    fn the_page_escapes_and_draws_every_day() {
        let days = vec![day("<b>x</b>.example", 100, 90, 10), day("<b>x</b>.example", 102, 50, 0)];
        let failures = vec![FailureDay {
            domain: "<b>x</b>.example".into(),
            day: 100 * DAY,
            result_type: "certificate-expired".into(),
            failed: 10,
        }];
        let groups = [
            vec![FailureGroup {
                domain: "<b>x</b>.example".into(),
                key: "certificate-expired".into(),
                failed: 10,
            }],
            vec![],
            vec![],
            vec![],
        ];
        let page =
            build("TLS-RPT <summary>", "2026-12-03T10:00:00Z", 99 * DAY, &days, &failures, &groups);
        assert_eq!(
            page.domains[0].sessions.bars.len(),
            3,
            "the day without a report is drawn empty"
        );
        let html = page.html().unwrap();
        assert!(!html.contains("<b>x</b>"), "escaped");
        assert!(
            html.contains("&#60;b&#62;x&#60;/b&#62;.example")
                || html.contains("&lt;b&gt;x&lt;/b&gt;.example")
        );
        assert!(html.contains("certificate-expired"));
        assert!(!html.contains("<script"), "no script");
        assert!(!html.contains("http://") && !html.contains("https://"), "loads nothing");
    }
}
