//! Where a redirect sends a browser: the path and query it asked the nameserver for, under a live
//! node's base URL, so `<nameserver>/groups/7` lands on `<node>/groups/7`. Pure.
//!
//! The path is appended exactly as the browser sent it, percent-encoding included: decoding and
//! re-encoding could turn an encoded `/` or `?` into a real one and so change which page it names.
//! Only paths that cannot move the target off the node are taken; the result is parsed again and must
//! have the node's origin, so a path can never make the nameserver an open redirector.

use url::Url;

use crate::leases::BaseUrl;

/// Why a requested path is not carried along; the browser gets 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedPath {
    #[error("the path must start with a single `/`")]
    NotAbsolutePath,
    /// `//host` and `/\host` are read as another host by browsers when they stand alone.
    #[error("the path must not start with `//` or `/\\`")]
    NetworkPath,
    #[error("the path may hold printable ASCII only, without `\\` or `#`")]
    Character,
    #[error("the path would leave the node's origin")]
    OtherOrigin,
}

/// `requested` (an origin-form request target: path and optional query) under `base`.
pub fn location(base: &BaseUrl, requested: &str) -> Result<String, RefusedPath> {
    let mut bytes = requested.bytes();
    if bytes.next() != Some(b'/') {
        return Err(RefusedPath::NotAbsolutePath);
    }
    if matches!(bytes.next(), Some(b'/' | b'\\')) {
        return Err(RefusedPath::NetworkPath);
    }
    // Browsers read `\` as `/` and drop tabs and newlines, so either could rebuild a network path
    // after the check above; a fragment belongs to the browser, which keeps its own across redirects.
    if !requested
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && byte != b'\\' && byte != b'#')
    {
        return Err(RefusedPath::Character);
    }
    let target = format!("{}{requested}", base.as_str());
    let same_origin = match (Url::parse(base.as_str()), Url::parse(&target)) {
        (Ok(base), Ok(target)) => base.origin() == target.origin(),
        _ => false,
    };
    if !same_origin {
        return Err(RefusedPath::OtherOrigin);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> BaseUrl {
        BaseUrl::parse("http://127.0.0.1:8081").expect("valid test URL")
    }

    #[test]
    fn the_root_is_the_nodes_front_page() {
        assert_eq!(location(&node(), "/"), Ok("http://127.0.0.1:8081/".into()));
    }

    #[test]
    fn path_and_query_are_kept_byte_for_byte() {
        for requested in [
            "/groups/7",
            "/groups/7?after=12&limit=50",
            "/direct/ada%230218",
            "/groups/a%2Fb?q=%3Fx%26y%3D1",
            "/search?q=caf%C3%A9+au+lait",
            "/?welcome=1",
            "/groups/7/",
            "/a/./b/../c",
        ] {
            assert_eq!(
                location(&node(), requested),
                Ok(format!("http://127.0.0.1:8081{requested}")),
                "{requested}"
            );
        }
    }

    #[test]
    fn a_base_url_with_a_path_keeps_it_in_front() {
        let base = BaseUrl::parse("https://chat.example.org/chat/").expect("valid");
        assert_eq!(
            location(&base, "/groups/7?x=1"),
            Ok("https://chat.example.org/chat/groups/7?x=1".into())
        );
    }

    #[test]
    fn paths_that_could_name_another_host_are_refused() {
        for (requested, why) in [
            ("", RefusedPath::NotAbsolutePath),
            ("groups/7", RefusedPath::NotAbsolutePath),
            ("@evil.example/", RefusedPath::NotAbsolutePath),
            (".evil.example/", RefusedPath::NotAbsolutePath),
            (":80@evil.example/", RefusedPath::NotAbsolutePath),
            ("http://evil.example/", RefusedPath::NotAbsolutePath),
            ("*", RefusedPath::NotAbsolutePath),
            ("//evil.example/", RefusedPath::NetworkPath),
            ("//evil.example", RefusedPath::NetworkPath),
            ("///evil.example", RefusedPath::NetworkPath),
            ("/\\evil.example", RefusedPath::NetworkPath),
            ("/\\/evil.example", RefusedPath::NetworkPath),
            ("/a\\b", RefusedPath::Character),
            ("/\t/evil.example", RefusedPath::Character),
            ("/\n/evil.example", RefusedPath::Character),
            ("/a b", RefusedPath::Character),
            ("/a#b", RefusedPath::Character),
            ("/caf\u{e9}", RefusedPath::Character),
            ("/a\0b", RefusedPath::Character),
        ] {
            assert_eq!(location(&node(), requested), Err(why), "{requested:?}");
        }
    }
}
