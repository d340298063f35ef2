//! `Set-Cookie` header values, written directly.
//!
//! The `cookie` crate's `Display` goes through the general formatter for every attribute and
//! formats `Expires` with a `time` format description, which allocates: the largest
//! single cost of a new session after the store itself (the figures are in
//! `docs/benchmarks.md`). [`set_cookie_header`] writes the same bytes from the same [`Cookie`], in one
//! buffer; the tests hold it to the `cookie` crate's output.

use std::fmt::Write as _;

use cookie::time::{Month, OffsetDateTime, UtcOffset, Weekday};
use cookie::{Cookie, SameSite};

/// `cookie` as a `Set-Cookie` header value: byte for byte what `cookie.to_string()` gives,
/// written without the general formatter.
///
/// ```
/// use session_core::cookie::Cookie;
/// use session_core::cookie::time::{Duration, OffsetDateTime};
///
/// let cookie = Cookie::build(("sid", "abc"))
///     .path("/")
///     .http_only(true)
///     .max_age(Duration::hours(1))
///     .expires(OffsetDateTime::UNIX_EPOCH + Duration::days(20_000))
///     .build();
/// assert_eq!(
///     session_core::set_cookie_header(&cookie),
///     "sid=abc; HttpOnly; Path=/; Max-Age=3600; Expires=Fri, 04 Oct 2024 00:00:00 GMT"
/// );
/// assert_eq!(session_core::set_cookie_header(&cookie), cookie.to_string());
/// ```
pub fn set_cookie_header(cookie: &Cookie<'_>) -> String {
    let expires = cookie
        .expires_datetime()
        .map(|time| time.to_offset(UtcOffset::UTC));
    // Four-digit years only; the rare others take the general path.
    if expires.is_some_and(|time| !(1000..=9999).contains(&time.year())) {
        return cookie.to_string();
    }
    let mut out = String::with_capacity(
        cookie.name().len()
            + cookie.value().len()
            + cookie.path().map_or(0, str::len)
            + cookie.domain().map_or(0, str::len)
            + 128,
    );
    out.push_str(cookie.name());
    out.push('=');
    out.push_str(cookie.value());
    if cookie.http_only() == Some(true) {
        out.push_str("; HttpOnly");
    }
    if let Some(same_site) = cookie.same_site() {
        out.push_str(match same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
    }
    if cookie.partitioned() == Some(true) {
        out.push_str("; Partitioned");
    }
    // The `cookie` crate's rule: browsers reject `SameSite=None` and `Partitioned` cookies
    // that are not `Secure`, unless `Secure` was set to false explicitly.
    if cookie.secure() == Some(true)
        || cookie.partitioned() == Some(true)
        || cookie.secure().is_none() && cookie.same_site() == Some(SameSite::None)
    {
        out.push_str("; Secure");
    }
    if let Some(path) = cookie.path() {
        out.push_str("; Path=");
        out.push_str(path);
    }
    if let Some(domain) = cookie.domain() {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    if let Some(max_age) = cookie.max_age() {
        // Writing an integer into a String cannot fail.
        let _ = write!(out, "; Max-Age={}", max_age.whole_seconds());
    }
    if let Some(time) = expires {
        out.push_str("; Expires=");
        push_imf_fixdate(&mut out, time);
    }
    out
}

/// `time` as `Wed, 21 Oct 2015 07:28:00 GMT` (RFC 9110's IMF-fixdate), for a UTC time
/// with a four-digit year.
fn push_imf_fixdate(out: &mut String, time: OffsetDateTime) {
    out.push_str(match time.weekday() {
        Weekday::Monday => "Mon, ",
        Weekday::Tuesday => "Tue, ",
        Weekday::Wednesday => "Wed, ",
        Weekday::Thursday => "Thu, ",
        Weekday::Friday => "Fri, ",
        Weekday::Saturday => "Sat, ",
        Weekday::Sunday => "Sun, ",
    });
    push_two_digits(out, time.day());
    out.push_str(match time.month() {
        Month::January => " Jan ",
        Month::February => " Feb ",
        Month::March => " Mar ",
        Month::April => " Apr ",
        Month::May => " May ",
        Month::June => " Jun ",
        Month::July => " Jul ",
        Month::August => " Aug ",
        Month::September => " Sep ",
        Month::October => " Oct ",
        Month::November => " Nov ",
        Month::December => " Dec ",
    });
    let year = time.year().unsigned_abs();
    push_two_digits(out, u8::try_from(year / 100 % 100).unwrap_or(0));
    push_two_digits(out, u8::try_from(year % 100).unwrap_or(0));
    out.push(' ');
    push_two_digits(out, time.hour());
    out.push(':');
    push_two_digits(out, time.minute());
    out.push(':');
    push_two_digits(out, time.second());
    out.push_str(" GMT");
}

fn push_two_digits(out: &mut String, value: u8) {
    out.push(char::from(b'0' + value / 10 % 10));
    out.push(char::from(b'0' + value % 10));
}

#[cfg(test)]
mod tests {
    use cookie::time::Duration;

    use super::*;

    fn expires_at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).expect("in range")
    }

    #[test]
    fn every_attribute_combination_matches_the_cookie_crate() {
        let same_sites = [
            None,
            Some(SameSite::Strict),
            Some(SameSite::Lax),
            Some(SameSite::None),
        ];
        let flags = [None, Some(false), Some(true)];
        let mut checked = 0;
        for same_site in same_sites {
            for secure in flags {
                for http_only in flags {
                    for partitioned in flags {
                        for (path, domain) in [(None, None), (Some("/app"), Some("example.com"))] {
                            for max_age in [None, Some(Duration::ZERO), Some(Duration::days(400))] {
                                let mut cookie = Cookie::new("sid", "v%2Bx.y");
                                cookie.set_same_site(same_site);
                                cookie.set_secure(secure);
                                cookie.set_http_only(http_only);
                                cookie.set_partitioned(partitioned);
                                if let Some(path) = path {
                                    cookie.set_path(path);
                                }
                                if let Some(domain) = domain {
                                    cookie.set_domain(domain);
                                }
                                if let Some(max_age) = max_age {
                                    cookie.set_max_age(max_age);
                                    cookie.set_expires(expires_at(1_700_000_000));
                                }
                                assert_eq!(set_cookie_header(&cookie), cookie.to_string());
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 3 * 3 * 3 * 2 * 3);
    }

    #[test]
    fn dates_across_every_four_digit_year_match_the_cookie_crate() {
        let first = expires_at(-30_610_224_000); // 1000-01-01
        let last = expires_at(253_402_300_799); // 9999-12-31 23:59:59
        let span = last.unix_timestamp() - first.unix_timestamp();
        // A fixed pseudo-random walk: every weekday, month, day and time of day shows up.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut moments = vec![first, last, OffsetDateTime::UNIX_EPOCH];
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let offset = i64::try_from(state >> 1).expect("63 bits") % span;
            moments.push(expires_at(first.unix_timestamp() + offset));
        }
        for moment in moments {
            let mut cookie = Cookie::new("thinkjs", "id");
            cookie.set_expires(moment);
            assert_eq!(set_cookie_header(&cookie), cookie.to_string(), "{moment}");
        }
    }

    #[test]
    fn other_years_and_offsets_take_the_general_path() {
        let india = UtcOffset::from_hms(5, 30, 0).expect("offset");
        for moment in [
            expires_at(-62_135_596_800),                // year 1
            expires_at(-30_610_224_001),                // 999-12-31 23:59:59
            expires_at(1_700_000_000).to_offset(india), // not UTC
        ] {
            let mut cookie = Cookie::new("sid", "x");
            cookie.set_expires(moment);
            assert_eq!(set_cookie_header(&cookie), cookie.to_string(), "{moment}");
        }
    }
}
