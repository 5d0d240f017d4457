//! Text for operators: error chains without repetition, URLs without credentials.

use std::error::Error;

/// An error and its sources as one line, `outer: inner: root`, leaving out a source whose
/// text the line already says (lapin and hyper repeat their source in their own message,
/// which would print "Connection refused (os error 111)" twice).
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The same for an `anyhow::Error`.
pub fn anyhow_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for s in e.chain() {
        let text = s.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A URL as it may be logged: the password replaced by `***` (the user name stays, it
/// says which account is used). A string that is not a URL is not shown at all.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// `host:port` of a URL (the port the scheme implies when none is written).
pub fn url_host(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (
            u.host_str(),
            u.port_or_known_default().or(match u.scheme() {
                "amqp" => Some(5672),
                "amqps" => Some(5671),
                _ => None,
            }),
        ) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => "(no host)".into(),
        },
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_say_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        #[derive(Debug, thiserror::Error)]
        #[error("IO error: {0}")]
        struct Wrap(#[source] std::io::Error);
        assert_eq!(error_chain(&Wrap(io)), "IO error: refused");
        let e = anyhow::Error::new(std::io::Error::other("root")).context("reading x");
        assert_eq!(anyhow_chain(&e), "reading x: root");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(redact_url("amqp://u:topsecret@h/%2f"), "amqp://u:***@h/%2f");
        assert_eq!(redact_url("http://h:5984"), "http://h:5984/");
        assert_eq!(redact_url("not a url topsecret"), "(not a URL)");
        assert_eq!(url_host("amqp://u:p@rabbit/%2f"), "rabbit:5672");
        assert_eq!(url_host("http://a:b@couch:5984"), "couch:5984");
    }
}
