//! Redirect URIs: what may be registered, and when a requested one matches.
//!
//! RFC 9700 §4.1.3: exact string match, except that RFC 8252 §7.3 makes a loopback IP
//! literal (`http://127.0.0.1/...`, `http://[::1]/...`) match on any port, because a CLI
//! listens on whatever port is free. `localhost` is not a loopback literal (RFC 8252 §8.3:
//! it may resolve elsewhere) and matches exactly. Anchors get this wrong both ways: Dex
//! (#4836) and fosite (#873) refuse the ports, others accept `localhost` with any port.

/// Whether `uri` may be registered: absolute, no fragment, and https, loopback http, or a
/// private-use scheme (RFC 8252 §7.1, reverse-DNS with a dot).
pub fn check_registered(uri: &str) -> Result<(), &'static str> {
    if uri.len() > 2000 || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("it must be at most 2000 printable characters without spaces");
    }
    if uri.contains('#') {
        return Err("it may not have a fragment");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("it must be an absolute URI");
    };
    match scheme {
        "https" => {
            if !rest.starts_with("//") || authority(rest).is_empty() {
                return Err("it must name a host");
            }
            Ok(())
        }
        "http" => match loopback(uri) {
            Some(_) => Ok(()),
            None => Err("http is only for the loopback addresses 127.0.0.1 and [::1]"),
        },
        s if s.contains('.')
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+')
            }) =>
        {
            Ok(())
        }
        _ => Err("its scheme must be https, loopback http, or a private-use scheme with a dot"),
    }
}

fn authority(rest: &str) -> &str {
    let after = &rest[2..];
    let end = after.find(['/', '?']).unwrap_or(after.len());
    &after[..end]
}

/// For `http://127.0.0.1[:port]/path?q` or `http://[::1][:port]/path?q`: the URI without its
/// port (`http://127.0.0.1/path?q`), so two of them compare port-blind.
fn loopback(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (host, after) = if let Some(r) = rest.strip_prefix("[::1]") {
        ("[::1]", r)
    } else if let Some(r) = rest.strip_prefix("127.0.0.1") {
        ("127.0.0.1", r)
    } else {
        return None;
    };
    let after = match after.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            let port: u32 = p[..digits].parse().ok()?;
            if !(1..=65535).contains(&port) {
                return None;
            }
            &p[digits..]
        }
        None => after,
    };
    if !(after.is_empty() || after.starts_with('/') || after.starts_with('?')) {
        return None;
    }
    let path = if after.is_empty() { "/" } else { after };
    Some(format!("http://{host}{path}"))
}

/// Whether the requested `uri` matches one registered.
pub fn matches(registered: &[String], uri: &str) -> bool {
    let port_blind = loopback(uri);
    registered.iter().any(|r| {
        r == uri
            || port_blind
                .as_ref()
                .is_some_and(|p| loopback(r).as_ref() == Some(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_literals_match_any_port_and_nothing_else_is_loosened() {
        let reg = vec![
            "http://127.0.0.1/callback".to_owned(),
            "http://[::1]/callback".to_owned(),
            "https://app.example/cb".to_owned(),
            "http://localhost/cb".to_owned(),
        ];
        for ok in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53122/callback",
            "http://[::1]:8000/callback",
            "https://app.example/cb",
            "http://localhost/cb",
        ] {
            assert!(matches(&reg, ok), "{ok}");
        }
        for bad in [
            "http://127.0.0.1:53122/callback/../evil",
            "http://127.0.0.1:53122/other",
            "http://127.0.0.1.evil.example/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1@evil.example/callback",
            "https://app.example:8443/cb",
            "https://app.example/cb?x=1",
            "https://app.example/cb/",
            "https://APP.example/cb",
            "http://localhost:8000/cb",
            "http://[::1]:8000/callback#x",
        ] {
            assert!(!matches(&reg, bad), "{bad}");
        }
    }

    #[test]
    fn only_safe_redirects_can_be_registered() {
        for ok in [
            "https://app.example/cb",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth",
        ] {
            assert_eq!(check_registered(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "http://localhost/cb",
            "https://app.example/cb#frag",
            "javascript:alert(1)",
            "data:text/html,x",
            "/relative",
            "https:///nohost",
            "https://app.example/a b",
        ] {
            assert!(check_registered(bad).is_err(), "{bad}");
        }
    }
}
