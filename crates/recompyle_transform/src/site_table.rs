//! A module's site table as bytes, for the bytecode cache.
//!
//! A warm import reads the table back for every cached module, so it is a flat binary
//! record decoded in Rust rather than Python tuples to unmarshal and convert: each distinct
//! string once (a function's sites share its qualname, calls of `len` their callee text),
//! then eight little-endian `u32`s per site, the last three indexes into the strings.
//!
//! ```text
//! u32 string count, then per string: u32 byte length, UTF-8 bytes
//! u32 site count,   then per site:   line, col, end_line, end_col, flags, callee, qualname,
//!                                    names
//! ```
//!
//! `flags` bit 0: the call is the operand of `await` ([`Site::awaited`]). `names`: a
//! write-report site's [`Site::names`], one string of the names each followed by NUL (no
//! identifier holds one), or `u32::MAX` for none.

/// `names` of a site that stores none (a call site).
const NO_NAMES: u32 = u32::MAX;

use std::collections::HashMap;

use crate::Site;

/// Why bytes are not a site table (a damaged cache file: the caller transforms again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSiteTable(pub &'static str);

impl std::fmt::Display for BadSiteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed site table: {}", self.0)
    }
}

impl std::error::Error for BadSiteTable {}

/// Bytes per site.
pub const ROW: usize = 8 * 4;

/// The index of `s` in `strings`, added once.
fn intern<'a>(s: &'a str, strings: &mut Vec<&'a str>, index: &mut HashMap<&'a str, u32>) -> u32 {
    // Narrowing is exact: a table has at most three strings per site, and a module's site
    // indexes are u32.
    *index.entry(s).or_insert_with(|| {
        strings.push(s);
        (strings.len() - 1) as u32
    })
}

/// The bytes of `sites`.
pub fn encode(sites: &[Site]) -> Vec<u8> {
    let mut strings: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut rows = Vec::with_capacity(sites.len());
    let names: Vec<String> = sites
        .iter()
        .map(|site| site.names.iter().map(|n| format!("{n}\0")).collect())
        .collect();
    for (site, joined) in sites.iter().zip(&names) {
        let callee = intern(&site.callee, &mut strings, &mut index);
        let qualname = intern(&site.qualname, &mut strings, &mut index);
        let names = if joined.is_empty() {
            NO_NAMES
        } else {
            intern(joined, &mut strings, &mut index)
        };
        rows.push([
            site.line,
            site.col,
            site.end_line,
            site.end_col,
            u32::from(site.awaited),
            callee,
            qualname,
            names,
        ]);
    }
    let text: usize = strings.iter().map(|s| s.len() + 4).sum();
    let mut out = Vec::with_capacity(8 + text + rows.len() * ROW);
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    for s in &strings {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for row in rows {
        for field in row {
            out.extend_from_slice(&field.to_le_bytes());
        }
    }
    out
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadSiteTable> {
        if n > self.data.len() {
            return Err(BadSiteTable("cut short"));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, BadSiteTable> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

/// The number of sites in a site table, checking only its shape (a warm import registers
/// a cached table without decoding it): strings and indexes are checked by [`decode`].
pub fn site_count(table: &[u8]) -> Option<usize> {
    fn u32_at(table: &[u8], at: usize) -> Option<usize> {
        let bytes = table.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    }
    let strings = u32_at(table, 0)?;
    let mut at = 4usize;
    for _ in 0..strings {
        at = at.checked_add(4)?.checked_add(u32_at(table, at)?)?;
    }
    let count = u32_at(table, at)?;
    let rows = table.len().checked_sub(at + 4)?;
    (rows == count.checked_mul(ROW)?).then_some(count)
}

/// The sites in `data`, as [`encode`] wrote them.
pub fn decode(data: &[u8]) -> Result<Vec<Site>, BadSiteTable> {
    let mut r = Reader { data };
    let nstrings = r.u32()? as usize;
    // Every string takes at least its 4-byte length: a count beyond that is damage, not a
    // reason to reserve gigabytes.
    if nstrings > r.data.len() / 4 {
        return Err(BadSiteTable("string count beyond the data"));
    }
    let mut strings = Vec::with_capacity(nstrings);
    for _ in 0..nstrings {
        let len = r.u32()? as usize;
        let bytes = r.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| BadSiteTable("string not UTF-8"))?;
        strings.push(s);
    }
    let nsites = r.u32()? as usize;
    if r.data.len() != nsites.saturating_mul(ROW) {
        return Err(BadSiteTable("site count does not match the data"));
    }
    let string = |i: u32| -> Result<String, BadSiteTable> {
        strings
            .get(i as usize)
            .map(|s| (*s).to_owned())
            .ok_or(BadSiteTable("string index out of range"))
    };
    let mut sites = Vec::with_capacity(nsites);
    for _ in 0..nsites {
        let mut f = [0u32; 8];
        for v in &mut f {
            *v = r.u32()?;
        }
        sites.push(Site {
            line: f[0],
            col: f[1],
            end_line: f[2],
            end_col: f[3],
            awaited: f[4] & 1 != 0,
            callee: string(f[5])?,
            qualname: string(f[6])?,
            names: if f[7] == NO_NAMES {
                Vec::new()
            } else {
                let joined = string(f[7])?;
                let Some(body) = joined.strip_suffix('\0') else {
                    return Err(BadSiteTable("names not NUL-terminated"));
                };
                body.split('\0').map(str::to_owned).collect()
            },
        });
    }
    Ok(sites)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(line: u32, callee: &str, qualname: &str) -> Site {
        Site {
            line,
            col: 4,
            end_line: line + 1,
            end_col: 9,
            callee: callee.into(),
            qualname: qualname.into(),
            names: Vec::new(),
            awaited: line & 1 == 0,
        }
    }

    #[test]
    fn round_trip_shares_strings() {
        let sites = vec![
            site(1, "len", "<module>"),
            site(2, "len", "f"),
            site(3, "obj.m", "f"),
            site(4, "é", ""),
        ];
        let bytes = encode(&sites);
        assert_eq!(decode(&bytes), Ok(sites));
        // "len", "<module>", "f", "obj.m", "é", "" once each.
        assert_eq!(
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            6
        );
    }

    #[test]
    fn round_trip_keeps_a_write_report_sites_names() {
        let mut write = site(5, "x,y", "f");
        write.names = vec!["x".into(), "y".into()];
        let mut one = site(6, "z", "f");
        one.names = vec!["z".into()];
        let sites = vec![site(1, "len", "f"), write, one];
        assert_eq!(decode(&encode(&sites)), Ok(sites));
    }

    #[test]
    fn empty_table() {
        assert_eq!(decode(&encode(&[])), Ok(vec![]));
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let bytes = encode(&[site(1, "len", "f"), site(2, "g", "f")]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut bad_index = bytes.clone();
        let last = bad_index.len() - 4;
        bad_index[last..].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(
            decode(&bad_index),
            Err(BadSiteTable("string index out of range"))
        );
        let mut huge = bytes;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }
}
