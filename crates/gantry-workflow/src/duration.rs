//! Durations as Gantry's extensions write them (`timeout: 15m`), in Go's notation as Relay's
//! schedules did: `90s`, `15m`, `1h30m`, `1.5h`, `250ms`. A bare number is seconds.

use std::time::Duration;

/// Parses `1h30m`-style text; `None` when it is not a duration or is absurdly long.
pub fn parse(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<u64>() {
        return (secs < 1_000_000_000).then(|| Duration::from_secs(secs));
    }
    let mut total_ms = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += n * factor;
    }
    (total_ms.is_finite() && total_ms < 1e15)
        .then(|| Duration::from_millis(total_ms.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse("5 minutes"), None);
        assert_eq!(parse("m"), None);
        assert_eq!(parse(""), None);
    }
}
