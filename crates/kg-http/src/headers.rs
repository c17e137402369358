//! Read access to a request's header lines, whichever code parsed them.

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

/// Read access to a request's header lines, so that one piece of code judges requests
/// whether hyper parsed them (a [`HeaderMap`]) or the fast lane did (httparse's lines).
pub trait Headers {
    /// Every value of the header `name` (a lowercase name), in the order received.
    fn values<'a>(&'a self, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]>;
}

impl Headers for HeaderMap {
    fn values<'a>(&'a self, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        self.get_all(name).iter().map(HeaderValue::as_bytes)
    }
}

impl Headers for [httparse::Header<'_>] {
    fn values<'a>(&'a self, name: &HeaderName) -> impl DoubleEndedIterator<Item = &'a [u8]> {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name.as_str()))
            .map(|h| h.value)
    }
}

/// A header value as text when it is visible ASCII (tabs allowed): the rule of
/// [`HeaderValue::to_str`], for header values that did not come through hyper.
pub fn visible(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}
