//! A strict reader of Prometheus's text exposition format (0.0.4), for the metrics tests of the
//! origin and (through `#[path]`) the bridge. Written here because the `prometheus-parse` crate
//! cuts label values at the first `}`, and axum's route templates (`/{token_id}`) hold one.
//!
//! Each sample line becomes one [`Sample`]: a histogram's `_bucket`, `_sum` and `_count` lines
//! are series of their own, as PromQL sees them. `# HELP` / `# TYPE` lines are checked to name
//! a metric and skipped.

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of `text`, or the first line that is not valid exposition.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if let Some("HELP" | "TYPE") = words.next() {
                let name = words
                    .next()
                    .ok_or_else(|| format!("no metric in {line:?}"))?;
                if !is_name(name) {
                    return Err(format!("bad metric name in {line:?}"));
                }
            }
            continue;
        }
        samples.push(sample(line).map_err(|why| format!("{why} in {line:?}"))?);
    }
    Ok(samples)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn sample(line: &str) -> Result<Sample, &'static str> {
    let end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..end];
    if !is_name(name) {
        return Err("bad metric name");
    }
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(mut s) = rest.strip_prefix('{') {
        // Pairs `name="value"` separated by `,` until `}`; values may hold anything escaped.
        loop {
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=').ok_or("label without =")?;
            let key = &s[..eq];
            if !is_name(key) || key.contains(':') {
                return Err("bad label name");
            }
            let body = s[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = body.char_indices();
            let close = loop {
                match chars.next() {
                    None => return Err("unterminated label value"),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("bad escape"),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.insert(key.to_owned(), value).is_some() {
                return Err("repeated label");
            }
            s = &body[close + 1..];
            if let Some(after) = s.strip_prefix(',') {
                s = after;
            } else if !s.starts_with('}') {
                return Err("expected , or } after a label");
            }
        }
    }
    finish(name, labels, rest)
}

fn finish(
    name: &str,
    labels: BTreeMap<String, String>,
    rest: &str,
) -> Result<Sample, &'static str> {
    let mut fields = rest.split_whitespace();
    let value = match fields.next().ok_or("no value")? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| "bad value")?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| "bad timestamp")?;
    }
    if fields.next().is_some() {
        return Err("trailing text");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[test]
fn label_values_may_hold_braces_commas_quotes_and_escapes() {
    let text = "# HELP a_total Things.\n# TYPE a_total counter\n\
                a_total{route=\"/x/{id}\",q=\"a,b=\\\"c\\\\\"} 3\n\
                b 1.5e3 1700000000000\n\
                h_bucket{le=\"+Inf\"} 7\n";
    let samples = parse(text).expect("valid");
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0].name, "a_total");
    assert_eq!(samples[0].labels["route"], "/x/{id}");
    assert_eq!(samples[0].labels["q"], "a,b=\"c\\");
    assert_eq!(samples[0].value, 3.0);
    assert_eq!((samples[1].name.as_str(), samples[1].value), ("b", 1500.0));
    assert_eq!(samples[2].labels["le"], "+Inf");
    for bad in [
        "a{x=\"1\" 1",
        "a{x=1} 1",
        "a 1 2 3",
        "a{x=\"1\",x=\"2\"} 1",
        "1a 1",
        "a{} x",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

/// One parsed scrape.
pub struct Metrics(pub Vec<Sample>);

impl Metrics {
    pub async fn scrape(url: &str) -> Self {
        let r = reqwest::get(url).await.expect("scrape");
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = r.text().await.expect("body");
        Self(parse(&text).expect("Prometheus text format"))
    }

    /// The value of the one series of `metric` with exactly these labels (0 if absent). A
    /// histogram's `_count` and `_sum` are series of their own.
    pub fn get(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .0
            .iter()
            .filter(|s| s.name == metric)
            .filter(|s| {
                s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .collect();
        assert!(matching.len() <= 1, "{metric} {labels:?}: {matching:?}");
        matching.first().copied().unwrap_or(0.0)
    }

    /// Every value the label `label` takes in `metric`'s series.
    pub fn label_values(&self, metric: &str, label: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|s| s.name == metric)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect()
    }
}
