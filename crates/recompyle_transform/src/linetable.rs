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
        entries.push(Entry { units, kind });
    }
    Ok(entries)
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
        let head = |code: u8| 0x80 | (code << 3) | (entry.units - 1);
        match entry.kind {
            Kind::None => out.push(head(15)),
            Kind::LineOnly { line_delta } => {
                out.push(head(13));
                write_svarint(&mut out, line_delta);
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
                    write_svarint(&mut out, line_delta);
                    write_varint(&mut out, end_line_delta.max(0) as u32);
                    write_varint(&mut out, (col + 1).max(0) as u32);
                    write_varint(&mut out, (end_col + 1).max(0) as u32);
                }
            }
        }
    }
    out
}

/// Rewrite every column of `table` through `map(line, col)`; lines are kept.
pub fn remap_columns(
    table: &[u8],
    first_line: i32,
    map: impl Fn(i32, i32) -> i32,
) -> Result<Vec<u8>, DecodeError> {
    let mut entries = decode(table)?;
    let mut line = first_line;
    for entry in &mut entries {
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
                let end_line = line + *end_line_delta;
                let new_col = map(line, *col);
                let mut new_end = map(end_line, *end_col);
                if *end_line_delta == 0 && new_end >= 0 && new_end < new_col {
                    new_end = new_col;
                }
                *col = new_col;
                *end_col = new_end;
            }
        }
    }
    Ok(encode(&entries))
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
        .expect("remaps");
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
}
