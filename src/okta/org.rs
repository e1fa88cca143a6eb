//! The Okta org's base URL: the one origin the connector sends credentials to.

use std::fmt;

use url::{Host, Url};

/// Why an org URL was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidOrgUrl(String);

/// Whether plain `http://` to a loopback address is accepted (tests and the local demo only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Loopback {
    #[default]
    Refuse,
    AllowInsecure,
}

/// The Okta org's base URL, e.g. `https://acme.okta.com` (never with a trailing slash).
#[derive(Clone, PartialEq, Eq)]
pub struct OrgUrl {
    url: Url,
    text: String,
}

impl OrgUrl {
    /// Validates an org URL: https, a DNS host, no path, query, fragment or credentials.
    pub fn parse(text: &str, loopback: Loopback) -> Result<OrgUrl, InvalidOrgUrl> {
        let refuse = |problem: &str| InvalidOrgUrl(problem.to_owned());
        let url = Url::parse(text.trim()).map_err(|e| {
            refuse(&format!(
                "{e}; give the org URL as shown in the Okta admin console, e.g. https://acme.okta.com"
            ))
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse(
                "must not contain user credentials; remove the `user@` part",
            ));
        }
        if url.path() != "/" && !url.path().is_empty() {
            return Err(refuse(&format!(
                "must not have a path (found {:?}); use just the org, e.g. https://acme.okta.com",
                url.path()
            )));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refuse(
                "must not have a query or fragment; use just the org, e.g. https://acme.okta.com",
            ));
        }
        match (url.scheme(), url.host()) {
            ("https", Some(Host::Domain(domain))) => {
                if !domain.contains('.') || domain.ends_with('.') {
                    return Err(refuse(&format!(
                        "host {domain:?} is not a full domain name; use e.g. https://acme.okta.com"
                    )));
                }
            }
            ("https", _) => {
                return Err(refuse(
                    "must use the org's domain name, not an IP address; e.g. https://acme.okta.com",
                ))
            }
            // No port check: the url crate drops an explicit default :80, and http://127.0.0.1
            // is that same port anyway.
            ("http", Some(host)) if is_loopback(&host) => {
                if loopback == Loopback::Refuse {
                    return Err(refuse(
                        "plain http to a loopback address needs --allow-insecure-loopback (tests and demos only)",
                    ));
                }
            }
            ("http", _) => {
                return Err(refuse(
                    "must use https; http is only accepted for http://127.0.0.1:PORT or http://[::1]:PORT with --allow-insecure-loopback",
                ))
            }
            (scheme, _) => {
                return Err(refuse(&format!(
                    "scheme {scheme:?} is not supported; use https://your-org.okta.com"
                )))
            }
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(OrgUrl { url, text })
    }

    pub fn as_url(&self) -> &Url {
        &self.url
    }

    pub fn origin(&self) -> url::Origin {
        self.url.origin()
    }

    /// The org URL with `path` (starting with `/`) appended.
    pub fn join(&self, path: &str) -> Url {
        let mut url = self.url.clone();
        url.set_path(path);
        url
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
        Host::Domain(_) => false,
    }
}

impl fmt::Display for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for OrgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgUrl({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Loopback = Loopback::Refuse;
    const LOOPBACK: Loopback = Loopback::AllowInsecure;

    #[test]
    fn accepted_org_urls_lose_their_trailing_slash() {
        for (input, expected) in [
            ("https://acme.okta.com", "https://acme.okta.com"),
            ("https://acme.okta.com/", "https://acme.okta.com"),
            (
                "https://acme.oktapreview.com",
                "https://acme.oktapreview.com",
            ),
            ("https://acme.okta-emea.com/", "https://acme.okta-emea.com"),
            ("https://login.acme.example", "https://login.acme.example"),
        ] {
            assert_eq!(OrgUrl::parse(input, STRICT).unwrap().as_str(), expected);
        }
        assert_eq!(
            OrgUrl::parse("http://127.0.0.1:8080/", LOOPBACK)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            OrgUrl::parse("http://[::1]:9000", LOOPBACK)
                .unwrap()
                .as_str(),
            "http://[::1]:9000"
        );
    }

    #[test]
    fn loopback_on_the_default_http_port_is_accepted_with_the_flag() {
        // The url crate drops an explicit :80, which used to look like "no port" and was refused.
        for input in [
            "http://127.0.0.1:80",
            "http://127.0.0.1",
            "http://[::1]:80/",
        ] {
            let url = OrgUrl::parse(input, LOOPBACK).unwrap();
            assert_eq!(url.as_url().port_or_known_default(), Some(80), "{input}");
        }
        assert_eq!(
            OrgUrl::parse("http://127.0.0.1:80", LOOPBACK)
                .unwrap()
                .as_str(),
            "http://127.0.0.1"
        );
    }

    #[test]
    fn refused_org_urls_say_why() {
        for (input, opts, hint) in [
            ("http://acme.okta.com", STRICT, "must use https"),
            (
                "https://acme.okta.com/oauth2/default",
                STRICT,
                "must not have a path",
            ),
            ("https://acme.okta.com/?x=1", STRICT, "query"),
            ("https://acme.okta.com/#top", STRICT, "fragment"),
            ("https://admin:pw@acme.okta.com", STRICT, "credentials"),
            ("https://10.0.0.1", STRICT, "not an IP address"),
            ("https://localhost", STRICT, "not a full domain name"),
            ("ftp://acme.okta.com", STRICT, "not supported"),
            ("acme.okta.com", STRICT, "e.g. https://acme.okta.com"),
            ("http://127.0.0.1:8080", STRICT, "--allow-insecure-loopback"),
            ("http://127.0.0.1:80", STRICT, "--allow-insecure-loopback"),
            ("http://192.168.1.5:80", LOOPBACK, "must use https"),
        ] {
            let message = OrgUrl::parse(input, opts).unwrap_err().to_string();
            assert!(message.contains(hint), "{input}: {message}");
        }
    }

    #[test]
    fn org_urls_with_and_without_slash_have_one_origin() {
        let a = OrgUrl::parse("https://acme.okta.com/", STRICT).unwrap();
        let b = OrgUrl::parse("https://acme.okta.com", STRICT).unwrap();
        assert_eq!(a.origin(), b.origin());
        assert_eq!(
            a.join("/api/v1/logs").as_str(),
            "https://acme.okta.com/api/v1/logs"
        );
    }
}
