//! Timestamps of health records: parsing `yyyy-MM-dd HH:mm:ss ±hhmm` (Apple) and ISO 8601
//! (FHIR, CSV) by hand, and civil-date arithmetic for day / ISO-week / month buckets.
//! Days are counted from 1970-01-01 in the local time the record was written in.

use std::fmt;

/// One instant as written: UTC seconds plus the offset the writer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Seconds since the Unix epoch, UTC.
    pub utc: i64,
    /// The writer's UTC offset in minutes (east positive).
    pub offset_min: i16,
}

impl Stamp {
    /// Local civil day number (days since 1970-01-01) in the writer's offset.
    pub fn local_day(&self) -> i32 {
        self.local_secs().div_euclid(86_400) as i32
    }

    /// Seconds since the epoch shifted into the writer's local time.
    pub fn local_secs(&self) -> i64 {
        self.utc + i64::from(self.offset_min) * 60
    }
}

impl fmt::Display for Stamp {
    /// RFC 3339 with the original offset, e.g. `2019-07-19T10:36:11-07:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.local_secs();
        let (y, m, d) = civil_from_days(local.div_euclid(86_400) as i32);
        let s = local.rem_euclid(86_400);
        let off = i32::from(self.offset_min);
        let sign = if off < 0 { '-' } else { '+' };
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            s / 3600,
            (s / 60) % 60,
            s % 60,
            off.abs() / 60,
            off.abs() % 60
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe as i32 + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: i32) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Monday starting the ISO week that contains `day`.
pub fn iso_week_start(day: i32) -> i32 {
    // 1970-01-01 was a Thursday: (day + 3) mod 7 is 0 on Mondays.
    day - (day + 3).rem_euclid(7)
}

/// The first day of the month that contains `day`.
pub fn month_start(day: i32) -> i32 {
    let (y, m, _) = civil_from_days(day);
    days_from_civil(y, m, 1)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn date_part(b: &[u8]) -> Option<i32> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&b[0..4])? as i32;
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn time_part(b: &[u8]) -> Option<i64> {
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let h = digits(&b[0..2])?;
    let mi = digits(&b[3..5])?;
    let s = if b.len() >= 8 && b[5] == b':' {
        digits(&b[6..8])?
    } else {
        0
    };
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(i64::from(h * 3600 + mi * 60 + s))
}

fn offset_part(b: &[u8]) -> Option<i16> {
    let b = trim(b);
    if b.is_empty() || b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign: i16 = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &b[1..];
    let (h, m) = match rest.len() {
        4 => (digits(&rest[0..2])?, digits(&rest[2..4])?),
        5 if rest[2] == b':' => (digits(&rest[0..2])?, digits(&rest[3..5])?),
        2 => (digits(rest)?, 0),
        _ => return None,
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m) as i16)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Parses Apple's `yyyy-MM-dd HH:mm:ss ±hhmm` and ISO 8601 forms (`T` or space separator,
/// optional fraction, `Z`/`±hh:mm`/`±hhmm`/no offset; a bare date is local midnight).
/// A missing offset is taken as UTC+0, as the writer's local time.
pub fn parse_stamp(raw: &[u8]) -> Option<Stamp> {
    let b = trim(raw);
    let day = date_part(b)?;
    if b.len() == 10 {
        return Some(Stamp {
            utc: i64::from(day) * 86_400,
            offset_min: 0,
        });
    }
    if b[10] != b' ' && b[10] != b'T' && b[10] != b't' {
        return None;
    }
    let rest = &b[11..];
    let tod = time_part(rest)?;
    let mut i = if rest.len() >= 8 && rest[5] == b':' {
        8
    } else {
        5
    };
    if i < rest.len() && (rest[i] == b'.' || rest[i] == b',') {
        i += 1;
        while i < rest.len() && rest[i].is_ascii_digit() {
            i += 1;
        }
    }
    let offset = offset_part(&rest[i..])?;
    let local = i64::from(day) * 86_400 + tod;
    Some(Stamp {
        utc: local - i64::from(offset) * 60,
        offset_min: offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_and_iso_forms_agree_on_the_instant_and_keep_the_local_day() {
        let a = parse_stamp(b"2019-07-19 23:36:11 -0700").unwrap();
        let b = parse_stamp(b"2019-07-20T06:36:11Z").unwrap();
        assert_eq!(a.utc, b.utc);
        assert_eq!(format_day(a.local_day()), "2019-07-19");
        assert_eq!(format_day(b.local_day()), "2019-07-20");
        assert_eq!(a.to_string(), "2019-07-19T23:36:11-07:00");
        let c = parse_stamp(b"2019-07-20T08:36:11.250+02:00").unwrap();
        assert_eq!(c.utc, b.utc);
        assert!(parse_stamp(b"2019-02-30 10:00:00 +0000").is_none());
        assert!(parse_stamp(b"yesterday").is_none());
    }

    #[test]
    fn week_and_month_starts() {
        let d = days_from_civil(2024, 1, 3); // a Wednesday
        assert_eq!(format_day(iso_week_start(d)), "2024-01-01");
        assert_eq!(
            format_day(month_start(days_from_civil(2024, 2, 29))),
            "2024-02-01"
        );
        assert_eq!(
            format_day(iso_week_start(days_from_civil(2021, 1, 3))),
            "2020-12-28"
        );
        for z in [-800_000, -1, 0, 1, 19_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, dd), z);
        }
    }
}
