//! Schedule triggers: standard 5-field cron (minute hour day-of-month month day-of-week), as
//! Relay parsed them (robfig/cron `ParseStandard`), plus its `@hourly`-style descriptors,
//! `@every <duration>` and a `CRON_TZ=`/`TZ=` prefix.
//!
//! Day-of-month and day-of-week follow Vixie cron: when both are restricted, a day matches if
//! either does. Fields are matched on the wall clock of the `CRON_TZ=` time zone (an IANA name,
//! from `chrono-tz`, used in this module only), UTC without one. Across a daylight-saving change,
//! a wall-clock time that does not exist is skipped and one that happens twice fires once, at its
//! first occurrence.

use std::ops::Range;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    pub message: String,
    /// Byte range of the offending part of the expression.
    pub range: Range<usize>,
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub time_zone: Option<String>,
    pub kind: ScheduleKind,
    tz: Option<chrono_tz::Tz>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleKind {
    Fields(Fields),
    /// `@every 1h30m`: a fixed interval, in seconds.
    Every(u64),
}

/// Bit sets of the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    dom_restricted: bool,
    dow_restricted: bool,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: FieldSpec = FieldSpec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DOW: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

const FORMAT_HELP: &str =
    "a schedule is 5 fields: minute hour day-of-month month day-of-week, e.g. `7-57/10 * * * *`";

impl Schedule {
    pub fn parse(src: &str) -> Result<Schedule, CronError> {
        let trimmed_start = src.len() - src.trim_start().len();
        let mut rest = src.trim();
        let mut offset = trimmed_start;
        let mut time_zone = None;
        let mut parsed_tz = None;
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(after) = rest.strip_prefix(prefix) {
                let tz_len = after.find(char::is_whitespace).unwrap_or(after.len());
                let tz = &after[..tz_len];
                let Ok(zone) = tz.parse::<chrono_tz::Tz>() else {
                    return Err(CronError {
                        message: format!("`{tz}` is not a time zone name"),
                        range: offset + prefix.len()..offset + prefix.len() + tz_len,
                        help: Some("use an IANA name such as `Europe/Paris`".into()),
                    });
                };
                time_zone = Some(tz.to_owned());
                parsed_tz = Some(zone);
                let consumed = prefix.len() + tz_len;
                let after_tz = &rest[consumed..];
                offset += consumed + (after_tz.len() - after_tz.trim_start().len());
                rest = after_tz.trim_start();
                break;
            }
        }
        if let Some(descriptor) = rest.strip_prefix('@') {
            let kind = descriptor_kind(descriptor, offset, rest.len())?;
            return Ok(Schedule {
                time_zone,
                kind,
                tz: parsed_tz,
            });
        }
        let mut parts = Vec::new();
        let mut pos = offset;
        for part in rest.split_whitespace() {
            let start = pos + src[pos..].find(part).unwrap_or(0);
            parts.push((part, start));
            pos = start + part.len();
        }
        if parts.len() != 5 {
            return Err(CronError {
                message: format!("expected 5 cron fields, found {}", parts.len()),
                range: offset..src.len(),
                help: Some(if parts.len() == 6 {
                    "Gantry, like Relay, reads standard cron without a seconds field".into()
                } else {
                    FORMAT_HELP.into()
                }),
            });
        }
        let specs = [&MINUTE, &HOUR, &DOM, &MONTH, &DOW];
        let mut sets = [0u64; 5];
        for (i, ((part, start), spec)) in parts.iter().zip(specs).enumerate() {
            sets[i] = parse_field(part, *start, spec)?;
        }
        let dow = sets[4];
        // 7 is Sunday too.
        let dow = (dow | (dow >> 7)) & 0x7f;
        Ok(Schedule {
            time_zone,
            tz: parsed_tz,
            kind: ScheduleKind::Fields(Fields {
                minutes: sets[0],
                hours: sets[1] as u32,
                days_of_month: sets[2] as u32,
                months: sets[3] as u16,
                days_of_week: dow as u8,
                dom_restricted: !parts[2].0.starts_with(['*', '?']),
                dow_restricted: !parts[4].0.starts_with(['*', '?']),
            }),
        })
    }

    /// The first fire time strictly after `after`, or `None` if there is none within 5 years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            ScheduleKind::Every(secs) => {
                let secs = i64::try_from(*secs).ok()?;
                after.checked_add_signed(Duration::seconds(secs))
            }
            ScheduleKind::Fields(f) => {
                let Some(tz) = self.tz else {
                    return f.next_after(after.naive_utc()).map(|n| n.and_utc());
                };
                let mut local = after.with_timezone(&tz).naive_local();
                // Each turn moves `local` forward, and `Fields::next_after` gives up after 5
                // years, so this ends.
                loop {
                    let next = f.next_after(local)?;
                    match tz.from_local_datetime(&next) {
                        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                            let t = t.with_timezone(&Utc);
                            if t > after {
                                return Some(t);
                            }
                        }
                        // A wall-clock time skipped by a daylight-saving change.
                        chrono::LocalResult::None => {}
                    }
                    local = next;
                }
            }
        }
    }
}

fn descriptor_kind(descriptor: &str, offset: usize, len: usize) -> Result<ScheduleKind, CronError> {
    let fixed = match descriptor {
        "yearly" | "annually" => Some("0 0 1 1 *"),
        "monthly" => Some("0 0 1 * *"),
        "weekly" => Some("0 0 * * 0"),
        "daily" | "midnight" => Some("0 0 * * *"),
        "hourly" => Some("0 * * * *"),
        _ => None,
    };
    if let Some(expr) = fixed {
        return Schedule::parse(expr).map(|s| s.kind);
    }
    if let Some(d) = descriptor.strip_prefix("every ") {
        let d = d.trim();
        return match crate::duration::parse(d).map(|d| d.as_secs()) {
            Some(secs) if secs > 0 => Ok(ScheduleKind::Every(secs)),
            _ => Err(CronError {
                message: format!("`{d}` is not a duration"),
                range: offset + "@every ".len()..offset + len,
                help: Some("write a duration like `1h30m`, `15m` or `90s`".into()),
            }),
        };
    }
    Err(CronError {
        message: format!("unknown schedule descriptor `@{descriptor}`"),
        range: offset..offset + len,
        help: Some(
            "known: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>"
                .into(),
        ),
    })
}

fn parse_field(part: &str, start: usize, spec: &FieldSpec) -> Result<u64, CronError> {
    let mut set = 0u64;
    let mut pos = start;
    for item in part.split(',') {
        let range = pos..pos + item.len();
        pos += item.len() + 1;
        let err = |message: String| CronError {
            message,
            range: range.clone(),
            help: Some(FORMAT_HELP.into()),
        };
        if item.is_empty() {
            return Err(err(format!("empty entry in the {} field", spec.name)));
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => {
                let step: u32 = s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    err(format!(
                        "`{s}` is not a valid step in the {} field",
                        spec.name
                    ))
                })?;
                (b, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if base == "*" || base == "?" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = base.split_once('-') {
            (value(a, spec, &err)?, value(b, spec, &err)?)
        } else {
            let v = value(base, spec, &err)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if step.is_some() { spec.max } else { v })
        };
        if lo > hi {
            return Err(err(format!(
                "range {lo}-{hi} in the {} field goes backwards",
                spec.name
            )));
        }
        let step = step.unwrap_or(1);
        let mut v = lo;
        while v <= hi {
            set |= 1u64 << v;
            v += step;
        }
    }
    Ok(set)
}

fn value(s: &str, spec: &FieldSpec, err: &dyn Fn(String) -> CronError) -> Result<u32, CronError> {
    let upper = s.to_ascii_uppercase();
    if let Some(i) = spec.names.iter().position(|n| *n == upper) {
        return Ok(i as u32 + if spec.min == 1 { 1 } else { 0 });
    }
    let v: u32 = s
        .parse()
        .map_err(|_| err(format!("`{s}` is not a valid {}", spec.name)))?;
    if v < spec.min || v > spec.max {
        return Err(err(format!(
            "{v} is out of range for the {} field ({}-{})",
            spec.name, spec.min, spec.max
        )));
    }
    Ok(v)
}

impl Fields {
    fn day_matches(&self, t: &NaiveDateTime) -> bool {
        let dom = self.days_of_month & (1 << t.day()) != 0;
        let dow = self.days_of_week & (1 << t.weekday().num_days_from_sunday()) != 0;
        if self.dom_restricted && self.dow_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first matching wall-clock minute strictly after `after`, within 5 years.
    fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = start + Duration::days(366 * 5);
        let mut t = start;
        while t < limit {
            if self.months & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(&t) {
                t = (t + Duration::days(1)).with_hour(0)?.with_minute(0)?;
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = (t + Duration::hours(1)).with_minute(0)?;
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(expr: &str, from: &str) -> String {
        let s = Schedule::parse(expr).unwrap();
        let from: DateTime<Utc> = from.parse().unwrap();
        s.next_after(from).unwrap().to_rfc3339()
    }

    #[test]
    fn time_zones_follow_the_wall_clock_across_daylight_saving() {
        // 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer.
        assert_eq!(
            next("CRON_TZ=Europe/Paris 0 9 * * *", "2026-01-10T12:00:00Z"),
            "2026-01-11T08:00:00+00:00"
        );
        assert_eq!(
            next("TZ=Europe/Paris 0 9 * * *", "2026-07-10T12:00:00Z"),
            "2026-07-11T07:00:00+00:00"
        );
        // 02:30 does not exist on 2026-03-29 in Paris (clocks go 02:00 -> 03:00): skipped.
        assert_eq!(
            next("CRON_TZ=Europe/Paris 30 2 * * *", "2026-03-28T12:00:00Z"),
            "2026-03-30T00:30:00+00:00"
        );
        // 02:30 happens twice on 2026-10-25: it fires once, at the first.
        assert_eq!(
            next("CRON_TZ=Europe/Paris 30 2 * * *", "2026-10-24T12:00:00Z"),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            next("CRON_TZ=Europe/Paris 30 2 * * *", "2026-10-25T00:30:00Z"),
            "2026-10-26T01:30:00+00:00"
        );
        assert_eq!(
            Schedule::parse("CRON_TZ=Mars/Olympus 0 9 * * *")
                .unwrap_err()
                .message,
            "`Mars/Olympus` is not a time zone name"
        );
    }

    #[test]
    fn next_fire_times() {
        assert_eq!(
            next("7-57/10 * * * *", "2026-01-01T00:08:00Z"),
            "2026-01-01T00:17:00+00:00"
        );
        assert_eq!(
            next("0 9 * * 1,3,5", "2026-11-23T10:00:00Z"),
            "2026-11-25T09:00:00+00:00"
        );
        assert_eq!(
            next("@daily", "2026-11-23T10:00:00Z"),
            "2026-11-24T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-03-01T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        // Both day fields restricted: either matches (1st of month or a Friday).
        assert_eq!(
            next("0 12 1 * FRI", "2026-11-23T00:00:00Z"),
            "2026-11-27T12:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-11-23T00:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("@every 1h30m", "2026-11-23T00:00:00Z"),
            "2026-11-23T01:30:00+00:00"
        );
        assert_eq!(
            next("CRON_TZ=Europe/Paris 30 6 * * *", "2026-11-23T00:00:00Z"),
            "2026-11-23T05:30:00+00:00",
            "06:30 in Paris is 05:30 UTC in November"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = Schedule::parse("0 25 * * *").unwrap_err();
        assert_eq!(e.message, "25 is out of range for the hour field (0-23)");
        assert_eq!(e.range, 2..4);
        let e = Schedule::parse("* * * *").unwrap_err();
        assert_eq!(e.message, "expected 5 cron fields, found 4");
        let e = Schedule::parse("0 0 * * * *").unwrap_err();
        assert!(e.help.unwrap().contains("seconds"));
        let e = Schedule::parse("*/0 * * * *").unwrap_err();
        assert_eq!(e.range, 0..3);
        let e = Schedule::parse("@fortnightly").unwrap_err();
        assert!(e.message.contains("@fortnightly"));
        let e = Schedule::parse("0 0 * JANUARY *").unwrap_err();
        assert_eq!(e.range, 6..13);
        assert!(Schedule::parse("5-1 * * * *").is_err());
        assert!(Schedule::parse("@every 0s").is_err());
    }
}
