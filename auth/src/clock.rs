//! Clock-skew checks on `Date` / `x-date` (spec §2.5).
//!
//! A date more than [`MAX_SKEW_SECS`] in the past is `RequestExpired`; more
//! than that in the future, or unparsable, is `InvalidHeader`. Exactly
//! 300 s either way is accepted. The current time is always passed in, so
//! tests and replays are deterministic.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::AuthError;

/// The allowed distance between the request's date and the server clock.
pub const MAX_SKEW_SECS: i64 = 300;

/// Seconds since the Unix epoch (negative before it), saturating.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Checks one date header value (`name` is used in messages) against `now`.
pub fn check_date(name: &str, value: &str, now: SystemTime) -> Result<(), AuthError> {
    let label = if name.eq_ignore_ascii_case("date") {
        "Date"
    } else {
        name
    };
    let date = httpdate::parse_http_date(value.trim())
        .map_err(|_| AuthError::InvalidHeader(format!("{label} header is invalid")))?;
    let skew = unix_secs(now).saturating_sub(unix_secs(date));
    if skew > MAX_SKEW_SECS {
        return Err(AuthError::RequestExpired {
            date: value.to_owned(),
        });
    }
    if skew < -MAX_SKEW_SECS {
        return Err(AuthError::InvalidHeader(format!(
            "Invalid Signature Authorization header: clock skew of {}s was greater than {MAX_SKEW_SECS}s",
            skew.unsigned_abs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DATE: &str = "Sun, 22 Nov 2026 01:33:03 GMT";

    fn at(offset: i64) -> SystemTime {
        let base = httpdate::parse_http_date(DATE).unwrap();
        if offset >= 0 {
            base + Duration::from_secs(offset.unsigned_abs())
        } else {
            base - Duration::from_secs(offset.unsigned_abs())
        }
    }

    #[test]
    fn window_boundaries() {
        for ok in [-300, -1, 0, 1, 300] {
            assert_eq!(check_date("date", DATE, at(ok)), Ok(()), "offset {ok}");
        }
        // Server clock 301 s ahead of the date: the request is too old.
        let err = check_date("date", DATE, at(301)).unwrap_err();
        assert_eq!(err.code(), "RequestExpired");
        assert_eq!(err.message(), format!("Date header {DATE} is too old"));
        // Date 301 s ahead of the server: future skew.
        let err = check_date("date", DATE, at(-301)).unwrap_err();
        assert_eq!(err.code(), "InvalidHeader");
        assert_eq!(
            err.message(),
            "Invalid Signature Authorization header: clock skew of 301s was greater than 300s"
        );
    }

    #[test]
    fn unparsable_dates_are_invalid_header() {
        for bad in [
            "",
            "yesterday",
            "Sun, 32 Nov 2026 01:33:03 GMT",
            "1700000000",
        ] {
            let err = check_date("date", bad, at(0)).unwrap_err();
            assert_eq!(err.message(), "Date header is invalid", "{bad:?}");
        }
    }

    #[test]
    fn extreme_clocks_do_not_overflow() {
        assert!(check_date("date", DATE, UNIX_EPOCH).is_err());
        assert!(
            check_date(
                "date",
                DATE,
                UNIX_EPOCH - Duration::from_secs(u32::MAX.into())
            )
            .is_err()
        );
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
