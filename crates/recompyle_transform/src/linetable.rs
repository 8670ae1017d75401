//! The location table of CPython 3.11+ code objects (`co_linetable`), decoded and re-encoded
//! so columns can be mapped back to the original source. Format: CPython's
//! `InternalDocs/code_objects.md` ("Format of the locations table"); the encoder makes the
//! same choices as `Python/assemble.c:write_location_info_entry`.

/// One decoded entry: `units` code units sharing a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub units: u8,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No location at all (code 15).
    None,
    /// A line without columns (code 13).
    LineOnly { line_delta: i32 },
    /// Full position. `col`/`end_col` are -1 when absent (long form only).
    Full {
        line_delta: i32,
        end_line_delta: i32,
        col: i32,
        end_col: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| DecodeError("truncated location table".into()))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut b = self.byte()?;
        let mut value = u32::from(b & 63);
        let mut shift = 0;
        while b & 64 != 0 {
            b = self.byte()?;
            shift += 6;
            if shift > 30 {
                return Err(DecodeError("varint too long".into()));
            }
            value |= u32::from(b & 63) << shift;
        }
        Ok(value)
    }

    fn svarint(&mut self) -> Result<i32, DecodeError> {
        let v = self.varint()?;
        Ok(if v & 1 != 0 {
            -((v >> 1) as i32)
        } else {
            (v >> 1) as i32
        })
    }
}

/// Decode a whole table.
pub fn decode(table: &[u8]) -> Result<Vec<Entry>, DecodeError> {
    let mut r = Reader {
        bytes: table,
        at: 0,
    };
    let mut entries = Vec::new();
    while r.at < table.len() {
        entries.push(next_entry(&mut r)?);
    }
    Ok(entries)
}

/// The entry that starts at the reader's position.
fn next_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let first = r.byte()?;
    if first & 0x80 == 0 {
        return Err(DecodeError(format!("no entry start at byte {}", r.at - 1)));
    }
    let code = (first >> 3) & 15;
    let units = (first & 7) + 1;
    let kind = match code {
        15 => Kind::None,
        14 => {
            let line_delta = r.svarint()?;
            let end_line_delta = r.varint()? as i32;
            let col = r.varint()? as i32 - 1;
            let end_col = r.varint()? as i32 - 1;
            Kind::Full {
                line_delta,
                end_line_delta,
                col,
                end_col,
            }
        }
        13 => Kind::LineOnly {
            line_delta: r.svarint()?,
        },
        10..=12 => {
            let col = i32::from(r.byte()?);
            let end_col = i32::from(r.byte()?);
            Kind::Full {
                line_delta: i32::from(code) - 10,
                end_line_delta: 0,
                col,
                end_col,
            }
        }
        _ => {
            let second = r.byte()?;
            let col = i32::from(code) * 8 + i32::from((second >> 4) & 7);
            Kind::Full {
                line_delta: 0,
                end_line_delta: 0,
                col,
                end_col: col + i32::from(second & 15),
            }
        }
    };
    Ok(Entry { units, kind })
}

fn write_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 64 {
        out.push(64 | (value & 63) as u8);
        value >>= 6;
    }
    out.push(value as u8);
}

fn write_svarint(out: &mut Vec<u8>, value: i32) {
    if value < 0 {
        write_varint(out, (value.unsigned_abs() << 1) | 1);
    } else {
        write_varint(out, (value as u32) << 1);
    }
}

/// Encode entries as CPython's assembler would.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 2);
    for entry in entries {
        encode_entry(&mut out, entry);
    }
    out
}

/// Append one entry, in the form CPython's assembler would choose.
fn encode_entry(out: &mut Vec<u8>, entry: &Entry) {
    let head = |code: u8| 0x80 | (code << 3) | (entry.units - 1);
    match entry.kind {
        Kind::None => out.push(head(15)),
        Kind::LineOnly { line_delta } => {
            out.push(head(13));
            write_svarint(out, line_delta);
        }
        Kind::Full {
            line_delta,
            end_line_delta,
            col,
            end_col,
        } => {
            let one_line = end_line_delta == 0 && col >= 0 && end_col >= 0;
            if one_line && line_delta == 0 && col < 80 && end_col >= col && end_col - col < 16 {
                out.push(head((col / 8) as u8));
                out.push((((col % 8) as u8) << 4) | (end_col - col) as u8);
            } else if one_line && (0..3).contains(&line_delta) && col < 128 && end_col < 128 {
                out.push(head(10 + line_delta as u8));
                out.push(col as u8);
                out.push(end_col as u8);
            } else {
                out.push(head(14));
                write_svarint(out, line_delta);
                write_varint(out, end_line_delta.max(0) as u32);
                write_varint(out, (col + 1).max(0) as u32);
                write_varint(out, (end_col + 1).max(0) as u32);
            }
        }
    }
}

/// Rewrite every column of `table` through `map(line, col)`; lines are kept. `None` when no
/// column changed (the table stands as it is).
///
/// One pass, entry by entry: an entry whose columns map to themselves is copied as it was
/// read, any other is re-encoded (the remap ran over every code object of a cold import,
/// and decoding into a vector, then encoding every entry again, was most of its time).
pub fn remap_columns(
    table: &[u8],
    first_line: i32,
    map: impl Fn(i32, i32) -> i32,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let mut r = Reader {
        bytes: table,
        at: 0,
    };
    // Made at the first entry that changes, with every byte before it.
    let mut out: Option<Vec<u8>> = None;
    let mut line = first_line;
    while r.at < table.len() {
        let start = r.at;
        let mut entry = next_entry(&mut r)?;
        let changed = match &mut entry.kind {
            Kind::None => false,
            Kind::LineOnly { line_delta } => {
                line += *line_delta;
                false
            }
            Kind::Full {
                line_delta,
                end_line_delta,
                col,
                end_col,
            } => {
                line += *line_delta;
                let end_line = line + *end_line_delta;
                let new_col = map(line, *col);
                let mut new_end = map(end_line, *end_col);
                if *end_line_delta == 0 && new_end >= 0 && new_end < new_col {
                    new_end = new_col;
                }
                let changed = new_col != *col || new_end != *end_col;
                *col = new_col;
                *end_col = new_end;
                changed
            }
        };
        match (&mut out, changed) {
            (Some(out), false) => out.extend_from_slice(&table[start..r.at]),
            (Some(out), true) => encode_entry(out, &entry),
            (None, true) => {
                // Columns only get smaller, so the table rarely grows; a little room anyway.
                let mut fresh = Vec::with_capacity(table.len() + table.len() / 8 + 16);
                fresh.extend_from_slice(&table[..start]);
                encode_entry(&mut fresh, &entry);
                out = Some(fresh);
            }
            (None, false) => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all_forms() {
        let entries = vec![
            Entry {
                units: 1,
                kind: Kind::None,
            },
            Entry {
                units: 2,
                kind: Kind::LineOnly { line_delta: -3 },
            },
            Entry {
                units: 8,
                kind: Kind::Full {
                    line_delta: 0,
                    end_line_delta: 0,
                    col: 12,
                    end_col: 20,
                },
            },
            Entry {
                units: 1,
                kind: Kind::Full {
                    line_delta: 2,
                    end_line_delta: 0,
                    col: 100,
                    end_col: 120,
                },
            },
            Entry {
                units: 3,
                kind: Kind::Full {
                    line_delta: -40,
                    end_line_delta: 5,
                    col: 300,
                    end_col: 2,
                },
            },
            Entry {
                units: 1,
                kind: Kind::Full {
                    line_delta: 1,
                    end_line_delta: 0,
                    col: -1,
                    end_col: -1,
                },
            },
        ];
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes).expect("decodes"), entries);
    }

    #[test]
    fn truncated_table_is_an_error() {
        assert!(decode(&[0x80 | (14 << 3)]).is_err());
        assert!(decode(&[0x01]).is_err());
    }

    #[test]
    fn remap_shifts_columns() {
        let entries = vec![Entry {
            units: 1,
            kind: Kind::Full {
                line_delta: 1,
                end_line_delta: 0,
                col: 30,
                end_col: 40,
            },
        }];
        let table = encode(&entries);
        let out = remap_columns(&table, 1, |line, col| {
            assert_eq!(line, 2);
            col - 20
        })
        .expect("remaps")
        .expect("a column changed");
        assert_eq!(
            decode(&out).expect("decodes"),
            vec![Entry {
                units: 1,
                kind: Kind::Full {
                    line_delta: 1,
                    end_line_delta: 0,
                    col: 10,
                    end_col: 20
                },
            }]
        );
    }

    /// The one-pass remap agrees with decoding, mapping every entry and encoding again, and
    /// hands back nothing when no column moved.
    #[test]
    fn one_pass_remap_agrees_with_decode_map_encode() {
        let mut entries = Vec::new();
        for i in 0..300i32 {
            let kind = match i % 5 {
                0 => Kind::None,
                1 => Kind::LineOnly { line_delta: 1 },
                2 => Kind::Full {
                    line_delta: 0,
                    end_line_delta: 0,
                    col: (i * 7) % 150,
                    end_col: (i * 7) % 150 + i % 20,
                },
                3 => Kind::Full {
                    line_delta: i % 3,
                    end_line_delta: i % 2,
                    col: (i * 13) % 300,
                    // A later line's end may be left of the start; the same line's is not.
                    end_col: if i % 2 == 1 {
                        (i * 3) % 90
                    } else {
                        (i * 13) % 300 + 5
                    },
                },
                _ => Kind::Full {
                    line_delta: -(i % 4),
                    end_line_delta: 0,
                    col: -1,
                    end_col: -1,
                },
            };
            entries.push(Entry {
                units: (i % 8) as u8 + 1,
                kind,
            });
        }
        let table = encode(&entries);
        // Only lines divisible by 3 have moved columns.
        let map = |line: i32, col: i32| {
            if col >= 10 && line % 3 == 0 {
                col - 10
            } else {
                col
            }
        };
        let mut expected = entries.clone();
        let mut line = 1;
        for entry in &mut expected {
            match &mut entry.kind {
                Kind::None => {}
                Kind::LineOnly { line_delta } => line += *line_delta,
                Kind::Full {
                    line_delta,
                    end_line_delta,
                    col,
                    end_col,
                } => {
                    line += *line_delta;
                    *col = map(line, *col);
                    *end_col = map(line + *end_line_delta, *end_col);
                    if *end_line_delta == 0 && *end_col >= 0 && *end_col < *col {
                        *end_col = *col;
                    }
                }
            }
        }
        let out = remap_columns(&table, 1, map)
            .expect("remaps")
            .expect("columns moved");
        assert_eq!(out, encode(&expected));
        assert_eq!(
            remap_columns(&table, 1, |_, col| col).expect("remaps"),
            None
        );
    }
}
