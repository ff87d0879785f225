//! OData query options as Graph reads them: `$select`, `$top`, `$filter`, `$skiptoken`,
//! `$deltatoken`, … (percent-encoded `%24` or not), and the `Prefer` header.

use axum::http::HeaderMap;
use std::collections::HashMap;

/// A request's query options, keys lowercased (`$select`, `$top`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    values: HashMap<String, String>,
}

impl QueryOptions {
    pub fn parse(query: Option<&str>) -> Self {
        let values = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
            .collect();
        QueryOptions { values }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `$select` as a list of property names (`None` when absent or empty).
    pub fn select(&self) -> Option<Vec<String>> {
        let list: Vec<String> = self
            .get("$select")?
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        (!list.is_empty()).then_some(list)
    }
}

/// Whether `select` (when present) names `property`, case-insensitively.
pub fn selects(select: Option<&[String]>, property: &str) -> bool {
    select.is_some_and(|list| list.iter().any(|p| p.eq_ignore_ascii_case(property)))
}

/// The `Prefer` header's preferences, lowercased names: `odata.maxpagesize=10`,
/// `IdType="ImmutableId"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Preferences {
    pub max_page_size: Option<usize>,
    pub immutable_ids: bool,
}

impl Preferences {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut preferences = Preferences::default();
        for value in headers.get_all("prefer") {
            let Ok(text) = value.to_str() else { continue };
            for part in text.split(',') {
                let Some((name, value)) = part.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match name.trim().to_ascii_lowercase().as_str() {
                    "odata.maxpagesize" => preferences.max_page_size = value.parse().ok(),
                    "idtype" => {
                        preferences.immutable_ids = value.eq_ignore_ascii_case("ImmutableId")
                    }
                    _ => {}
                }
            }
        }
        preferences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_decode_percent_encoded_dollar_and_lists() {
        let q = QueryOptions::parse(Some("%24select=id,%20mail&$TOP=5"));
        assert_eq!(q.select(), Some(vec!["id".to_string(), "mail".to_string()]));
        assert_eq!(q.get("$top"), Some("5"));
    }

    #[test]
    fn preferences_read_page_size_and_id_type() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "prefer",
            "odata.maxpagesize=3, IdType=\"ImmutableId\""
                .parse()
                .unwrap(),
        );
        let p = Preferences::from_headers(&headers);
        assert_eq!(p.max_page_size, Some(3));
        assert!(p.immutable_ids);
    }
}
