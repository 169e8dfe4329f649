//! A small brotli (RFC 7932) encoder for `Content-Encoding: br`.
//!
//! [`compress`] turns a whole response body into one complete brotli stream: LZ77 with a short
//! lazy step over a hash table of 4-byte prefixes (16 candidates a bucket, plus the four most
//! recent distances, which brotli codes in a few bits), then meta-blocks of at most 1 MiB, each
//! with one Huffman code (at most 15 bits) per alphabet built from its own histograms: literals,
//! insert-and-copy lengths, distances. A meta-block that would not get smaller is stored
//! uncompressed, so the output is at most a few bytes larger than the input. Left out on
//! purpose: the static dictionary (122 KB of words plus its lookup tables), context modelling,
//! block splitting and the large window; each buys a few percent for tables and code the
//! bootstrap cannot afford (the `brotli` crate is about 1 MB of the binary; this module is
//! about 20 KB of code, no table over 1 KB, and a hash table of at most 2 MiB, sized to the
//! input, for the length of a call). Measured (x86-64, opt-level 3, against flate2 gzip level 6
//! and the `brotli` crate at quality 4, tower-http's default): a generated 100 KB JSON array
//! 18 853 bytes (gzip 19 391, brotli-4 19 775), `url`'s 204 KB `urltestdata.json` 14 719
//! (15 023, 16 591), a 266 KB rustc lint HTML page 54 167 (58 582, 56 639), the 1.9 MB Rust book
//! `print.html` 402 079 (443 571, 434 310); 60 to 90 MB/s on generated JSON (4 MB and 100 KB),
//! 180 MB/s on `urltestdata.json`, 70 to 100 MB/s on HTML, about 200 MB/s on random bytes.

use std::cmp::{max, min};

/// The largest WBITS used: a 4 MiB window (less 16 bytes).
const MAX_WINDOW_BITS: u32 = 22;
/// The most input bytes in one meta-block, so the Huffman codes follow the data.
const META_BLOCK_SIZE: usize = 1 << 20;
/// The hash table stores positions as `u32` offsets from the start of a segment this long;
/// it is emptied at each segment start (a multiple of [`META_BLOCK_SIZE`]).
const SEGMENT_SIZE: usize = 1 << 30;

/// The complete brotli stream for `input` (decodable by any RFC 7932 decoder).
pub fn compress(input: &[u8]) -> Vec<u8> {
    let window_bits = window_bits(input.len());
    let window = (1usize << window_bits) - 16;
    let mut w = BitWriter::with_capacity(input.len() / 3 + 16);
    write_window_bits(&mut w, window_bits);
    if input.is_empty() {
        // ISLAST, ISLASTEMPTY.
        w.put(2, 0b11);
        return w.finish();
    }
    let mut matcher = Matcher::new(input.len());
    let mut distances = Distances::INITIAL;
    let mut commands = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let end = min(start + META_BLOCK_SIZE, input.len());
        let is_last = end == input.len();
        if start > 0 && start % SEGMENT_SIZE == 0 {
            matcher.reset(start);
        }
        let before = distances;
        commands.clear();
        matcher.parse(input, start, end, window, &mut distances, &mut commands);
        let block = &input[start..end];
        let mark = w.mark();
        write_compressed(&mut w, block, &commands, is_last);
        if w.bits_since(mark) > uncompressed_bits(block.len(), is_last) {
            // The decoder's recent distances do not change in a stored meta-block.
            w.rewind(mark);
            distances = before;
            write_uncompressed(&mut w, block);
            if is_last {
                w.put(2, 0b11);
            }
        }
        start = end;
    }
    w.finish()
}

/// The smallest WBITS of 16..=22 whose window holds the whole input (22 past 4 MiB).
fn window_bits(len: usize) -> u32 {
    (16..MAX_WINDOW_BITS)
        .find(|bits| (1usize << bits) - 16 >= len)
        .unwrap_or(MAX_WINDOW_BITS)
}

/// The stream header (RFC 7932 §9.1) for WBITS 16..=24.
fn write_window_bits(w: &mut BitWriter, bits: u32) {
    match bits {
        16 => w.put(1, 0),
        17 => w.put(7, 1), // 1, then 000 twice
        _ => w.put(4, u64::from(((bits - 17) << 1) | 1)),
    }
}

/// MNIBBLES and MLEN - 1 (the fewest nibbles, as the format requires).
fn write_length(w: &mut BitWriter, len: usize) {
    let value = len as u64 - 1;
    let nibbles = if value < 1 << 16 {
        4
    } else if value < 1 << 20 {
        5
    } else {
        6
    };
    w.put(2, nibbles - 4);
    w.put(4 * nibbles as u32, value);
}

/// Bits an uncompressed meta-block of `len` bytes takes at most (and the empty last one).
fn uncompressed_bits(len: usize, is_last: bool) -> usize {
    // ISLAST, MNIBBLES, MLEN - 1 (up to 24 bits), ISUNCOMPRESSED, padding to a byte.
    let header = 1 + 2 + 24 + 1 + 7;
    header + 8 * len + if is_last { 2 + 7 } else { 0 }
}

/// A stored meta-block: never the last one (the format gives it no ISLAST form).
fn write_uncompressed(w: &mut BitWriter, block: &[u8]) {
    w.put(1, 0); // ISLAST
    write_length(w, block.len());
    w.put(1, 1); // ISUNCOMPRESSED
    w.align();
    w.out.extend_from_slice(block);
}

/// One compressed meta-block: header, the three prefix codes, then the commands.
fn write_compressed(w: &mut BitWriter, block: &[u8], commands: &[Command], is_last: bool) {
    let mut literal_histogram = [0u32; 256];
    let mut command_histogram = [0u32; 704];
    let mut distance_histogram = [0u32; 64];
    let mut at = 0;
    for command in commands {
        let insert = command.insert as usize;
        for &byte in &block[at..at + insert] {
            literal_histogram[usize::from(byte)] += 1;
        }
        at += insert + command.copy as usize;
        command_histogram[usize::from(command.symbol)] += 1;
        if command.distance_symbol != NO_DISTANCE {
            distance_histogram[usize::from(command.distance_symbol)] += 1;
        }
    }

    w.put(1, u64::from(is_last)); // ISLAST
    if is_last {
        w.put(1, 0); // ISLASTEMPTY
    }
    write_length(w, block.len());
    if !is_last {
        w.put(1, 0); // ISUNCOMPRESSED
    }
    // NBLTYPESL, NBLTYPESI, NBLTYPESD = 1; NPOSTFIX = 0; NDIRECT = 0; context mode LSB6;
    // NTREESL = 1; NTREESD = 1.
    w.put(3 + 2 + 4 + 2 + 2, 0);
    let literals = PrefixCode::store(w, &literal_histogram, 8);
    let lengths = PrefixCode::store(w, &command_histogram, 10);
    let distances = PrefixCode::store(w, &distance_histogram, 6);

    let mut at = 0;
    for command in commands {
        let insert = command.insert as usize;
        lengths.put(w, command.symbol);
        let (code, extra) = insert_code(command.insert);
        w.put(INSERT_EXTRA[code], u64::from(extra));
        if command.copy > 0 {
            let (code, extra) = copy_code(command.copy);
            w.put(COPY_EXTRA[code], u64::from(extra));
        }
        for &byte in &block[at..at + insert] {
            literals.put(w, u16::from(byte));
        }
        at += insert + command.copy as usize;
        if command.distance_symbol != NO_DISTANCE {
            distances.put(w, command.distance_symbol);
            w.put(
                u32::from(command.distance_bits),
                u64::from(command.distance_extra),
            );
        }
    }
}

/// Insert length codes: first length and extra bits (RFC 7932 §5).
const INSERT_BASE: [u32; 24] = [
    0, 1, 2, 3, 4, 5, 6, 8, 10, 14, 18, 26, 34, 50, 66, 98, 130, 194, 322, 578, 1090, 2114, 6210,
    22594,
];
const INSERT_EXTRA: [u32; 24] = [
    0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 10, 12, 14, 24,
];
/// Copy length codes: first length and extra bits (RFC 7932 §5).
const COPY_BASE: [u32; 24] = [
    2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 18, 22, 30, 38, 54, 70, 102, 134, 198, 326, 582, 1094, 2118,
];
const COPY_EXTRA: [u32; 24] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 10, 24,
];

fn log2_floor(n: u32) -> u32 {
    31 - n.leading_zeros()
}

/// The insert length code of `len` (< 16799810) and its extra bits' value.
fn insert_code(len: u32) -> (usize, u32) {
    let code = if len < 6 {
        len
    } else if len < 130 {
        let bits = log2_floor(len - 2) - 1;
        (bits << 1) + ((len - 2) >> bits) + 2
    } else if len < 2114 {
        log2_floor(len - 66) + 10
    } else if len < 6210 {
        21
    } else if len < 22594 {
        22
    } else {
        23
    } as usize;
    (code, len - INSERT_BASE[code])
}

/// The copy length code of `len` (2..16779334) and its extra bits' value.
fn copy_code(len: u32) -> (usize, u32) {
    let code = if len < 10 {
        len - 2
    } else if len < 134 {
        let bits = log2_floor(len - 6) - 1;
        (bits << 1) + ((len - 6) >> bits) + 4
    } else if len < 2118 {
        log2_floor(len - 70) + 12
    } else {
        23
    } as usize;
    (code, len - COPY_BASE[code])
}

/// The insert-and-copy symbol (RFC 7932 §5, last table). With `last_distance`, a command that
/// fits symbols 0..127 takes them, which imply distance code 0 and carry no distance.
fn command_symbol(insert_code: usize, copy_code: usize, last_distance: bool) -> u16 {
    let low = ((copy_code & 7) | ((insert_code & 7) << 3)) as u16;
    if last_distance && insert_code < 8 && copy_code < 16 {
        if copy_code < 8 { low } else { low | 64 }
    } else {
        // The 64-symbol cells, in units of 64, for (insert code / 8, copy code / 8).
        const CELL: [u16; 9] = [2, 3, 6, 4, 5, 8, 7, 9, 10];
        CELL[(copy_code >> 3) + 3 * (insert_code >> 3)] * 64 + low
    }
}

/// No distance follows the command (implicit distance code 0, or the meta-block's end).
const NO_DISTANCE: u16 = u16::MAX;

/// One command: `insert` literals, then `copy` bytes from a distance back (`copy == 0`: only
/// the literals, which end the meta-block).
#[derive(Debug, Clone, Copy)]
struct Command {
    insert: u32,
    copy: u32,
    symbol: u16,
    distance_symbol: u16,
    distance_bits: u8,
    distance_extra: u32,
}

impl Command {
    /// A command copying `copy` bytes from `distance` back; updates `recent` as the decoder will.
    fn copy(insert: u32, copy: u32, distance: usize, recent: &mut Distances) -> Self {
        let (insert_code, _) = insert_code(insert);
        let (copy_code, _) = copy_code(copy);
        let (distance_symbol, distance_bits, distance_extra) = match recent.short_code(distance) {
            Some(code) => (code, 0, 0),
            None => distance_code(distance),
        };
        if distance_symbol != 0 {
            recent.push(distance);
        }
        let symbol = command_symbol(insert_code, copy_code, distance_symbol == 0);
        let implicit = symbol < 128;
        Self {
            insert,
            copy,
            symbol,
            distance_symbol: if implicit {
                NO_DISTANCE
            } else {
                distance_symbol
            },
            distance_bits,
            distance_extra,
        }
    }

    /// The last command of a meta-block that ends with literals: its copy part is not read.
    fn literals(insert: u32) -> Self {
        let (insert_code, _) = insert_code(insert);
        Self {
            insert,
            copy: 0,
            symbol: command_symbol(insert_code, 0, true),
            distance_symbol: NO_DISTANCE,
            distance_bits: 0,
            distance_extra: 0,
        }
    }
}

/// Distance code (16..63, NPOSTFIX = NDIRECT = 0), its extra bit count and value.
fn distance_code(distance: usize) -> (u16, u8, u32) {
    let d = distance + 3;
    let bucket = usize::BITS - 1 - d.leading_zeros() - 1;
    let prefix = (d >> bucket) & 1;
    let code = 16 + 2 * (bucket as usize - 1) + prefix;
    let extra = d - ((2 + prefix) << bucket);
    (code as u16, bucket as u8, extra as u32)
}

/// The decoder's ring buffer of the last four distances, newest first.
#[derive(Debug, Clone, Copy)]
struct Distances([usize; 4]);

impl Distances {
    const INITIAL: Self = Self([4, 11, 15, 16]);

    fn push(&mut self, distance: usize) {
        self.0 = [distance, self.0[0], self.0[1], self.0[2]];
    }

    /// Distance codes 0..15: the recent distances and the last two plus or minus 1..3.
    fn short_code(&self, distance: usize) -> Option<u16> {
        let [last, second, third, fourth] = self.0;
        let from_last = (distance + 3).wrapping_sub(last);
        let from_second = (distance + 3).wrapping_sub(second);
        if distance == last {
            Some(0)
        } else if distance == second {
            Some(1)
        } else if from_last < 7 {
            // last - 3, - 2, - 1, (last), + 1, + 2, + 3 are codes 8, 6, 4, 0, 5, 7, 9.
            Some(((0x975_0468u32 >> (4 * from_last)) & 0xF) as u16)
        } else if from_second < 7 {
            // second - 3 .. second + 3 are codes 14, 12, 10, 1, 11, 13, 15.
            Some(((0xFDB_1ACEu32 >> (4 * from_second)) & 0xF) as u16)
        } else if distance == third {
            Some(2)
        } else if distance == fourth {
            Some(3)
        } else {
            None
        }
    }
}

/// Match scores: 135 for each byte copied, less 30 for each bit of distance (the heuristic of
/// brotli's own encoder); a match must score over [`MIN_SCORE`].
const SCORE_BASE: usize = 1920;
const MIN_SCORE: usize = SCORE_BASE + 100;
/// How much better a match one byte later must score to be taken instead.
const LAZY_GAIN: usize = 175;
/// Candidates per hash bucket.
const WAYS: usize = 16;
/// Matches this long are taken without looking for a better one a byte later.
const LAZY_MAX_LEN: usize = 32;
/// An empty hash slot.
const EMPTY: u32 = u32::MAX;
/// Literals after which matching starts skipping positions (incompressible data).
const RANDOM_WINDOW: usize = 64;

fn score(len: usize, distance: usize) -> usize {
    SCORE_BASE + 135 * len - 30 * (usize::BITS - 1 - distance.leading_zeros()) as usize
}

fn recent_score(len: usize, index: usize) -> usize {
    let penalty = if index == 0 {
        0
    } else {
        39 + ((0x1CA10 >> (index & 0xE)) & 0xE)
    };
    135 * len + SCORE_BASE + 15 - penalty
}

#[derive(Debug, Clone, Copy)]
struct Match {
    len: usize,
    distance: usize,
    score: usize,
}

impl Match {
    /// Takes the candidate if it scores higher; says whether it did.
    fn offer(&mut self, len: usize, distance: usize, score: usize) -> bool {
        let better = score > self.score;
        if better {
            *self = Match {
                len,
                distance,
                score,
            };
        }
        better
    }
}

/// One hash bucket: the latest positions with that hash, newest first, in one cache line.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Bucket([u32; WAYS]);

impl Bucket {
    fn push(&mut self, position: u32) {
        self.0.copy_within(..WAYS - 1, 1);
        self.0[0] = position;
    }
}

/// The LZ77 match finder: a bucket of the latest [`WAYS`] positions per 4-byte hash.
#[derive(Debug)]
struct Matcher {
    shift: u32,
    buckets: Vec<Bucket>,
    base: usize,
}

impl Matcher {
    /// A table sized to the input: about one slot per input byte, 2^7..=2^15 buckets.
    fn new(len: usize) -> Self {
        let bits = (usize::BITS - len.leading_zeros()).clamp(11, 19) - 4;
        Self {
            shift: 32 - bits,
            buckets: vec![Bucket([EMPTY; WAYS]); 1 << bits],
            base: 0,
        }
    }

    fn reset(&mut self, base: usize) {
        self.buckets.fill(Bucket([EMPTY; WAYS]));
        self.base = base;
    }

    fn bucket(&self, data: &[u8], at: usize) -> usize {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&data[at..at + 4]);
        (u32::from_le_bytes(bytes).wrapping_mul(0x1E35_A7BD) >> self.shift) as usize
    }

    /// Records position `at` (which has 4 bytes after it in `data`).
    fn store(&mut self, data: &[u8], at: usize) {
        let bucket = self.bucket(data, at);
        self.buckets[bucket].push((at - self.base) as u32);
    }

    /// The best-scoring match at `at` no longer than `max_len` nor farther than `max_distance`
    /// (only one longer than `hint` is looked for in the hash table); then records `at`.
    fn find(
        &mut self,
        data: &[u8],
        at: usize,
        max_len: usize,
        max_distance: usize,
        recent: &Distances,
        hint: usize,
    ) -> Option<Match> {
        let mut best = Match {
            len: 0,
            distance: 0,
            score: MIN_SCORE,
        };
        let mut best_len = hint;
        for (index, &distance) in recent.0.iter().enumerate() {
            if distance > max_distance || best_len >= max_len {
                continue;
            }
            let from = at - distance;
            if data[from + best_len] != data[at + best_len] {
                continue;
            }
            let len = match_len(data, from, at, max_len);
            if (len >= 3 || (len == 2 && index < 2))
                && best.offer(len, distance, recent_score(len, index))
            {
                best_len = len;
            }
        }
        let bucket = self.bucket(data, at);
        let relative = at - self.base;
        for &stored in &self.buckets[bucket].0 {
            // Newest first: past an empty slot or the window, the rest is no use either.
            let stored = stored as usize;
            if stored >= relative || relative - stored > max_distance || best_len >= max_len {
                break;
            }
            let distance = relative - stored;
            let from = at - distance;
            if data[from + best_len] != data[at + best_len] {
                continue;
            }
            let len = match_len(data, from, at, max_len);
            if len >= 4 && best.offer(len, distance, score(len, distance)) {
                best_len = len;
            }
        }
        self.buckets[bucket].push(relative as u32);
        (best.score > MIN_SCORE).then_some(best)
    }

    /// Commands for `data[start..end]`, matching back into everything before it.
    fn parse(
        &mut self,
        data: &[u8],
        start: usize,
        end: usize,
        window: usize,
        recent: &mut Distances,
        commands: &mut Vec<Command>,
    ) {
        // Positions stored must have 4 bytes to hash, and belong to this meta-block.
        let store_end = min(end, data.len().saturating_sub(3));
        let mut at = start;
        let mut literals_from = start;
        let mut skip_after = start + RANDOM_WINDOW;
        while at + 4 < end {
            let found = self.find(data, at, end - at, min(at, window), recent, 0);
            let Some(mut found) = found else {
                at += 1;
                if at > skip_after {
                    // Long without a match: likely incompressible, so look less often.
                    let step = if at > skip_after + 4 * RANDOM_WINDOW {
                        4
                    } else {
                        2
                    };
                    let jump = min(at + 4 * step, end - 4);
                    while at < jump {
                        self.store(data, at);
                        at += step;
                    }
                }
                continue;
            };
            // A better match one byte later makes this byte a literal (up to 4 times); a
            // long match is taken as it is.
            let mut delayed = 0;
            while found.len < LAZY_MAX_LEN && delayed < 4 && at + 4 < end {
                let next = at + 1;
                let hint = min(found.len - 1, end - next);
                match self.find(data, next, end - next, min(next, window), recent, hint) {
                    Some(later) if later.score >= found.score + LAZY_GAIN => {
                        at = next;
                        found = later;
                        delayed += 1;
                    }
                    _ => break,
                }
            }
            let insert = (at - literals_from) as u32;
            commands.push(Command::copy(
                insert,
                found.len as u32,
                found.distance,
                recent,
            ));
            skip_after = at + 2 * found.len + RANDOM_WINDOW;
            // Positions inside the match; for a run (short distance) only its last part.
            let range_end = min(at + found.len, store_end);
            let mut range_start = at + 2;
            if found.distance < found.len >> 2 {
                range_start = max(range_start, at + found.len - (found.distance << 2));
            }
            for position in range_start..range_end {
                self.store(data, position);
            }
            at += found.len;
            literals_from = at;
        }
        if literals_from < end {
            commands.push(Command::literals((end - literals_from) as u32));
        }
    }
}

/// How many bytes at `from` and `at` agree, up to `limit` (`at + limit <= data.len()`).
fn match_len(data: &[u8], from: usize, at: usize, limit: usize) -> usize {
    let a = &data[from..from + limit];
    let b = &data[at..at + limit];
    let mut len = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let diff = load64(x) ^ load64(y);
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < limit && a[len] == b[len] {
        len += 1;
    }
    len
}

fn load64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// Order in which the code length code lengths are stored (RFC 7932 §3.5).
const CODE_LENGTH_ORDER: [usize; 18] =
    [1, 2, 3, 4, 0, 5, 17, 6, 16, 7, 8, 9, 10, 11, 12, 13, 14, 15];
/// The fixed code for code length code lengths 0..=5, as bits read first-to-last from the LSB.
const CODE_LENGTH_LENGTH_BITS: [u64; 6] = [0, 7, 3, 2, 1, 15];
const CODE_LENGTH_LENGTH_SIZE: [u32; 6] = [2, 4, 3, 2, 2, 4];
/// Code length code symbols: repeat the previous non-zero length, repeat zero.
const REPEAT_PREVIOUS: u8 = 16;
const REPEAT_ZERO: u8 = 17;

/// A canonical prefix code: each symbol's length and its bits in writing order.
#[derive(Debug)]
struct PrefixCode {
    lengths: Vec<u8>,
    bits: Vec<u16>,
}

impl PrefixCode {
    /// Writes the prefix code for `histogram` (simple when it uses at most 4 symbols) and
    /// returns it. `alphabet_bits` is the width of a symbol in a simple prefix code.
    fn store(w: &mut BitWriter, histogram: &[u32], alphabet_bits: u32) -> Self {
        let mut lengths = vec![0u8; histogram.len()];
        huffman_lengths(histogram, 15, &mut lengths);
        let mut used: Vec<usize> = (0..histogram.len())
            .filter(|&s| histogram[s] > 0)
            .take(5)
            .collect();
        if used.len() <= 4 {
            // HSKIP = 1, NSYM - 1, the symbols by code length, then the tree shape for 4.
            if used.len() <= 1 {
                // One symbol (or none used): it takes no bits.
                lengths.fill(0);
                used = vec![used.first().copied().unwrap_or(0)];
            }
            used.sort_by_key(|&s| (lengths[s], s));
            w.put(2, 1);
            w.put(2, used.len() as u64 - 1);
            for &symbol in &used {
                w.put(alphabet_bits, symbol as u64);
            }
            if used.len() == 4 {
                w.put(1, u64::from(lengths[used[0]] == 1));
            }
        } else {
            store_lengths(w, &lengths);
        }
        let bits = canonical_bits(&lengths);
        Self { lengths, bits }
    }

    fn put(&self, w: &mut BitWriter, symbol: u16) {
        let symbol = usize::from(symbol);
        w.put(
            u32::from(self.lengths[symbol]),
            u64::from(self.bits[symbol]),
        );
    }
}

/// A complex prefix code (RFC 7932 §3.5): the code lengths, run-length coded with symbols 16
/// and 17, themselves prefix coded by a code whose lengths (at most 5) come first.
fn store_lengths(w: &mut BitWriter, lengths: &[u8]) {
    let mut tokens = Vec::new();
    run_length_tokens(lengths, &mut tokens);
    let mut histogram = [0u32; 18];
    for &(token, _) in &tokens {
        histogram[usize::from(token)] += 1;
    }
    let mut code_lengths = [0u8; 18];
    huffman_lengths(&histogram, 5, &mut code_lengths);
    let used = histogram.iter().filter(|&&n| n > 0).count();
    let mut stored = 18;
    if used > 1 {
        // The decoder stops reading once the code is complete: no trailing zeros.
        while code_lengths[CODE_LENGTH_ORDER[stored - 1]] == 0 {
            stored -= 1;
        }
    }
    let mut skip = 0;
    if code_lengths[CODE_LENGTH_ORDER[0]] == 0 && code_lengths[CODE_LENGTH_ORDER[1]] == 0 {
        skip = if code_lengths[CODE_LENGTH_ORDER[2]] == 0 {
            3
        } else {
            2
        };
    }
    w.put(2, skip as u64); // HSKIP
    for &symbol in &CODE_LENGTH_ORDER[skip..stored] {
        let length = usize::from(code_lengths[symbol]);
        w.put(
            CODE_LENGTH_LENGTH_SIZE[length],
            CODE_LENGTH_LENGTH_BITS[length],
        );
    }
    if used == 1 {
        // A code of one symbol takes no bits (its stored length only says it is used).
        code_lengths.fill(0);
    }
    let bits = canonical_bits(&code_lengths);
    for &(token, extra) in &tokens {
        let token = usize::from(token);
        w.put(u32::from(code_lengths[token]), u64::from(bits[token]));
        match token as u8 {
            REPEAT_PREVIOUS => w.put(2, u64::from(extra)),
            REPEAT_ZERO => w.put(3, u64::from(extra)),
            _ => {}
        }
    }
}

/// Code length symbols with their extra bits for `lengths`, trailing zeros left out (the
/// same run-length choices as brotli's reference encoder).
fn run_length_tokens(lengths: &[u8], tokens: &mut Vec<(u8, u8)>) {
    let end = lengths
        .iter()
        .rposition(|&l| l != 0)
        .map_or(0, |last| last + 1);
    let lengths = &lengths[..end];
    let runs = |value_is_zero: bool, min_run: usize| {
        let (mut total, mut count) = (0, 1);
        let mut i = 0;
        while i < lengths.len() {
            let run = lengths[i..]
                .iter()
                .take_while(|&&l| l == lengths[i])
                .count();
            if (lengths[i] == 0) == value_is_zero && run >= min_run {
                total += run;
                count += 1;
            }
            i += run;
        }
        total > 2 * count
    };
    let rle_zero = runs(true, 3);
    let rle_non_zero = runs(false, 4);
    let mut previous = 8;
    let mut i = 0;
    while i < lengths.len() {
        let value = lengths[i];
        let run = if (value == 0 && rle_zero) || (value != 0 && rle_non_zero) {
            lengths[i..].iter().take_while(|&&l| l == value).count()
        } else {
            1
        };
        if value == 0 {
            repeat_zeros(run, tokens);
        } else {
            repeat_length(previous, value, run, tokens);
            previous = value;
        }
        i += run;
    }
}

fn repeat_zeros(mut run: usize, tokens: &mut Vec<(u8, u8)>) {
    if run == 11 {
        tokens.push((0, 0));
        run -= 1;
    }
    if run < 3 {
        tokens.extend(std::iter::repeat_n((0, 0), run));
        return;
    }
    push_repeat(REPEAT_ZERO, 3, run, tokens);
}

/// `run` (≥ 3) as consecutive repeat codes `code` with `bits` extra bits each: consecutive
/// repeat codes multiply, and the decoder reads the digits most significant first.
fn push_repeat(code: u8, bits: u32, mut run: usize, tokens: &mut Vec<(u8, u8)>) {
    let mask = (1 << bits) - 1;
    let first = tokens.len();
    run -= 3;
    loop {
        tokens.push((code, (run & mask) as u8));
        run >>= bits;
        if run == 0 {
            break;
        }
        run -= 1;
    }
    tokens[first..].reverse();
}

fn repeat_length(previous: u8, value: u8, mut run: usize, tokens: &mut Vec<(u8, u8)>) {
    if previous != value {
        tokens.push((value, 0));
        run -= 1;
    }
    if run == 7 {
        tokens.push((value, 0));
        run -= 1;
    }
    if run < 3 {
        tokens.extend(std::iter::repeat_n((value, 0), run));
        return;
    }
    push_repeat(REPEAT_PREVIOUS, 2, run, tokens);
}

/// Huffman code lengths of at most `limit` bits for `histogram` into `lengths` (0 for unused
/// symbols; a lone used symbol gets 1). Over the limit, rarer symbols' counts are raised to a
/// floor that doubles until the tree is shallow enough.
fn huffman_lengths(histogram: &[u32], limit: u8, lengths: &mut [u8]) {
    lengths.fill(0);
    let used: Vec<usize> = (0..histogram.len()).filter(|&s| histogram[s] > 0).collect();
    if used.len() == 1 {
        lengths[used[0]] = 1;
    }
    if used.len() < 2 {
        return;
    }
    let n = used.len();
    let mut leaves: Vec<(u64, usize)> = Vec::with_capacity(n);
    let mut weight: Vec<u64> = Vec::with_capacity(2 * n);
    let mut parent = vec![0usize; 2 * n - 1];
    let mut depth = vec![0u8; 2 * n - 1];
    let mut floor = 1u64;
    loop {
        leaves.clear();
        leaves.extend(
            used.iter()
                .map(|&s| (max(u64::from(histogram[s]), floor), s)),
        );
        leaves.sort_unstable();
        weight.clear();
        weight.extend(leaves.iter().map(|&(count, _)| count));
        // Two queues: the sorted leaves, and the internal nodes in the order they are made.
        let (mut leaf, mut inner) = (0, n);
        for node in n..2 * n - 1 {
            let mut smallest = || {
                if leaf < n && (inner >= node || weight[leaf] <= weight[inner]) {
                    leaf += 1;
                    leaf - 1
                } else {
                    inner += 1;
                    inner - 1
                }
            };
            let (a, b) = (smallest(), smallest());
            parent[a] = node;
            parent[b] = node;
            weight.push(weight[a] + weight[b]);
        }
        depth[2 * n - 2] = 0;
        for node in (0..2 * n - 2).rev() {
            depth[node] = depth[parent[node]] + 1;
        }
        if depth[..n].iter().all(|&d| d <= limit) {
            for (i, &(_, symbol)) in leaves.iter().enumerate() {
                lengths[symbol] = depth[i];
            }
            return;
        }
        floor *= 2;
    }
}

/// Canonical codes for `lengths` (shorter first, then by symbol), bit-reversed for writing.
fn canonical_bits(lengths: &[u8]) -> Vec<u16> {
    let mut count = [0u16; 16];
    for &length in lengths {
        count[usize::from(length)] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for bits in 1..16 {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&length| {
            if length == 0 {
                return 0;
            }
            let code = next[usize::from(length)];
            next[usize::from(length)] += 1;
            code.reverse_bits() >> (16 - u32::from(length))
        })
        .collect()
}

/// Bits packed least significant first, as brotli reads them.
#[derive(Debug)]
struct BitWriter {
    out: Vec<u8>,
    pending: u64,
    count: u32,
}

/// A position in a [`BitWriter`] to measure from or go back to.
#[derive(Debug, Clone, Copy)]
struct Mark {
    len: usize,
    pending: u64,
    count: u32,
}

impl BitWriter {
    fn with_capacity(bytes: usize) -> Self {
        Self {
            out: Vec::with_capacity(bytes),
            pending: 0,
            count: 0,
        }
    }

    /// Appends the low `n` (at most 32) bits of `value` (which has no higher bits).
    fn put(&mut self, n: u32, value: u64) {
        debug_assert!(n <= 32 && value >> n == 0, "{value} does not fit {n} bits");
        self.pending |= value << self.count;
        self.count += n;
        if self.count >= 32 {
            self.out
                .extend_from_slice(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.count -= 32;
        }
    }

    /// Pads with zero bits to a byte boundary and moves every whole byte to `out`.
    fn align(&mut self) {
        self.count = self.count.next_multiple_of(8);
        while self.count > 0 {
            self.out.push(self.pending as u8);
            self.pending >>= 8;
            self.count -= 8;
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            len: self.out.len(),
            pending: self.pending,
            count: self.count,
        }
    }

    fn bits_since(&self, mark: Mark) -> usize {
        (self.out.len() * 8 + self.count as usize) - (mark.len * 8 + mark.count as usize)
    }

    fn rewind(&mut self, mark: Mark) {
        self.out.truncate(mark.len);
        self.pending = mark.pending;
        self.count = mark.count;
    }

    fn finish(mut self) -> Vec<u8> {
        self.align();
        self.out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::io::Read;

    /// What a reference decoder (the `brotli` crate) makes of `compressed`; the compression
    /// layer's tests use it too.
    pub(crate) fn decode(compressed: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        ::brotli::Decompressor::new(compressed, 4096)
            .read_to_end(&mut out)
            .expect("a valid brotli stream");
        out
    }

    /// Compresses, checks the decoder gives `input` back, returns the compressed size.
    fn round_trip(input: &[u8]) -> usize {
        let compressed = compress(input);
        let decoded = decode(&compressed);
        assert!(
            decoded == input,
            "round trip of {} bytes gave {} different bytes",
            input.len(),
            decoded.len()
        );
        compressed.len()
    }

    /// xorshift64*: deterministic test data without extra crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// A JSON array of user records, as an API would answer.
    fn json_body(rng: &mut Rng, min_len: usize) -> Vec<u8> {
        const NAMES: [&str; 12] = [
            "Ana", "Bruno", "Chen", "Dmitri", "Eva", "Farah", "Gustav", "Hana", "Ivan", "Jun",
            "Kofi", "Lena",
        ];
        const CITIES: [&str; 8] = [
            "Lisbon", "Osaka", "Nairobi", "Toronto", "Berlin", "Lima", "Perth", "Oslo",
        ];
        const TAGS: [&str; 10] = [
            "admin", "beta", "vip", "trial", "staff", "partner", "eu", "us", "apac", "legacy",
        ];
        let mut s = String::from("[");
        let mut id = 1000;
        while s.len() < min_len {
            if id > 1000 {
                s.push(',');
            }
            id += 1 + rng.below(3);
            let name = NAMES[rng.below(NAMES.len())];
            let tags: Vec<String> = (0..rng.below(4))
                .map(|_| format!("\"{}\"", TAGS[rng.below(TAGS.len())]))
                .collect();
            let _ = write!(
                s,
                "{{\"id\":{id},\"uuid\":\"{:08x}-{:04x}\",\"name\":\"{name} {}\",\
                 \"email\":\"{}.{id}@example.com\",\"active\":{},\"balance\":{}.{:02},\
                 \"city\":\"{}\",\"tags\":[{}],\"created_at\":\"2024-{:02}-{:02}T{:02}:{:02}:00Z\"}}",
                rng.next() as u32,
                rng.next() as u16,
                NAMES[rng.below(NAMES.len())],
                name.to_lowercase(),
                rng.below(2) == 0,
                rng.below(100_000),
                rng.below(100),
                CITIES[rng.below(CITIES.len())],
                tags.join(","),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
            );
        }
        s.push(']');
        s.into_bytes()
    }

    /// An HTML page of repeated markup with varying text.
    fn html_body(rng: &mut Rng, min_len: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "lambda",
            "server",
            "request",
            "the",
            "of",
            "and",
            "deploy",
            "stage",
            "function",
            "response",
            "a",
            "to",
            "cold",
            "start",
            "proxy",
            "bootstrap",
        ];
        let mut s = String::from("<!doctype html><html><head><title>Docs</title></head><body>");
        let mut i = 0;
        while s.len() < min_len {
            i += 1;
            let _ = write!(
                s,
                "<div class=\"entry\" id=\"e{i}\"><h2><a href=\"/docs/{i}\">Entry {i}</a></h2><p>"
            );
            for _ in 0..8 + rng.below(24) {
                s.push_str(WORDS[rng.below(WORDS.len())]);
                s.push(' ');
            }
            s.push_str("</p></div>\n");
        }
        s.push_str("</body></html>");
        s.into_bytes()
    }

    /// Size of `input` as the compression layer gzips it (level 6).
    fn gzip6(input: &[u8]) -> usize {
        crate::middleware::compression::gzip(input)
            .expect("gzip into memory")
            .len()
    }

    /// One meta-block written from hand-made commands (`block` is what they produce).
    fn stream_of(block: &[u8], commands: &[Command]) -> Vec<u8> {
        let mut w = BitWriter::with_capacity(block.len());
        write_window_bits(&mut w, MAX_WINDOW_BITS);
        write_compressed(&mut w, block, commands, true);
        w.finish()
    }

    /// The commands `compress` makes for `input` when no meta-block is stored uncompressed.
    fn commands_of(input: &[u8]) -> Vec<Command> {
        let window = (1usize << window_bits(input.len())) - 16;
        let mut matcher = Matcher::new(input.len());
        let mut recent = Distances::INITIAL;
        let mut commands = Vec::new();
        for start in (0..input.len()).step_by(META_BLOCK_SIZE) {
            let end = min(start + META_BLOCK_SIZE, input.len());
            matcher.parse(input, start, end, window, &mut recent, &mut commands);
        }
        commands
    }

    /// The distance of each copy, worked out as the decoder does (RFC 7932 §4).
    fn copy_distances(commands: &[Command]) -> Vec<usize> {
        let mut ring = [4usize, 11, 15, 16];
        let mut out = Vec::new();
        for command in commands.iter().filter(|c| c.copy > 0) {
            let code = match command.distance_symbol {
                NO_DISTANCE => 0,
                code => usize::from(code),
            };
            let distance = match code {
                0..=3 => ring[code],
                4..=15 => {
                    let (base, step) = (ring[(code - 4) / 6], (code - 4) % 6);
                    let delta = step / 2 + 1;
                    if step % 2 == 0 {
                        base - delta
                    } else {
                        base + delta
                    }
                }
                _ => {
                    let bits = u32::from(command.distance_bits);
                    assert_eq!(bits as usize, 1 + ((code - 16) >> 1));
                    let offset = ((2 + ((code - 16) & 1)) << bits) - 4;
                    offset + command.distance_extra as usize + 1
                }
            };
            if code != 0 {
                ring = [distance, ring[0], ring[1], ring[2]];
            }
            out.push(distance);
        }
        out
    }

    #[test]
    fn empty_input_is_the_one_byte_empty_stream() {
        assert_eq!(compress(&[]), [0x06]);
        assert!(decode(&compress(&[])).is_empty());
    }

    #[test]
    fn single_bytes_round_trip() {
        for byte in [0u8, b'a', 0xFF] {
            assert!(round_trip(&[byte]) <= 6);
        }
        round_trip(b"ab");
        round_trip(b"aaaaa");
    }

    #[test]
    fn all_byte_values_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        round_trip(&all);
        let reversed: Vec<u8> = all.iter().rev().copied().collect();
        round_trip(&reversed);
        // Every literal once with the same code length: the code length code has one symbol.
        let repeated = all.repeat(40);
        assert!(round_trip(&repeated) < 400);
    }

    #[test]
    fn long_runs_round_trip_with_copies_at_every_length_code_boundary() {
        let mut lengths: Vec<usize> = COPY_BASE
            .iter()
            .flat_map(|&base| [base - 1, base, base + 1])
            .map(|n| n as usize)
            .collect();
        lengths.extend([16 * 1024, 20_000, 100_000]);
        for n in lengths {
            // "q", then n + 1 bytes of "a": one literal "a" and a copy of n at distance 1.
            let mut input = vec![b'q'];
            input.resize(n + 2, b'a');
            input.push(b'z');
            let size = round_trip(&input);
            if n >= 16 {
                let copies: Vec<u32> = commands_of(&input).iter().map(|c| c.copy).collect();
                assert!(copies.contains(&(n as u32)), "{n}: copies {copies:?}");
                assert!(size < 40, "a run of {n} took {size} bytes");
            }
        }
        // A run across several meta-blocks.
        let run = vec![7u8; 3 * META_BLOCK_SIZE + 12_345];
        assert!(round_trip(&run) < 100);
    }

    #[test]
    fn hand_made_commands_at_every_length_code_boundary_decode_exactly() {
        let mut rng = Rng(0x1234_5678);
        // Insert lengths, ending the meta-block after the literals.
        let inserts = INSERT_BASE
            .iter()
            .flat_map(|&base| [base.saturating_sub(1), base, base + 1])
            .filter(|&n| (1..=META_BLOCK_SIZE as u32).contains(&n));
        for insert in inserts {
            let block = rng.bytes(insert as usize);
            let stream = stream_of(&block, &[Command::literals(insert)]);
            assert_eq!(decode(&stream), block, "insert {insert}");
        }
        // Copy lengths at distance 1 after every insert length code, then a last insert.
        for (i, &copy) in COPY_BASE.iter().enumerate() {
            for copy in [
                copy,
                copy + 1,
                COPY_BASE.get(i + 1).map_or(copy + 5, |n| n - 1),
            ] {
                let insert = INSERT_BASE[i];
                let mut block = rng.bytes(insert as usize + 1);
                let byte = block[block.len() - 1];
                block.resize(block.len() + copy as usize, byte);
                block.push(b'!');
                let mut recent = Distances::INITIAL;
                let commands = [
                    Command::copy(insert + 1, copy, 1, &mut recent),
                    Command::literals(1),
                ];
                let stream = stream_of(&block, &commands);
                assert_eq!(decode(&stream), block, "insert {insert}, copy {copy}");
            }
        }
    }

    #[test]
    fn commands_with_every_kind_of_distance_decode_exactly() {
        // Random commands, many reusing recent distances (codes 0..15, implicit or not),
        // decoded against what they mean.
        let mut rng = Rng(0xD15_7A9CE);
        for case in 0..200 {
            // The first command's literals start the block.
            let mut pending = 1 + rng.below(40);
            let mut block = rng.bytes(pending);
            let mut recent = Distances::INITIAL;
            let mut used = vec![16usize, 15, 11, 4];
            let mut commands = Vec::new();
            for _ in 0..1 + rng.below(60) {
                let longer = rng.below(4) == 0;
                let insert = rng.below(if longer { 300 } else { 8 });
                block.extend(rng.bytes(insert));
                let longer = rng.below(4) == 0;
                let copy = 2 + rng.below(if longer { 3000 } else { 60 });
                let last = used[used.len() - 1];
                let distance = match rng.below(6) {
                    0 => used[used.len() - 1 - rng.below(4)],
                    1 => (last + rng.below(7)).saturating_sub(3),
                    2 => (used[used.len() - 2] + rng.below(7)).saturating_sub(3),
                    _ => 1 + rng.below(block.len()),
                };
                let distance = distance.clamp(1, block.len());
                for _ in 0..copy {
                    block.push(block[block.len() - distance]);
                }
                let insert = (insert + std::mem::take(&mut pending)) as u32;
                commands.push(Command::copy(insert, copy as u32, distance, &mut recent));
                used.push(distance);
            }
            let tail = rng.below(3);
            block.extend(rng.bytes(tail));
            if tail > 0 {
                commands.push(Command::literals(tail as u32));
            }
            assert_eq!(
                copy_distances(&commands),
                used[4..],
                "case {case}: distances as the decoder reads them"
            );
            assert_eq!(decode(&stream_of(&block, &commands)), block, "case {case}");
        }
    }

    #[test]
    fn length_codes_follow_the_rfc_tables() {
        let check = |len: u32, (code, extra): (usize, u32), base: &[u32; 24], bits: &[u32; 24]| {
            let expected = base.iter().rposition(|&b| b <= len).expect("a code");
            assert_eq!(code, expected, "length {len}");
            assert_eq!(extra, len - base[code]);
            assert!(u64::from(extra) < 1 << bits[code], "length {len}");
        };
        for len in (0..30_000).chain([1 << 20, (1 << 20) + 1, 16_799_809]) {
            check(len, insert_code(len), &INSERT_BASE, &INSERT_EXTRA);
            if (2..=16_779_333).contains(&len) {
                check(len, copy_code(len), &COPY_BASE, &COPY_EXTRA);
            }
        }
    }

    #[test]
    fn command_symbols_fill_the_rfc_cells() {
        // (insert code, copy code, implicit distance) -> symbol, per RFC 7932 section 5.
        let cases = [
            (0, 0, true, 0),
            (7, 7, true, 63),
            (0, 8, true, 64),
            (7, 15, true, 127),
            (0, 0, false, 128),
            (0, 8, false, 192),
            (8, 0, false, 256),
            (8, 8, false, 320),
            (0, 16, false, 384),
            (16, 0, false, 448),
            (8, 16, false, 512),
            (16, 8, false, 576),
            (16, 16, false, 640),
            (23, 23, false, 703),
            // No implicit-distance cell: the explicit one.
            (8, 0, true, 256),
            (0, 16, true, 384),
            (3, 5, false, 128 + 3 * 8 + 5),
        ];
        for (insert, copy, implicit, symbol) in cases {
            assert_eq!(
                command_symbol(insert, copy, implicit),
                symbol,
                "{insert} {copy}"
            );
        }
    }

    #[test]
    fn distance_codes_cover_every_distance_of_the_window() {
        assert_eq!(distance_code(1), (16, 1, 0));
        assert_eq!(distance_code(2), (16, 1, 1));
        assert_eq!(distance_code(3), (17, 1, 0));
        for distance in (1..100_000).chain((1 << 22) - 100..=(1 << 22) - 16) {
            let (code, bits, extra) = distance_code(distance);
            let code = usize::from(code);
            assert!((16..64).contains(&code));
            assert_eq!(usize::from(bits), 1 + ((code - 16) >> 1));
            assert!(u64::from(extra) < 1 << bits);
            let offset = ((2 + ((code - 16) & 1)) << bits) - 4;
            assert_eq!(offset + extra as usize + 1, distance);
        }
    }

    #[test]
    fn small_alphabets_use_simple_prefix_codes_and_round_trip() {
        let mut rng = Rng(42);
        for symbols in 1..=6u8 {
            for skew in [false, true] {
                let input: Vec<u8> = (0..5000)
                    .map(|_| {
                        let pick = if skew {
                            // Geometric: one symbol dominates, codes of unequal lengths.
                            (rng.next().trailing_zeros() as u8).min(symbols - 1)
                        } else {
                            rng.below(usize::from(symbols)) as u8
                        };
                        b'a' + pick
                    })
                    .collect();
                let size = round_trip(&input);
                assert!(size < input.len() / 2, "{symbols} symbols: {size} bytes");
            }
        }
    }

    #[test]
    fn incompressible_data_grows_by_a_few_bytes_at_most() {
        let mut rng = Rng(7);
        let mut lengths = vec![0, 1, 2, 3, 4, 5, 100, 1000, 65_519, 65_520, 65_521, 300_000];
        for _ in 0..20 {
            lengths.push(rng.below(300_001));
        }
        for len in lengths {
            let input = rng.bytes(len);
            let size = round_trip(&input);
            assert!(size <= len + 8, "{len} random bytes took {size}");
        }
    }

    #[test]
    fn multi_megabyte_json_spans_several_meta_blocks() {
        let input = json_body(&mut Rng(3), 3_500_000);
        assert!(input.len() > 3 * META_BLOCK_SIZE);
        let size = round_trip(&input);
        assert!(size * 4 < input.len(), "{} bytes to {size}", input.len());
    }

    #[test]
    fn matches_reach_back_exactly_the_whole_window() {
        // Three random fragments, then a long gap, then the fragments again at distances of
        // the window less one, the window, and one past it (which must not be used).
        let window = (1usize << MAX_WINDOW_BITS) - 16;
        let mut rng = Rng(99);
        let fragments = [rng.bytes(64), rng.bytes(64), rng.bytes(64)];
        let mut input = vec![0u8; window + 600];
        for (i, fragment) in fragments.iter().enumerate() {
            input[200 * i..200 * i + 64].copy_from_slice(fragment);
        }
        for (i, delta) in [(0, 0isize), (1, 1), (2, -1)] {
            let at = (200 * i + window).wrapping_add_signed(delta);
            input[at..at + 64].copy_from_slice(&fragments[i]);
        }
        let distances = copy_distances(&commands_of(&input));
        assert!(distances.contains(&window), "{distances:?}");
        assert!(distances.contains(&(window - 1)), "{distances:?}");
        assert!(distances.iter().all(|&d| d <= window), "{distances:?}");
        round_trip(&input);
    }

    #[test]
    fn random_mixes_of_repeats_and_noise_round_trip() {
        let mut rng = Rng(0x5EED);
        for case in 0..400 {
            let len = match case % 4 {
                0 => rng.below(300),
                1 => rng.below(5_000),
                _ => rng.below(100_000),
            };
            let mut input = Vec::with_capacity(len);
            while input.len() < len {
                let longer = rng.below(3) == 0;
                let n = 1 + rng.below(if longer { 2000 } else { 40 });
                match rng.below(5) {
                    0 => input.extend(rng.bytes(n)),
                    1 if !input.is_empty() => {
                        // A fragment of what came before, possibly overlapping itself.
                        let from = rng.below(input.len());
                        for i in 0..n {
                            input.push(input[from + i]);
                        }
                    }
                    2 => input.resize(input.len() + n, rng.next() as u8),
                    3 => input.extend((0..n).map(|_| b'a' + rng.below(4) as u8)),
                    _ => {
                        let json = b"{\"key\":\"value\",\"n\":12}";
                        input.extend_from_slice(&json[..min(n, json.len())]);
                    }
                }
            }
            input.truncate(len);
            round_trip(&input);
        }
    }

    #[test]
    fn json_and_html_compress_about_as_well_as_gzip_6() {
        let mut rng = Rng(11);
        let bodies = [
            ("json 100 KB", json_body(&mut rng, 100_000)),
            ("json 1 MB", json_body(&mut rng, 1_000_000)),
            ("html 200 KB", html_body(&mut rng, 200_000)),
            ("json 5 KB", json_body(&mut rng, 5_000)),
        ];
        for (name, body) in &bodies {
            let br = round_trip(body);
            let gz = gzip6(body);
            println!(
                "{name}: {} bytes, br {br} ({:.2}x), gzip-6 {gz} ({:.2}x), br/gzip {:.3}",
                body.len(),
                body.len() as f64 / br as f64,
                body.len() as f64 / gz as f64,
                br as f64 / gz as f64
            );
            assert!(br * 3 <= body.len(), "{name}: {br} bytes");
            assert!(br * 100 <= gz * 105, "{name}: br {br} against gzip-6 {gz}");
        }
    }
}
