//! When to renew.
//!
//! The norm everywhere (tailscale, certbot >= 4.1, lego v5, cert-manager, step, Caddy) is to
//! renew once a third of the lifetime remains, or half for lifetimes under 10 days, so that a
//! failed attempt leaves time for several retries before expiry.

use time::{Duration, OffsetDateTime};

/// The moment renewal becomes due for a certificate valid from `not_before` to `not_after`.
///
/// With `renew_before`, that long before `not_after`. A `renew_before` of the whole lifetime
/// or more would renew on every run (and for ACME, hit rate limits), so like cert-manager we
/// then fall back to the default rule instead.
pub fn renew_at(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    renew_before: Option<Duration>,
) -> OffsetDateTime {
    let lifetime = not_after - not_before;
    match renew_before {
        Some(before) if before > Duration::ZERO && before < lifetime => not_after - before,
        _ if lifetime < Duration::days(10) => not_after - lifetime / 2,
        _ => not_after - lifetime / 3,
    }
}

/// Whether a certificate valid from `not_before` to `not_after` should be renewed at `now`;
/// see [`renew_at`].
pub fn renewal_due(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    now: OffsetDateTime,
    renew_before: Option<Duration>,
) -> bool {
    now >= renew_at(not_before, not_after, renew_before)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn renewal_table() {
        let start = datetime!(2026-01-01 00:00 UTC);
        // (lifetime, renew_before, now offset from start, due?)
        let table: &[(Duration, Option<Duration>, Duration, bool)] = &[
            // 90 days: due at day 60.
            (Duration::days(90), None, Duration::days(59), false),
            (Duration::days(90), None, Duration::days(60), true),
            (Duration::days(90), None, Duration::days(100), true),
            // 6 days (under 10): due at half, day 3.
            (Duration::days(6), None, Duration::hours(71), false),
            (Duration::days(6), None, Duration::hours(72), true),
            // 160-hour Let's Encrypt short-lived profile: due after 80 hours.
            (Duration::hours(160), None, Duration::hours(79), false),
            (Duration::hours(160), None, Duration::hours(80), true),
            // Explicit renew_before of 7 days on 90 days: due at day 83.
            (
                Duration::days(90),
                Some(Duration::days(7)),
                Duration::days(82),
                false,
            ),
            (
                Duration::days(90),
                Some(Duration::days(7)),
                Duration::days(83),
                true,
            ),
            // renew_before >= lifetime falls back to the 1/3 rule instead of always renewing.
            (
                Duration::days(90),
                Some(Duration::days(90)),
                Duration::days(1),
                false,
            ),
            (
                Duration::days(90),
                Some(Duration::days(365)),
                Duration::days(60),
                true,
            ),
            // Zero or negative renew_before is ignored too.
            (
                Duration::days(90),
                Some(Duration::ZERO),
                Duration::days(60),
                true,
            ),
        ];
        for (lifetime, before, offset, expected) in table {
            let due = renewal_due(start, start + *lifetime, start + *offset, *before);
            assert_eq!(
                due, *expected,
                "lifetime {lifetime}, renew_before {before:?}, now +{offset}"
            );
        }
    }

    #[test]
    fn renew_at_for_a_year() {
        let start = datetime!(2026-01-01 00:00 UTC);
        let end = start + Duration::days(366);
        assert_eq!(renew_at(start, end, None), start + Duration::days(244));
    }
}
