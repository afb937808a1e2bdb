//! Calendar arithmetic and GNU `date` formatting in UTC, C locale.
//!
//! Times are `(seconds since the epoch, nanoseconds)`; the calendar is the
//! proleptic Gregorian one (days-from-civil conversion after Howard
//! Hinnant). `format` implements the GNU conversion specifiers with the
//! `- _ 0 ^ #` flags and field widths; an unknown specifier is an error,
//! never output that silently differs.

use thiserror::Error;

/// Why a format or date string was refused.
#[derive(Debug, Error, PartialEq)]
pub enum DateError {
    #[error("unsupported conversion specifier %{0} in format")]
    Spec(String),
    #[error(
        "invalid or unsupported date '{0}' (supported: @SECONDS, YYYY-MM-DD[ HH:MM[:SS[.frac]]], ISO 8601 with T, Z or ±HH:MM, now)"
    )]
    Date(String),
}

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tm {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday.
    pub wday: u32,
    /// 0-based day of the year.
    pub yday: u32,
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

/// Breaks epoch seconds into UTC calendar fields.
pub fn gmtime(secs: i64) -> Tm {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (year, month, day) = civil_from_days(days);
    let yday = (days - days_from_civil(year, 1, 1)) as u32;
    Tm {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        min: (rem % 3600 / 60) as u32,
        sec: (rem % 60) as u32,
        wday: (days + 4).rem_euclid(7) as u32,
        yday,
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// ISO 8601 week-based year and week number.
fn iso_week(tm: &Tm) -> (i64, u32) {
    let wday = (tm.wday + 6) % 7; // Monday = 0
    let yday = tm.yday as i64;
    let mut year = tm.year;
    let mut week = (yday - wday as i64 + 10) / 7;
    if week < 1 {
        year -= 1;
        let prev_days = if is_leap(year) { 366 } else { 365 };
        week = (yday + prev_days - wday as i64 + 10) / 7;
    } else {
        let days = if is_leap(year) { 366 } else { 365 };
        if week == 53 && yday - wday as i64 + 3 >= days {
            year += 1;
            week = 1;
        }
    }
    (year, week as u32)
}

/// Formats `(secs, nanos)` with a GNU `date +FORMAT` string, in UTC.
pub fn format(fmt: &str, secs: i64, nanos: u32) -> Result<String, DateError> {
    let tm = gmtime(secs);
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut pad: Option<char> = None;
        let mut upper = false;
        while let Some(&f) = chars.get(i) {
            match f {
                '-' | '_' | '0' => pad = Some(f),
                '^' | '#' => upper = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = String::new();
        while let Some(d) = chars.get(i).filter(|c| c.is_ascii_digit()) {
            width.push(*d);
            i += 1;
        }
        let width: Option<usize> = width.parse().ok();
        let mut colons = 0;
        while chars.get(i) == Some(&':') {
            colons += 1;
            i += 1;
        }
        let Some(&spec) = chars.get(i) else {
            // A trailing lone '%' is printed as is.
            out.extend(&chars[start..]);
            break;
        };
        i += 1;
        // (text, is numeric, default pad char, default width)
        let num = |v: i64, w: usize| (v.to_string(), true, '0', w);
        let spc = |v: i64, w: usize| (v.to_string(), true, ' ', w);
        let txt = |s: String| (s, false, ' ', 0);
        let hour12 = if tm.hour.is_multiple_of(12) {
            12
        } else {
            tm.hour % 12
        };
        let (text, numeric, def_pad, def_width) = match (spec, colons) {
            ('%', 0) => txt("%".into()),
            ('a', 0) => txt(DAYS[tm.wday as usize][..3].into()),
            ('A', 0) => txt(DAYS[tm.wday as usize].into()),
            ('b' | 'h', 0) => txt(MONTHS[tm.month as usize - 1][..3].into()),
            ('B', 0) => txt(MONTHS[tm.month as usize - 1].into()),
            ('c', 0) => txt(format("%a %b %e %H:%M:%S %Y", secs, nanos)?),
            ('C', 0) => num(tm.year.div_euclid(100), 2),
            ('d', 0) => num(tm.day.into(), 2),
            ('D', 0) => txt(format("%m/%d/%y", secs, nanos)?),
            ('e', 0) => spc(tm.day.into(), 2),
            ('F', 0) => txt(format("%Y-%m-%d", secs, nanos)?),
            ('g', 0) => num(iso_week(&tm).0.rem_euclid(100), 2),
            ('G', 0) => num(iso_week(&tm).0, 4),
            ('H', 0) => num(tm.hour.into(), 2),
            ('I', 0) => num(hour12.into(), 2),
            ('j', 0) => num(i64::from(tm.yday) + 1, 3),
            ('k', 0) => spc(tm.hour.into(), 2),
            ('l', 0) => spc(hour12.into(), 2),
            ('m', 0) => num(tm.month.into(), 2),
            ('M', 0) => num(tm.min.into(), 2),
            ('n', 0) => txt("\n".into()),
            ('N', 0) => {
                // %N pads/truncates to the width (default 9 digits).
                let digits = format!("{nanos:09}");
                let w = width.unwrap_or(9).min(9);
                txt(digits[..w].to_string())
            }
            ('p', 0) => txt(if tm.hour < 12 { "AM" } else { "PM" }.into()),
            ('P', 0) => txt(if tm.hour < 12 { "am" } else { "pm" }.into()),
            ('r', 0) => txt(format("%I:%M:%S %p", secs, nanos)?),
            ('R', 0) => txt(format("%H:%M", secs, nanos)?),
            ('s', 0) => num(secs, 1),
            ('S', 0) => num(tm.sec.into(), 2),
            ('t', 0) => txt("\t".into()),
            ('T', 0) => txt(format("%H:%M:%S", secs, nanos)?),
            ('u', 0) => num(if tm.wday == 0 { 7 } else { tm.wday.into() }, 1),
            ('U', 0) => num(((tm.yday + 7 - tm.wday) / 7).into(), 2),
            ('V', 0) => num(iso_week(&tm).1.into(), 2),
            ('w', 0) => num(tm.wday.into(), 1),
            ('W', 0) => num(((tm.yday + 7 - (tm.wday + 6) % 7) / 7).into(), 2),
            ('x', 0) => txt(format("%m/%d/%y", secs, nanos)?),
            ('X', 0) => txt(format("%H:%M:%S", secs, nanos)?),
            ('y', 0) => num(tm.year.rem_euclid(100), 2),
            ('Y', 0) => num(tm.year, 1),
            ('z', 0) => txt("+0000".into()),
            ('z', 1) => txt("+00:00".into()),
            ('z', 2) => txt("+00:00:00".into()),
            ('z', 3) => txt("+00".into()),
            ('Z', 0) => txt("UTC".into()),
            _ => return Err(DateError::Spec(chars[start + 1..i].iter().collect())),
        };
        let text = if upper { text.to_uppercase() } else { text };
        let (pad_char, w) = match pad {
            Some('-') => (None, 0),
            Some('_') => (Some(' '), width.unwrap_or(def_width)),
            Some('0') => (Some('0'), width.unwrap_or(def_width)),
            _ => (Some(def_pad), width.unwrap_or(def_width)),
        };
        let text = if (numeric && pad == Some('-')) || spec == 'N' {
            text
        } else if let Some(pc) = pad_char {
            let len = text.chars().count();
            if len < w {
                let fill: String =
                    std::iter::repeat_n(if numeric || pad.is_some() { pc } else { ' ' }, w - len)
                        .collect();
                if let Some(digits) = text.strip_prefix('-').filter(|_| numeric && pc == '0') {
                    format!("-{fill}{digits}")
                } else {
                    fill + &text
                }
            } else {
                text
            }
        } else {
            text
        };
        out.push_str(&text);
    }
    Ok(out)
}

fn num_in<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parses the `date -d` strings we support into `(secs, nanos)`.
pub fn parse_date(s: &str, now: (i64, u32)) -> Result<(i64, u32), DateError> {
    let bad = || DateError::Date(s.to_string());
    let t = s.trim();
    if t.is_empty() || t == "now" {
        return if t.is_empty() {
            Ok((
                days_from_civil(gmtime(now.0).year, gmtime(now.0).month, gmtime(now.0).day) * 86400,
                0,
            ))
        } else {
            Ok(now)
        };
    }
    if let Some(n) = t.strip_prefix('@') {
        let (int, frac) = n.split_once('.').unwrap_or((n, ""));
        let neg = int.starts_with('-');
        let digits = int.trim_start_matches(['-', '+']);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let secs: i64 = digits.parse().map_err(|_| bad())?;
        let mut f = frac.chars().take(9).collect::<String>();
        while f.len() < 9 {
            f.push('0');
        }
        let nanos: u32 = f.parse().map_err(|_| bad())?;
        return Ok(if neg {
            if nanos == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000_000 - nanos)
            }
        } else {
            (secs, nanos)
        });
    }
    // Date part.
    let (date, rest) = t.split_at(t.find(['T', ' ', 't']).unwrap_or(t.len()));
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        num_in(y, 4).ok_or_else(bad)?,
        num_in(m, 2).ok_or_else(bad)?,
        num_in(d, 2).ok_or_else(bad)?,
    );
    let month_days = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > month_days[m as usize - 1] {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * 86400;
    let mut nanos = 0;
    let rest = rest.trim_start_matches(['T', 't', ' ']);
    if !rest.is_empty() {
        // Zone suffix: Z, UTC, ±HH:MM, ±HHMM, ±HH.
        let (clock, offset) =
            if let Some(c) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix('z')) {
                (c.trim_end(), 0)
            } else if let Some(c) = rest.strip_suffix("UTC") {
                (c.trim_end(), 0)
            } else if let Some(pos) = rest.rfind(['+', '-']) {
                let (c, z) = rest.split_at(pos);
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let z = z[1..].replace(':', "");
                let (hh, mm): (i64, i64) = match z.len() {
                    2 => (num_in(&z, 2).ok_or_else(bad)?, 0),
                    4 => (
                        num_in(&z[..2], 2).ok_or_else(bad)?,
                        num_in(&z[2..], 2).ok_or_else(bad)?,
                    ),
                    _ => return Err(bad()),
                };
                (c.trim_end(), sign * (hh * 3600 + mm * 60))
            } else {
                (rest, 0)
            };
        let (hms, frac) = clock.split_once(['.', ',']).unwrap_or((clock, ""));
        let f: Vec<&str> = hms.split(':').collect();
        let (h, mi, se): (i64, i64, i64) = match f[..] {
            [h, m] => (
                num_in(h, 2).ok_or_else(bad)?,
                num_in(m, 2).ok_or_else(bad)?,
                0,
            ),
            [h, m, s] => (
                num_in(h, 2).ok_or_else(bad)?,
                num_in(m, 2).ok_or_else(bad)?,
                num_in(s, 2).ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        };
        if h > 23
            || mi > 59
            || se > 60
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (frac.is_empty() && clock.len() != hms.len())
        {
            return Err(bad());
        }
        let mut fr: String = frac.chars().take(9).collect();
        while fr.len() < 9 {
            fr.push('0');
        }
        nanos = fr.parse().map_err(|_| bad())?;
        secs += h * 3600 + mi * 60 + se - offset;
    }
    Ok((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gnu_default_format() {
        let s = format("%a %b %e %H:%M:%S %Z %Y", 1_700_000_000, 0).unwrap();
        assert_eq!(s, "Tue Nov 14 22:13:20 UTC 2023");
        assert_eq!(
            format("%F %T %j %U %W %V %G %u %w %s", 0, 0).unwrap(),
            "1970-01-01 00:00:00 001 00 00 01 1970 4 4 0"
        );
        assert_eq!(
            format("%-d|%_m|%5Y|%^a|%3N|%%|%:z", 86400 * 40, 123_456_789).unwrap(),
            "10|_ 2|01970|TUE|123|%|+00:00".replace('_', "")
        );
        assert!(format("%Q", 0, 0).is_err());
    }

    #[test]
    fn parses_supported_dates() {
        let now = (0, 0);
        assert_eq!(parse_date("@1700000000", now), Ok((1_700_000_000, 0)));
        assert_eq!(parse_date("@-1.5", now), Ok((-2, 500_000_000)));
        assert_eq!(parse_date("2023-11-14", now), Ok((1_699_920_000, 0)));
        assert_eq!(
            parse_date("2023-11-14 22:13:20", now),
            Ok((1_700_000_000, 0))
        );
        assert_eq!(
            parse_date("2023-11-14T23:13:20+01:00", now),
            Ok((1_700_000_000, 0))
        );
        assert_eq!(
            parse_date("2023-11-14T22:13:20.25Z", now),
            Ok((1_700_000_000, 250_000_000))
        );
        for bad in [
            "yesterday",
            "2023-13-01",
            "2023-02-30",
            "14/11/2023",
            "@x",
            "2023-11-14 25:00",
        ] {
            assert!(parse_date(bad, now).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn format_never_panics(f in "[%a-zA-Z:_^#0-9 -]{0,12}", secs in -10_000_000_000i64..10_000_000_000) {
            let _ = format(&f, secs, 0);
        }

        #[test]
        fn iso_date_round_trips(secs in 0i64..4_000_000_000) {
            let s = format("%Y-%m-%dT%H:%M:%SZ", secs, 0).unwrap();
            prop_assert_eq!(parse_date(&s, (0, 0)), Ok((secs, 0)));
        }
    }
}
