//! How often and how fast the workers run: one set of knobs for `tidepool
//! up` and `tidepool node`, with durations like `500ms`, `5s`, `10m`,
//! `2h`, `7d` and rates like `50M` (bytes per second, binary units).

use std::time::Duration;

/// The pace of a node's workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpkeepConfig {
    /// Time between audit passes.
    pub audit_every: Duration,
    /// Time between scrub passes (each reads every copy once).
    pub scrub_every: Duration,
    /// Time between repair passes.
    pub repair_every: Duration,
    /// Time between garbage-collection passes.
    pub gc_every: Duration,
    /// A copy no name refers to is removed only once older than this.
    pub gc_grace: Duration,
    /// Bytes per second repair copies (0: unlimited).
    pub repair_rate: u64,
    /// Bytes per second scrub reads (0: unlimited).
    pub scrub_rate: u64,
}

impl Default for UpkeepConfig {
    fn default() -> Self {
        UpkeepConfig {
            audit_every: Duration::from_secs(3600),
            scrub_every: Duration::from_secs(7 * 86_400),
            repair_every: Duration::from_secs(60),
            gc_every: Duration::from_secs(60),
            gc_grace: Duration::from_secs(86_400),
            repair_rate: 64 << 20,
            scrub_rate: 32 << 20,
        }
    }
}

/// Parses `500ms`, `5s`, `10m`, `2h`, `7d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: want e.g. 500ms, 5s, 10m, 2h, 7d"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return Err(format!("bad duration unit in {s:?}: ms, s, m, h or d")),
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

/// Parses a size in bytes: `1048576`, `512K`, `64M`, `2G` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_rate(s).map_err(|e| e.replace("rate", "size").replace(" (bytes per second)", ""))
}

/// Parses a rate in bytes per second: `0` (unlimited), `1048576`, `512K`,
/// `50M`, `1G` (binary units; a trailing `B` or `/s` is allowed).
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad rate {s:?}: want e.g. 50M (bytes per second)"))?;
    let shift = match unit {
        "" => 0,
        "K" | "k" | "Ki" => 10,
        "M" | "Mi" => 20,
        "G" | "Gi" => 30,
        _ => return Err(format!("bad rate unit in {s:?}: K, M or G")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("rate {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("50M"), Ok(50 << 20));
        assert_eq!(parse_rate("512KB/s"), Ok(512 << 10));
        assert!(parse_rate("5T").is_err());
        assert!(parse_rate("-1").is_err());
    }
}
