//! The console's cookies: their names and flags, decided in one place from the public
//! URL (see [`CookiePolicy::for_public_url`]).

use axum::http::HeaderValue;

/// The session cookie's name when the console is served over plain HTTP.
pub const SESSION_COOKIE: &str = "tributary_session";
/// The sign-in form's double-submit cookie over plain HTTP.
pub const SIGNIN_COOKIE: &str = "tributary_signin";
/// The session cookie's name under an `https://` public URL.
pub const SECURE_SESSION_COOKIE: &str = "__Host-tributary_session";
/// The sign-in form's double-submit cookie under an `https://` public URL.
pub const SECURE_SIGNIN_COOKIE: &str = "__Host-tributary_signin";

/// How the console names and flags its cookies.
///
/// Every cookie is `Path=/; HttpOnly; SameSite=Lax` with no `Domain`. When the public
/// URL is `https://` they are also `Secure` and carry the `__Host-` prefix: browsers
/// accept such a cookie only from a secure origin, with `Path=/` and without `Domain`,
/// so neither a plain-HTTP page nor a sibling subdomain can set or shadow the session.
/// Under `http://` (loopback use, the demo) they are neither, since browsers drop
/// `Secure` and `__Host-` cookies that did not come over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookiePolicy {
    secure: bool,
}

impl CookiePolicy {
    /// The one decision: `https://` (any case) means secure cookies.
    pub fn for_public_url(public_url: &str) -> Self {
        let scheme = public_url.trim_start().get(..8).unwrap_or_default();
        CookiePolicy {
            secure: scheme.eq_ignore_ascii_case("https://"),
        }
    }

    /// Whether cookies are `Secure` and `__Host-` named.
    pub fn is_secure(self) -> bool {
        self.secure
    }

    /// The session cookie's name.
    pub fn session_cookie(self) -> &'static str {
        if self.secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The sign-in form's double-submit cookie's name.
    pub fn signin_cookie(self) -> &'static str {
        if self.secure {
            SECURE_SIGNIN_COOKIE
        } else {
            SIGNIN_COOKIE
        }
    }

    /// A `Set-Cookie` value for cookie `name`; `max_age` zero clears it, `None` makes
    /// it last as long as the browser session.
    pub fn set_cookie(self, name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
        let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(age) = max_age {
            text.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            text.push_str("; Secure");
        }
        // Names and values are our own ASCII (hex tokens).
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_public_urls_get_secure_host_prefixed_cookies() {
        for url in [
            "https://tributary.example.com",
            "HTTPS://console.test:8443/",
        ] {
            let policy = CookiePolicy::for_public_url(url);
            assert!(policy.is_secure(), "{url}");
            assert_eq!(policy.session_cookie(), "__Host-tributary_session");
            let cookie = policy.set_cookie(policy.session_cookie(), "abc", None);
            assert_eq!(
                cookie.to_str().unwrap(),
                "__Host-tributary_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure"
            );
        }
    }

    #[test]
    fn plain_http_public_urls_get_plain_cookies() {
        for url in ["http://127.0.0.1:8080", "http://https.example.com", "", "h"] {
            let policy = CookiePolicy::for_public_url(url);
            assert!(!policy.is_secure(), "{url}");
            assert_eq!(policy.signin_cookie(), "tributary_signin");
            let cookie = policy.set_cookie(policy.signin_cookie(), "", Some(0));
            assert_eq!(
                cookie.to_str().unwrap(),
                "tributary_signin=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
            );
        }
    }
}
