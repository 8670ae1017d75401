//! The line table of CPython 3.9 code objects (`co_lnotab`), and the one repair it needs.
//!
//! Each site adds a constant (its id) to the code object it is in. A class body with a few
//! hundred decorated methods can then pass 256 constants, and CPython 3.9's peephole
//! optimizer, folding a tuple of defaults into a new constant past index 255, leaves a line
//! boundary on the `EXTENDED_ARG` prefix of that `LOAD_CONST` and gives the prefix the *next*
//! statement's line: a line event for a line that plain code never reports. Plain code with
//! over 255 constants has the same quirk; ours must not acquire it. [`fix_extended_args`]
//! moves such a boundary back onto the prefix (an instruction and its prefixes share a line)
//! when the prefix is there only because of the added constants.
//!
//! Format: CPython 3.9 `Objects/lnotab_notes.txt`: pairs of (bytecode offset increment,
//! signed line increment), read the way `dis.findlinestarts` reads them.

/// CPython 3.9's `EXTENDED_ARG` opcode.
const EXTENDED_ARG: u8 = 144;

/// Line starts `(offset, line)` as `dis.findlinestarts` yields them.
pub fn decode(lnotab: &[u8], first_line: i32) -> Vec<(usize, i32)> {
    let mut starts = Vec::new();
    let mut last_line = None;
    let mut line = first_line;
    let mut addr = 0usize;
    for pair in lnotab.chunks_exact(2) {
        let (byte_incr, line_incr) = (pair[0], pair[1] as i8);
        if byte_incr != 0 {
            if last_line != Some(line) {
                starts.push((addr, line));
                last_line = Some(line);
            }
            addr += usize::from(byte_incr);
        }
        line += i32::from(line_incr);
    }
    if last_line != Some(line) {
        starts.push((addr, line));
    }
    starts
}

/// Encodes line starts (offsets increasing) the way CPython 3.9's assembler does.
pub fn encode(starts: &[(usize, i32)], first_line: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut addr, mut line) = (0usize, first_line);
    for &(offset, new_line) in starts {
        let mut d_addr = offset.saturating_sub(addr);
        let mut d_line = new_line - line;
        while d_addr > 255 {
            out.extend_from_slice(&[255, 0]);
            d_addr -= 255;
        }
        // `d_addr` fits a byte now; the line increment is a signed byte.
        let mut step = d_line.clamp(-128, 127);
        if d_addr != 0 || d_line != 0 {
            out.extend_from_slice(&[d_addr as u8, step as i8 as u8]);
        }
        d_line -= step;
        while d_line != 0 {
            step = d_line.clamp(-128, 127);
            out.extend_from_slice(&[0, step as i8 as u8]);
            d_line -= step;
        }
        addr = offset;
        line = new_line;
    }
    out
}

/// The repaired table, or `None` when no line boundary sits on an `EXTENDED_ARG` prefix
/// whose instruction belongs to the next line start. `ours(opcode, arg)` says whether the
/// prefixed instruction needs its prefix only because of what the rewrite added (plain code
/// keeps its own quirks).
pub fn fix_extended_args(
    code: &[u8],
    lnotab: &[u8],
    first_line: i32,
    ours: impl Fn(u8, u32) -> bool,
) -> Option<Vec<u8>> {
    let starts = decode(lnotab, first_line);
    // The end of the instruction whose prefix begins at `offset`.
    // The end of the instruction whose prefix begins at `offset`, and the instruction.
    let instruction = |mut offset: usize| {
        let mut arg = 0u32;
        while code.get(offset) == Some(&EXTENDED_ARG) {
            arg = (arg | u32::from(code.get(offset + 1).copied().unwrap_or(0))) << 8;
            offset += 2;
        }
        let opcode = code.get(offset).copied().unwrap_or(0);
        arg |= u32::from(code.get(offset + 1).copied().unwrap_or(0));
        (offset + 2, opcode, arg)
    };
    let mut fixed: Vec<(usize, i32)> = Vec::with_capacity(starts.len());
    let mut changed = false;
    let mut i = 0;
    while i < starts.len() {
        let (offset, line) = starts[i];
        let mut entry = (offset, line);
        if code.get(offset) == Some(&EXTENDED_ARG) {
            if let Some(&(next_offset, next_line)) = starts.get(i + 1) {
                let (end, opcode, arg) = instruction(offset);
                if next_offset < end && ours(opcode, arg) {
                    entry = (offset, next_line);
                    changed = true;
                    i += 1;
                }
            }
        }
        match fixed.last() {
            Some(&(_, prev_line)) if prev_line == entry.1 => {}
            _ => fixed.push(entry),
        }
        i += 1;
    }
    changed.then(|| encode(&fixed, first_line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let starts = vec![(0, 10), (4, 11), (600, 9), (602, 400), (604, 12)];
        assert_eq!(decode(&encode(&starts, 10), 10), starts);
    }

    #[test]
    fn boundary_on_prefix_takes_the_instruction_line() {
        // 0: LOAD_NAME (line 1) | 2: EXTENDED_ARG (line 3) | 4: LOAD_CONST (line 2)
        // 6: STORE_NAME (line 2) | 8: LOAD_NAME (line 3)
        let code = [101, 0, EXTENDED_ARG, 1, 100, 5, 90, 0, 101, 1];
        let table = encode(&[(0, 1), (2, 3), (4, 2), (8, 3)], 1);
        let fixed = fix_extended_args(&code, &table, 1, |_, _| true).expect("a boundary to move");
        assert_eq!(decode(&fixed, 1), vec![(0, 1), (2, 2), (8, 3)]);
        let plain_quirk = fix_extended_args(&code, &table, 1, |op, arg| op == 100 && arg < 256);
        assert_eq!(
            plain_quirk, None,
            "LOAD_CONST 261 needed its prefix in plain code too"
        );
    }

    #[test]
    fn prefix_on_its_own_line_is_left_alone() {
        let code = [101, 0, EXTENDED_ARG, 1, 100, 5, 90, 0];
        let table = encode(&[(0, 1), (2, 2)], 1);
        assert_eq!(fix_extended_args(&code, &table, 1, |_, _| true), None);
    }
}
