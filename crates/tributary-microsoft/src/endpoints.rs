//! Where Microsoft lives: the operator's choice for the whole server, never a tenant's.
//! Defaults to Microsoft's global cloud; [`MicrosoftEndpoints::from_base_url`] points
//! both the identity platform and Graph at one root, as the emulator serves them.

use reqwest::Url;

/// The identity platform of Microsoft's global cloud.
pub const MICROSOFT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Microsoft Graph v1.0.
pub const MICROSOFT_GRAPH_BASE: &str = "https://graph.microsoft.com/v1.0";
/// The one scope app-only tokens ask for: every application permission granted to the
/// app on Graph. It names Graph's resource whatever address Graph is reached at.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// The operator's endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicrosoftEndpoints {
    /// The identity platform root; a tenant's token endpoint is
    /// `{authority_host}/{tenant}/oauth2/v2.0/token`.
    pub authority_host: String,
    /// Graph's root, up to and including `/v1.0`.
    pub graph_base: String,
}

impl Default for MicrosoftEndpoints {
    fn default() -> Self {
        MicrosoftEndpoints {
            authority_host: MICROSOFT_AUTHORITY_HOST.to_string(),
            graph_base: MICROSOFT_GRAPH_BASE.to_string(),
        }
    }
}

impl MicrosoftEndpoints {
    /// Everything under one root (`https://127.0.0.1:8443` for the emulator).
    pub fn from_base_url(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        MicrosoftEndpoints {
            authority_host: base.to_string(),
            graph_base: format!("{base}/v1.0"),
        }
    }
}

/// An endpoint that is not an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {name} endpoint {value:?} is not an http(s) URL")]
pub struct EndpointError {
    pub name: &'static str,
    pub value: String,
}

/// The endpoints, parsed once.
#[derive(Debug, Clone)]
pub(crate) struct ParsedEndpoints {
    pub authority_host: Url,
    pub graph_base: Url,
}

impl ParsedEndpoints {
    pub fn parse(endpoints: &MicrosoftEndpoints) -> Result<Self, EndpointError> {
        let parse = |name: &'static str, value: &str| {
            Url::parse(value)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base())
                .filter(|url| url.query().is_none() && url.fragment().is_none())
                .ok_or_else(|| EndpointError {
                    name,
                    value: value.to_string(),
                })
        };
        Ok(ParsedEndpoints {
            authority_host: parse("authority_host", &endpoints.authority_host)?,
            graph_base: parse("graph_base", &endpoints.graph_base)?,
        })
    }

    /// The tenant's token endpoint. The tenant is one escaped path segment, so whatever
    /// a tenant typed cannot change the host or the path around it.
    pub fn token_url(&self, tenant: &str) -> Url {
        join(
            &self.authority_host,
            &[tenant.trim(), "oauth2", "v2.0", "token"],
        )
    }

    pub fn graph(&self, segments: &[&str]) -> Url {
        join(&self.graph_base, segments)
    }

    /// Whether a link Graph handed out (`@odata.nextLink`, `@odata.deltaLink`, a
    /// stored cursor) points under the configured Graph root: the token is only ever
    /// sent there, whatever a stored cursor says.
    pub fn is_graph_link(&self, link: &Url) -> bool {
        let base = &self.graph_base;
        let prefix = base.path().trim_end_matches('/');
        link.scheme() == base.scheme()
            && link.host_str() == base.host_str()
            && link.port_or_known_default() == base.port_or_known_default()
            && link
                .path()
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// `base` with `segments` appended, each percent-encoded as one path segment.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_derive_from_one_root() {
        let endpoints = MicrosoftEndpoints::from_base_url("https://127.0.0.1:9/");
        let parsed = ParsedEndpoints::parse(&endpoints).unwrap();
        assert_eq!(
            parsed.token_url("t-1").as_str(),
            "https://127.0.0.1:9/t-1/oauth2/v2.0/token"
        );
        assert_eq!(
            parsed.graph(&["users"]).as_str(),
            "https://127.0.0.1:9/v1.0/users"
        );
        let microsoft = ParsedEndpoints::parse(&MicrosoftEndpoints::default()).unwrap();
        assert_eq!(
            microsoft.token_url("contoso.onmicrosoft.com").as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn a_tenant_cannot_leave_its_path_segment() {
        let parsed = ParsedEndpoints::parse(&MicrosoftEndpoints::default()).unwrap();
        let url = parsed.token_url("evil.example/x?y#z");
        assert_eq!(url.host_str(), Some("login.microsoftonline.com"));
        assert!(
            url.path().starts_with("/evil.example%2Fx%3Fy%23z/oauth2"),
            "{url}"
        );
        assert_eq!(url.query(), None);
    }

    #[test]
    fn bad_endpoints_are_named() {
        let endpoints = MicrosoftEndpoints {
            graph_base: "graph.microsoft.com".to_string(),
            ..MicrosoftEndpoints::default()
        };
        assert_eq!(
            ParsedEndpoints::parse(&endpoints).unwrap_err().name,
            "graph_base"
        );
    }

    #[test]
    fn only_links_under_the_graph_root_are_followed() {
        let parsed = ParsedEndpoints::parse(&MicrosoftEndpoints::default()).unwrap();
        let ok = |s: &str| parsed.is_graph_link(&Url::parse(s).unwrap());
        assert!(ok(
            "https://graph.microsoft.com/v1.0/users/x/mailFolders/inbox/messages/delta?$deltatoken=a"
        ));
        assert!(ok(
            "https://GRAPH.microsoft.com:443/v1.0/users?$skiptoken=b"
        ));
        assert!(!ok("http://graph.microsoft.com/v1.0/users"));
        assert!(!ok("https://graph.microsoft.com.evil.test/v1.0/users"));
        assert!(!ok("https://graph.microsoft.com/beta/users"));
        assert!(!ok("https://graph.microsoft.com/v1.0x/users"));
        assert!(!ok("https://graph.microsoft.com:8443/v1.0/users"));
    }
}
