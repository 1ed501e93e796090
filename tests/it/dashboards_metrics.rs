//! The dashboards and alerting rules cannot drift from the code: every
//! `imagegate_*` series they name is rendered by [`Metrics`] before any
//! traffic, and every metric family the code exports appears on the
//! dashboard. (The Prometheus-backed test in `dashboards/tests/` checks the
//! same against a running server, plus labels and values; this one runs
//! with a plain `cargo test`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use imagegate::metrics::Metrics;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// The files that name metrics: the dashboard JSON files and the rules.
fn sources() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("dashboards/ is readable")
        .map(|e| e.expect("dashboards/ entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                || p.file_name().is_some_and(|n| n == "alerts.yaml")
        })
        .collect();
    files.sort();
    files
}

/// Every maximal `imagegate_[a-z0-9_]*` token of `text`.
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut out = BTreeSet::new();
    let mut i = 0;
    while let Some(found) = text[i..].find("imagegate_") {
        let start = i + found;
        let preceded = start > 0 && {
            let b = bytes[start - 1];
            b.is_ascii_alphanumeric() || b == b'_' || b == b':'
        };
        let mut end = start + "imagegate_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if !preceded {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// Series names rendered by a fresh registry (`name` or `name{...}`).
fn rendered_series() -> BTreeSet<String> {
    let text = String::from_utf8(Metrics::new().render()).expect("exposition is UTF-8");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

fn family(series: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| series.strip_suffix(s))
        .unwrap_or(series)
}

#[test]
fn every_metric_named_by_dashboards_and_rules_is_exported() {
    let exported = rendered_series();
    let files = sources();
    assert!(
        files.iter().any(|f| f.ends_with("imagegate.json")),
        "{files:?}"
    );
    let mut missing = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let named = metric_tokens(&text);
        assert!(!named.is_empty(), "{} names no metric", file.display());
        for name in named {
            if !exported.contains(&name) {
                missing.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(missing.is_empty(), "not exported: {missing:#?}");
}

#[test]
fn every_exported_family_is_on_the_dashboard() {
    let text = std::fs::read_to_string(dashboards_dir().join("imagegate.json")).unwrap();
    let used: BTreeSet<String> = metric_tokens(&text)
        .iter()
        .map(|s| family(s).to_owned())
        .collect();
    let exported: BTreeSet<String> = rendered_series()
        .iter()
        .map(|s| family(s).to_owned())
        .collect();
    let unused: Vec<_> = exported.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "exported but not on the dashboard: {unused:?}"
    );
}

#[test]
fn the_scanner_finds_names_and_ignores_prefixed_ones() {
    let found = metric_tokens(
        r#"sum(rate(imagegate_reviews_total{x="y"}[1m])) / xx_imagegate_other imagegate_build_info"#,
    );
    let want: BTreeSet<String> = ["imagegate_reviews_total", "imagegate_build_info"]
        .map(String::from)
        .into();
    assert_eq!(found, want);
}
