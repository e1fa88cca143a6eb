//! The `Link` header's `rel="next"` and the same-origin rule for following it.

use reqwest::header::HeaderMap;
use url::Url;

use super::{OktaError, OrgUrl};

/// Finds the `rel="next"` link among the response's Link headers (Okta also sends `rel="self"`).
/// A next link pointing anywhere but the org is refused: following it would send our token there.
pub(crate) fn next_link(headers: &HeaderMap, org: &OrgUrl) -> Result<Option<Url>, OktaError> {
    for value in headers.get_all(reqwest::header::LINK) {
        let text = value
            .to_str()
            .map_err(|_| OktaError::MalformedResponse("Link header is not ASCII text".into()))?;
        let links = parse_link_header::parse(text)
            .map_err(|e| OktaError::MalformedResponse(format!("unreadable Link header: {e:?}")))?;
        let next = links.iter().find(|(rel, _)| {
            rel.as_deref()
                .is_some_and(|rel| rel.split(' ').any(|r| r.eq_ignore_ascii_case("next")))
        });
        if let Some((_, link)) = next {
            let url = Url::parse(&link.raw_uri).map_err(|e| {
                OktaError::MalformedResponse(format!("next link is not a URL ({e})"))
            })?;
            check_same_origin(&url, org)?;
            return Ok(Some(url));
        }
    }
    Ok(None)
}

fn check_same_origin(url: &Url, org: &OrgUrl) -> Result<(), OktaError> {
    if url.origin() == org.origin() {
        Ok(())
    } else {
        Err(OktaError::ForeignNextLink {
            link: url.to_string(),
            org: org.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okta::Loopback;
    use reqwest::header::HeaderValue;

    fn org() -> OrgUrl {
        OrgUrl::parse("https://acme.okta.com", Loopback::Refuse).unwrap()
    }

    fn with_links(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("link", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn next_is_taken_from_separate_link_headers() {
        let headers = with_links(&[
            r#"<https://acme.okta.com/api/v1/logs?since=x&limit=5>; rel="self""#,
            r#"<https://acme.okta.com/api/v1/logs?after=abc&limit=5>; rel="next""#,
        ]);
        let next = next_link(&headers, &org()).unwrap().unwrap();
        assert_eq!(
            next.as_str(),
            "https://acme.okta.com/api/v1/logs?after=abc&limit=5"
        );
    }

    #[test]
    fn next_is_taken_from_a_combined_link_header() {
        let headers = with_links(&[
            r#"<https://acme.okta.com/api/v1/logs?a=1>; rel="self", <https://acme.okta.com/api/v1/logs?after=2>; rel="next""#,
        ]);
        let next = next_link(&headers, &org()).unwrap().unwrap();
        assert_eq!(next.query(), Some("after=2"));
    }

    #[test]
    fn self_only_means_no_next() {
        let headers = with_links(&[r#"<https://acme.okta.com/api/v1/logs?a=1>; rel="self""#]);
        assert_eq!(next_link(&headers, &org()).unwrap(), None);
        assert_eq!(next_link(&HeaderMap::new(), &org()).unwrap(), None);
    }

    #[test]
    fn foreign_next_link_is_refused() {
        for foreign in [
            "https://evil.example.com/api/v1/logs?after=1",
            "http://acme.okta.com/api/v1/logs?after=1",
            "https://acme.okta.com:8443/api/v1/logs?after=1",
        ] {
            let headers = with_links(&[&format!("<{foreign}>; rel=\"next\"")]);
            let err = next_link(&headers, &org()).unwrap_err();
            assert!(
                matches!(err, OktaError::ForeignNextLink { .. }),
                "{foreign}: {err}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_link_headers_never_panic_nor_leave_the_org(value in "[ -~]{0,200}") {
            if let Ok(header) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.append("link", header);
                if let Ok(Some(next)) = next_link(&headers, &org()) {
                    proptest::prop_assert_eq!(next.origin(), org().origin());
                }
            }
        }

        #[test]
        fn next_links_are_kept_only_on_the_org_origin(
            scheme in proptest::sample::select(vec!["https", "http"]),
            host in proptest::sample::select(vec!["acme.okta.com", "evil.example.com", "acme.okta.com.evil.io", "127.0.0.1"]),
            port in proptest::option::of(1u16..),
            path in "/[a-z0-9/]{0,20}",
            query in "[a-z0-9]{1,8}=[a-z0-9]{1,8}",
        ) {
            let link = match port {
                Some(port) => format!("{scheme}://{host}:{port}{path}?{query}"),
                None => format!("{scheme}://{host}{path}?{query}"),
            };
            let headers = with_links(&[&format!("<{link}>; rel=\"next\"")]);
            let same = scheme == "https" && host == "acme.okta.com" && port.is_none_or(|p| p == 443);
            match next_link(&headers, &org()) {
                Ok(Some(next)) => proptest::prop_assert!(same, "{next} was accepted"),
                Err(OktaError::ForeignNextLink { .. }) => proptest::prop_assert!(!same, "{link} was refused"),
                other => proptest::prop_assert!(false, "{link}: {other:?}"),
            }
        }
    }
}
