//! `--shard I/N`: a stable subset of images.txt, chosen by each entry's content.
//!
//! An entry belongs to shard `fnv1a64(key) % N + 1`, where the key is the
//! entry's normalised text (platforms and source, see [`key`]). The
//! line number plays no part, so adding or removing other lines never moves an
//! entry to another shard, and N parallel jobs with shards 1/N..N/N together
//! cover every entry exactly once.

use std::fmt;
use std::str::FromStr;

use crate::images::Entry;

/// What a shard is chosen by: the line's content, not its position.
pub fn key(e: &Entry) -> String {
    let platforms: Vec<String> = e.platforms.iter().map(|p| p.to_string()).collect();
    format!("{} {}", platforms.join(","), e.source)
}

/// Shard `index` of `count`, 1-based: `1 <= index <= count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 {
            return Err("N must be at least 1, e.g. --shard 1/4".to_string());
        }
        if index == 0 || index > count {
            return Err(format!("I must be between 1 and {count} (shards are numbered from 1)"));
        }
        Ok(Shard { index, count })
    }

}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        parse(s)
    }
}

/// Parses `I/N`, e.g. `2/4`. Errors say what is wrong, not which flag: the
/// caller adds `--shard VALUE: `.
pub fn parse(s: &str) -> Result<Shard, String> {
    let bad = || "expected I/N with whole numbers and 1 <= I <= N, e.g. --shard 2/4".to_string();
    let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    Shard::new(i, n)
}

/// Whether the entry with this key belongs to `shard`.
pub fn in_shard(key: &str, shard: Shard) -> bool {
    fnv1a64(key.as_bytes()) % u64::from(shard.count) == u64::from(shard.index - 1)
}

/// FNV-1a, 64 bit: fixed forever, unlike std's randomly seeded hasher.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!(" docker.io/library/image{i}:{}", i % 7)).collect()
    }

    #[test]
    fn parse_forms() {
        assert_eq!(parse("2/4").unwrap(), Shard::new(2, 4).unwrap());
        assert_eq!(parse(" 1 / 1 ").unwrap().to_string(), "1/1");
        assert_eq!("3/3".parse::<Shard>().unwrap().index, 3);
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/4", "1/4/2", "", "/"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("5/4").unwrap_err().contains("between 1 and 4"));
    }

    #[test]
    fn known_hash_values() {
        // The published FNV-1a test vectors: the hash must never change.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn union_is_all_and_shards_are_disjoint() {
        let keys = keys(500);
        for n in 1..=7 {
            let shards: Vec<Shard> = (1..=n).map(|i| Shard::new(i, n).unwrap()).collect();
            for k in &keys {
                let hits = shards.iter().filter(|s| in_shard(k, **s)).count();
                assert_eq!(hits, 1, "{k} in {hits} of {n} shards");
            }
            // Roughly even: no shard empty or holding more than twice its share.
            for s in &shards {
                let size = keys.iter().filter(|k| in_shard(k, *s)).count();
                assert!(size > 0 && size < 2 * 500 / n as usize + 10, "shard {s}: {size}");
            }
        }
    }

    #[test]
    fn stable_under_insertion() {
        let keys = keys(100);
        let shard_of = |k: &str| (1..=4).find(|i| in_shard(k, Shard::new(*i, 4).unwrap())).unwrap();
        let before: Vec<u32> = keys.iter().map(|k| shard_of(k)).collect();
        // Other lines added in front and in between change no entry's shard.
        let mut grown = vec!["linux/arm64 docker.io/library/new:1".to_string()];
        for k in &keys {
            grown.push(k.clone());
            grown.push(format!("{k}-extra"));
        }
        let after: Vec<u32> = grown.iter().filter(|k| keys.contains(k)).map(|k| shard_of(k)).collect();
        assert_eq!(before, after);
    }
}
