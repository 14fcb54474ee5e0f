//! The fast scanner against the reference scan: the same findings on every
//! detector sample, on the negative corpus, on generated text packed with
//! candidates, and when the data arrives in chunks split anywhere; custom
//! patterns with and without literal anchors.

use regex::bytes::Regex;
use std::path::PathBuf;
use warden_engine::dlp::scanner::{
    custom_anchors, Hit, Scanner, Stream, StreamHit, StreamState, DEFAULT_WINDOW, MAX_CUSTOM_ANCHORS,
};
use warden_engine::dlp::{compile_custom, detector, reference_scan, Anchor, Detector, CATALOGUE};

fn scanner() -> Scanner {
    let all: Vec<_> = CATALOGUE.iter().collect();
    Scanner::new(&all, Vec::new()).unwrap()
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/dlp")
}

/// (id, start, end) triples, sorted.
fn fast(s: &Scanner, hits: &[Hit]) -> Vec<(String, usize, usize)> {
    let mut v: Vec<_> = hits.iter().map(|h| (s.detectors()[h.detector].id.clone(), h.span.start, h.span.end)).collect();
    v.sort();
    v
}

fn reference(data: &[u8]) -> Vec<(String, usize, usize)> {
    let mut v: Vec<_> = reference_scan(data).into_iter().map(|f| (f.id.to_owned(), f.start, f.end)).collect();
    v.sort();
    v
}

/// Every sample line of the detector data files, in three contexts.
fn samples() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let Some(sample) = line.strip_prefix("+ ").or_else(|| line.strip_prefix("- ")) else { continue };
            let sample = sample.replace("[[", "").replace("]]", "").replace('⏎', "\n");
            out.push(sample.clone().into_bytes());
            out.push(format!("{{\"note\": \"{sample}\"}}").into_bytes());
            out.push(format!("x {sample} y").into_bytes());
        }
    }
    assert!(out.len() > 28 * 30, "expected the detector data files, found {} samples", out.len());
    out
}

#[test]
fn scan_equals_the_reference_on_every_sample() {
    let s = scanner();
    let mut found = 0;
    for sample in samples() {
        let want = reference(&sample);
        found += want.len();
        assert_eq!(fast(&s, &s.scan(&sample)), want, "{}", String::from_utf8_lossy(&sample));
    }
    assert!(found > 28 * 5 * 3, "the samples must contain positives: {found}");
}

#[test]
fn streaming_finds_a_secret_split_anywhere() {
    let s = scanner();
    for sample in samples().iter().step_by(3) {
        let want = reference(sample);
        // Every cut for short samples; long ones (PEM keys, JWTs) every
        // few bytes, or the test takes minutes in a debug build.
        let step = if sample.len() > 300 { 37 } else { 1 };
        for cut in (0..=sample.len()).step_by(step) {
            let mut stream = Stream::new(&s);
            let (a, b) = sample.split_at(cut);
            let mut hits = stream.feed(a, false);
            hits.extend(stream.feed(b, true));
            assert_eq!(fast(&s, &hits), want, "cut at {cut}: {}", String::from_utf8_lossy(sample));
        }
    }
}

#[test]
fn the_negative_corpus_is_clean_whole_and_in_chunks() {
    let s = scanner();
    let corpus = data_dir().join("corpus");
    let mut bytes = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()) == Some("README.md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        bytes += data.len();
        let whole = s.scan(&data);
        assert_eq!(fast(&s, &whole), vec![], "{}: findings on clean data", path.display());
        let mut stream = Stream::new(&s);
        let mut max_retained = 0;
        for chunk in data.chunks(4096) {
            assert!(stream.feed(chunk, false).is_empty(), "{}", path.display());
            max_retained = max_retained.max(stream.retained());
        }
        assert!(stream.feed(&[], true).is_empty());
        // Memory is bounded by the short window (no PEM key or JWT is
        // open in clean data), not by the body.
        assert!(max_retained <= 2 * 1024, "{}: kept {max_retained} bytes", path.display());
    }
    assert!(bytes >= 1 << 20, "the corpus must be at least 1 MiB, is {bytes}");
}

/// One detector's findings by its own regex and validator: what the
/// reference scan finds for it, without running the whole catalogue (slow
/// over long bodies in a debug build).
fn own_findings(d: &Detector, regex: &Regex, data: &[u8]) -> Vec<(String, usize, usize)> {
    regex.find_iter(data).filter(|m| d.validates(m.as_bytes())).map(|m| (d.id.to_owned(), m.start(), m.end())).collect()
}

/// The scanner's findings of detector `id` in `data`.
fn fast_for(s: &Scanner, id: &str, data: &[u8]) -> Vec<(String, usize, usize)> {
    fast(s, &s.scan(data)).into_iter().filter(|h| h.0 == id).collect()
}

/// The scanner's other builds, each held to the reference as the default
/// one is: the portable loop alone (what a CPU without AVX2 runs, and the
/// filter in wasm), and no SIMD at all.
fn others() -> [(&'static str, Scanner); 2] {
    [("portable loop", scanner().portable()), ("without SIMD", scanner().scalar())]
}

/// Asserts that the scanner (`s`) and its other builds ([`others`]) find
/// in `text` what the reference scan finds, and returns how many that is.
fn both_as_the_reference(s: &Scanner, others: &[(&str, Scanner)], text: &str) -> usize {
    let want = reference(text.as_bytes());
    assert_eq!(fast(s, &s.scan(text.as_bytes())), want, "{text:?}");
    for (build, other) in others {
        assert_eq!(fast(other, &other.scan(text.as_bytes())), want, "{build}: {text:?}");
    }
    want.len()
}

/// Asserts that the scanner finds in `text` what detector `d`'s regex
/// (`regex`) and validator find, and returns how many that is.
fn same_as_the_regex(s: &Scanner, d: &Detector, regex: &Regex, text: &str) -> usize {
    let want = own_findings(d, regex, text.as_bytes());
    assert_eq!(fast_for(s, d.id, text.as_bytes()), want, "{text:?}");
    want.len()
}

/// The findings of one detector alone, by the reference scan.
fn reference_for(id: &str, data: &[u8]) -> Vec<(String, usize, usize)> {
    reference(data).into_iter().filter(|(i, _, _)| i == id).collect()
}

/// Each detector enabled alone (the scanner's tables then differ: no
/// codes, no numeric runs, one literal set) finds what the reference
/// finds for it.
#[test]
fn each_detector_alone_equals_the_reference() {
    let samples: Vec<_> = samples().into_iter().map(|s| (reference(&s), s)).collect();
    for d in CATALOGUE {
        let s = Scanner::new(&[d], Vec::new()).unwrap();
        for (all, sample) in &samples {
            let want: Vec<_> = all.iter().filter(|(id, _, _)| id == d.id).cloned().collect();
            assert_eq!(fast(&s, &s.scan(sample)), want, "{}: {}", d.id, String::from_utf8_lossy(sample));
        }
    }
}

/// The longest match of any detector: the stream's hold-back.
#[test]
fn the_window_is_the_longest_reach() {
    let longest = CATALOGUE.iter().filter_map(Detector::max_len).max().unwrap();
    assert_eq!(scanner().window(), longest);
    let card = Scanner::new(&[detector("credit_card").unwrap()], Vec::new()).unwrap();
    assert_eq!(card.window(), detector("credit_card").unwrap().max_len().unwrap());
    let unbounded = compile_custom("itk", "itk_[a-z]+").unwrap();
    let s = Scanner::new(&[detector("credit_card").unwrap()], vec![("itk".into(), unbounded, vec!["itk_".into()])])
        .unwrap();
    assert_eq!(s.window(), DEFAULT_WINDOW);
}

// ---------------------------------------------------------------- generated text

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// `body` and a Luhn check digit.
fn luhn_complete(body: &str) -> String {
    for check in b'0'..=b'9' {
        let candidate = format!("{body}{}", char::from(check));
        if warden_engine::dlp::validators::luhn(candidate.as_bytes()) {
            return candidate;
        }
    }
    unreachable!()
}

/// `body` and a Verhoeff check digit.
fn verhoeff_complete(body: &str) -> String {
    (b'0'..=b'9')
        .map(|c| format!("{body}{}", char::from(c)))
        .find(|c| warden_engine::dlp::validators::verhoeff(c.as_bytes()))
        .unwrap()
}

/// `body` (17 digits) and its GB 11643 check character.
fn gb11643_complete(body: &str) -> String {
    let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(weights).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{body}{}", char::from(b"10X98765432"[(sum % 11) as usize]))
}

/// An IBAN for `country` with correct check digits and the given length.
fn iban(rng: &mut Rng, country: &str, len: usize) -> String {
    let body: String = (0..len - 4).map(|_| char::from(*rng.pick(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))).collect();
    let numeric: String = format!("{body}{country}00")
        .chars()
        .map(|c| if c.is_ascii_digit() { c.to_string() } else { (c as u32 - 'A' as u32 + 10).to_string() })
        .collect();
    let rem = numeric.bytes().fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
    format!("{country}{:02}{body}", 98 - rem)
}

/// One piece of generated text: a detector-shaped value (valid or near),
/// a sample line, or filler.
fn piece(rng: &mut Rng, lines: &[String]) -> String {
    let sep = |rng: &mut Rng| rng.pick(&[" ", "-", ""]).to_string();
    match rng.below(24) {
        0 => {
            let prefix = rng.pick(&["4", "51", "37", "6011", "3530", "62", "2221", "36", "1", "9"]).to_string();
            let len = *rng.pick(&[13, 14, 15, 16, 16, 16, 19, 20]);
            let body = format!("{prefix}{}", rng.digits(len - prefix.len() - 1));
            let card = if rng.below(3) > 0 { luhn_complete(&body) } else { format!("{body}{}", rng.digits(1)) };
            if len == 16 && rng.below(2) == 0 {
                let s = sep(rng);
                format!("{}{s}{}{s}{}{s}{}", &card[..4], &card[4..8], &card[8..12], &card[12..])
            } else {
                card
            }
        }
        1 => {
            let n = verhoeff_complete(&format!("{}{}", rng.below(8) + 2, rng.digits(10)));
            let s = sep(rng);
            if rng.below(2) == 0 {
                n
            } else {
                format!("{}{s}{}{s}{}", &n[..4], &n[4..8], &n[8..])
            }
        }
        2 => {
            let (century, year) = (rng.pick(&["19", "20"]).to_string(), rng.digits(2));
            let (month, day) =
                (rng.pick(&["01", "12", "13"]).to_string(), rng.pick(&["01", "28", "31", "32"]).to_string());
            let id = gb11643_complete(&format!("110105{century}{year}{month}{day}{}", rng.digits(3)));
            if rng.below(3) == 0 {
                id.to_lowercase()
            } else {
                id
            }
        }
        3 => {
            let s = sep(rng);
            format!(
                "{}{}1{}{}{s}{}{s}{}",
                rng.pick(&["", "+86 ", "+86", "0086", "86-", "x"]),
                "",
                rng.pick(&["3", "5", "8", "2"]),
                rng.digits(1),
                rng.digits(4),
                rng.digits(4)
            )
        }
        4 => {
            let s = rng.pick(&[" ", ""]).to_string();
            format!(
                "{}{}{s}{}{s}{}{s}{}{s}{}",
                rng.pick(&["A", "Q", "Z", "N"]),
                rng.pick(&["B", "Y", "O"]),
                rng.digits(2),
                rng.digits(2),
                rng.digits(2),
                rng.pick(&["A", "D", "E"])
            )
        }
        5 => {
            let s = rng.pick(&["-", " ", "/"]).to_string();
            format!("{}{s}{}{s}{}", rng.digits(3), rng.digits(2), rng.digits(4))
        }
        6 => {
            let (country, len) = *rng.pick(warden_engine::dlp::validators::IBAN_LENGTHS);
            let mut value = iban(rng, country, len);
            if rng.below(3) == 0 {
                value = value
                    .as_bytes()
                    .chunks(4)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            if rng.below(4) == 0 {
                value.push(*rng.pick(&['0', 'A', ' ']));
            }
            value
        }
        7 => {
            let n = rng.below(24) + 1;
            rng.digits(n)
        }
        8..=13 => rng.pick(lines).clone(),
        14 => rng
            .pick(&[
                "AKIA",
                "ghp_",
                "xoxb-",
                "eyJ",
                "-----BEGIN ",
                "://",
                "@",
                "sk_live_",
                "Basic ",
                "SG.",
                "T3BlbkFJ",
                "GB",
                "DE",
                "AB",
                // The anchors the scanner's prechecks look around.
                "+",
                "+4",
                "+44 20 7946 0958",
                "+1 (415) 555-2671",
                "Aadhaar: ",
                "aadhar no ",
                "mobile ",
                "Tel:",
                "电话",
                "password=",
                "\"api_key\": \"",
                "_apiKey=",
                "DB_PASSWORD: ",
                "token ",
                "Token",
            ])
            .to_string(),
        15 => format!(
            "{}@{}{}",
            rng.pick(&["a", "john.doe", "x_y", "9", "shop/orders"]),
            rng.pick(&["example", "ex-ample", "a", "sha256", "x".repeat(63).as_str(), "y".repeat(64).as_str()]),
            rng.pick(&[".com", ".io", ".c", ".png", ":", ":b2f8fa8a", "", "-.com"])
        ),
        // Three groups of four where the pattern's 4-4-4 alternative may
        // or may not see them: inside UUIDs, after a word, with mixed
        // separators, between other groups.
        16 if rng.below(2) == 0 => {
            let n = verhoeff_complete(&format!("{}{}", rng.below(10), rng.digits(10)));
            let (s1, s2) = (sep(rng), rng.pick(&[" ", "-", ":"]).to_string());
            format!(
                "{}{}{s1}{}{s2}{}{}",
                rng.pick(&[
                    "",
                    "GIFT-",
                    "9ef4-",
                    "4b67a6e0-",
                    "1c2f4b2e-",
                    "deadbeef-",
                    "x4b67a6e0-",
                    "1 ",
                    "AB1-",
                    "x"
                ]),
                &n[..4],
                &n[4..8],
                &n[8..],
                rng.pick(&[
                    "",
                    "f1fa8883",
                    "-9",
                    " 12",
                    "-0045f1",
                    "-f1fa88830b2a",
                    "-8f1fa8883b2a",
                    "-abcdefabcdef",
                    "-f1fa88830b2a9",
                    "-f1fa",
                    "A",
                    "\"",
                    "_",
                ])
            )
        }
        _ => rng
            .pick(&[
                " ",
                " ",
                ", ",
                "\"",
                ": ",
                "{\"k\": \"",
                "\"}",
                "\n",
                "_",
                ".",
                "x",
                "ID",
                "T",
                "0",
                "12",
                "\\n",
                "=",
                "/",
            ])
            .to_string(),
    }
}

/// The sample lines of the data files (markers removed).
fn sample_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("txt") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(sample) = line.strip_prefix("+ ").or_else(|| line.strip_prefix("- ")) {
                    lines.push(sample.replace("[[", "").replace("]]", "").replace('⏎', "\n"));
                }
            }
        }
    }
    lines
}

/// Text packed with candidates next to each other: overlapping anchors,
/// numbers glued to letters and to each other, valid and near-miss
/// values. The scanner must agree with the reference on every one, and
/// the generated texts must contain findings of every numeric detector.
#[test]
fn generated_text_equals_the_reference() {
    let s = scanner();
    let others = others();
    let lines = sample_lines();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..1500 {
        let text: String = (0..rng.below(12) + 2).map(|_| piece(&mut rng, &lines)).collect();
        let data = text.as_bytes();
        let want = reference(data);
        seen.extend(want.iter().map(|(id, _, _)| id.clone()));
        assert_eq!(fast(&s, &s.scan(data)), want, "round {round}: {text:?}");
        for (build, other) in &others {
            assert_eq!(fast(other, &other.scan(data)), want, "round {round}, {build}: {text:?}");
        }
        if round % 5 == 0 {
            let cut = rng.below(data.len() + 1);
            let mut stream = Stream::new(&s);
            let mut hits = stream.feed(&data[..cut], false);
            hits.extend(stream.feed(&data[cut..], true));
            assert_eq!(fast(&s, &hits), want, "round {round}, cut at {cut}: {text:?}");
        }
    }
    for id in [
        "credit_card",
        "iban",
        "us_ssn",
        "cn_resident_id",
        "cn_mobile",
        "in_aadhaar",
        "uk_nino",
        "email",
        "phone_number",
        "generic_credential",
    ] {
        assert!(seen.contains(id), "no {id} finding in the generated text: {seen:?}");
    }
}

/// A block of `fill` with `value` at `place`, as two little-endian words.
fn block_with(fill: u8, place: usize, value: u8) -> (u64, u64) {
    let mut block = [fill; 16];
    block[place] = value;
    (u64::from_le_bytes(block[..8].try_into().unwrap()), u64::from_le_bytes(block[8..].try_into().unwrap()))
}

/// What the bytes of a block are (digits, joiners, colons, capitals), with
/// the target's SIMD and without: the same masks for every byte value at
/// every place, and for random blocks.
#[test]
fn simd_and_scalar_marks_agree() {
    use warden_engine::dlp::classes::{marks, marks_scalar, Marks};
    let mut rng = Rng(0x5eed);
    for place in 0..16 {
        for value in 0..=255u8 {
            // The other fifteen bytes are of no class.
            let (lo, hi) = block_with(b'x', place, value);
            let bit = |of: bool| u16::from(of) << place;
            let want = Marks {
                digits: bit(value.is_ascii_digit()),
                joiners: bit(matches!(value, b' ' | b'-' | b'.')),
                colons: bit(value == b':'),
                capitals: bit(value.is_ascii_uppercase()),
            };
            assert_eq!(marks_scalar(lo, hi), want, "byte {value:#04x} at {place}");
            assert_eq!(marks(lo, hi), want, "byte {value:#04x} at {place}");
        }
    }
    for round in 0..100_000 {
        let (lo, hi) = (rng.next(), rng.next());
        // Most bytes from around the classes' bounds, where a range test
        // errs: digits and `:` (0x30-0x3f), capitals (0x40-0x5f), and
        // ` `, `-`, `.` (0x20-0x2f).
        let base = [0x3030_3030_3030_3030u64, 0x4040_4040_4040_4040, 0x2020_2020_2020_2020][round % 3];
        let near = |w: u64| w & 0x1f1f_1f1f_1f1f_1f1f | base;
        let (lo, hi) = match rng.below(3) {
            0 => (near(lo), hi),
            1 => (lo, near(hi)),
            _ => (near(lo), near(hi)),
        };
        assert_eq!(marks(lo, hi), marks_scalar(lo, hi), "{lo:#018x} {hi:#018x}");
    }
}

/// The places the scanner reads runs at in `text`, a block at a time
/// ([`Lagged`], with a block of nothing after the text), sorted.
fn run_places(text: &[u8]) -> Vec<usize> {
    use warden_engine::dlp::classes::{marks_scalar, Lagged, Marks, LAG};
    let word = |at: usize| {
        let mut w = [0u8; 8];
        for (k, b) in w.iter_mut().enumerate() {
            *b = text.get(at + k).copied().unwrap_or(0);
        }
        u64::from_le_bytes(w)
    };
    let mut places = Vec::new();
    let mut lagged = Lagged::default();
    for block in (0..text.len() + LAG).step_by(64) {
        let m: Vec<Marks> = (0..4).map(|k| marks_scalar(word(block + 16 * k), word(block + 16 * k + 8))).collect();
        let class = |f: fn(&Marks) -> u16| m.iter().enumerate().fold(0u64, |w, (k, x)| w | u64::from(f(x)) << (16 * k));
        let (runs, _) =
            lagged.next(class(|m| m.digits), class(|m| m.joiners), class(|m| m.colons), class(|m| m.capitals), false);
        places.extend((0..64).filter(|k| runs >> k & 1 == 1).map(|k| block + k - LAG).filter(|&p| p < text.len()));
    }
    places
}

/// The places the scanner reads runs at in the middle thirty-two bytes of
/// `text` (64 bytes: the sixteen before, the thirty-two read, the sixteen
/// after), as a string of `^` under them.
fn run_candidates_in(text: &str) -> String {
    assert_eq!(text.len(), 64, "{text}");
    let places = run_places(text.as_bytes());
    (16..48).map(|p| if places.contains(&p) { '^' } else { ' ' }).collect::<String>().trim_end().to_owned()
}

/// Runs are read where a numeric shape's match can be: eleven bytes or
/// more of digits and single joiners (wherever the stretch starts, even
/// in the block before), two digits after two capitals, four digits
/// before a colon and four more; not in dates, times, decimals or short
/// numbers.
#[test]
fn runs_are_read_only_where_a_shape_can_match() {
    let pad = |middle: &str| {
        assert!(middle.len() <= 32, "{middle}");
        format!("{:<16}{middle:<32}{:<16}", "\"head\": {", "}")
    };
    let cases = [
        // Dates, times, decimals, versions, short ids: nothing.
        ("2024-03-07T19:45", ""),
        ("19:45:54.509Z\",", ""),
        ("\"8547.93\", 10.5", ""),
        ("\"v1.2.3\", 42, 7", ""),
        // Eleven bytes or more: an SSN, dashed or dotted; a card's digits,
        // grouped or not.
        // Where eleven bytes begin: a run is read from its start.
        ("9400 5406 975\"", "^^^"),
        ("\"123-45-6789\"", " ^"),
        ("\"123.45.6789\"", " ^"),
        ("1709840754509,", "^^^"),
        // Every dotted group up to the last place eleven begin: a dotted
        // SSN takes a group in before its first.
        ("1.123.45.6789.", "^ ^"),
        // Ten: not.
        ("\"12-45-6789\"", ""),
        // After two capitals: an IBAN's check digits, a NINO's.
        ("\"GB82 WEST\"", "   ^"),
        ("\"AB 12 34 56 C\"", "    ^"),
        ("AB123456C", "  ^"),
        // Aadhaar's colon groups.
        ("\"2345:6789:0123", " ^    ^"),
    ];
    for (middle, want) in cases {
        assert_eq!(run_candidates_in(&pad(middle)), want, "{middle}");
    }
    // A stretch that starts in the bytes before is read from its place
    // there, not here, unless eleven of its bytes begin here too; one that starts here and ends
    // in the bytes after is read here, and one across the middle of the
    // thirty-two.
    let across = format!("{:>16}{:<32}{:<16}", "x 12345", "678901\"", "");
    assert_eq!(run_candidates_in(&across), "");
    let across = format!("{:>16}{:<32}{:<16}", "x 12", "34567890123456\"", "");
    assert_eq!(run_candidates_in(&across), "^^^^");
    let ends_after = format!("{:<16}{:>32}{:<16}", "", "\"1234567", "8901\"");
    assert_eq!(run_candidates_in(&ends_after), format!("{:>26}", "^"));
    let ten_to_the_end = format!("{:<16}{:>32}{:<16}", "", "\"1234567", "890\"");
    assert_eq!(run_candidates_in(&ten_to_the_end), "");
    let middle = format!("{:<16}{:>21}{:<11}{:<16}", "", "\"123456", "78901\"", "");
    assert_eq!(run_candidates_in(&middle), format!("{:>16}", "^"));
}

/// The places found a block at a time and [`LAG`] bytes late are, on
/// random text made of the bytes the shapes are made of (digits, joiners,
/// colons, capitals, and a letter), at every length up to a few blocks,
/// those of the rule written plainly, a byte at a time: a digit where
/// eleven digits or single joiners between two begin, four digits before
/// a colon and four more, two digits after two capitals (or after two
/// and a joiner).
#[test]
fn places_found_a_block_at_a_time_are_the_rules() {
    let mut rng = Rng(0x001a_66ed);
    let alphabet = b"0123456789000000 -.:ABZx";
    let mut with_places = 0;
    for round in 0..3_000 {
        let len = if round < 300 { round } else { rng.below(300) };
        let text: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        let at = |p: isize| usize::try_from(p).ok().and_then(|p| text.get(p)).copied().unwrap_or(0);
        let digit = |p: isize| at(p).is_ascii_digit();
        let joiner = |p: isize| matches!(at(p), b' ' | b'-' | b'.');
        let capital = |p: isize| at(p).is_ascii_uppercase();
        let digits = |p: isize, n: isize| (p..p + n).all(digit);
        let group = |p: isize| digit(p) || (joiner(p) && digit(p - 1) && digit(p + 1));
        let want: Vec<usize> = (0..len as isize)
            .filter(|&p| {
                let eleven = digit(p) && (p..p + 11).all(group);
                let colon = digits(p, 4) && at(p + 4) == b':' && digits(p + 5, 4);
                let capitals =
                    (capital(p - 1) && capital(p - 2)) || (joiner(p - 1) && capital(p - 2) && capital(p - 3));
                eleven || colon || (digits(p, 2) && capitals)
            })
            .map(|p| p as usize)
            .collect();
        assert_eq!(run_places(&text), want, "{}", String::from_utf8_lossy(&text));
        with_places += usize::from(!want.is_empty());
    }
    assert!(with_places > 1_000, "only {with_places} texts had places to read runs at");
}

/// The bytes of a block equal to one of two, with the target's SIMD and
/// without, and the search the body decoder finds escapes with: the same
/// as a byte-at-a-time search for every byte value at every place, at
/// every length and offset (the last partial block), and in random text.
#[test]
fn simd_and_scalar_searches_for_two_bytes_agree() {
    use warden_engine::dlp::classes::{either, either_scalar, find_either};
    let mut rng = Rng(0x0e5c_a9e5);
    for (a, b) in [(b'\\', b'\\'), (b'%', b'+'), (0x00, 0xff), (0x7f, 0x80)] {
        for place in 0..16 {
            for value in 0..=255u8 {
                let (lo, hi) = block_with(b'a', place, value);
                let want = if value == a || value == b { 1u16 << place } else { 0 };
                assert_eq!(either_scalar(lo, hi, a, b), want, "{value:#04x} at {place}");
                assert_eq!(either(lo, hi, a, b), want, "{value:#04x} at {place}");
            }
        }
        for _ in 0..20_000 {
            let (lo, hi) = (rng.next(), rng.next());
            // Half the bytes near the two searched for, where a test errs.
            let near = |w: u64| w & 0x0101_0101_0101_0101 ^ (0x0101_0101_0101_0101 * u64::from(a));
            let (lo, hi) = if rng.below(2) == 0 { (near(lo), hi) } else { (lo, near(hi)) };
            assert_eq!(either(lo, hi, a, b), either_scalar(lo, hi, a, b), "{lo:#018x} {hi:#018x}");
        }
        for len in 0..40 {
            for at in 0..=len {
                let mut text = vec![b'x'; len];
                if at < len {
                    text[at] = b;
                }
                if at + 1 < len {
                    text[at + 1] = a;
                }
                let want = text.iter().position(|&c| c == a || c == b).unwrap_or(len);
                assert_eq!(find_either(&text, a, b), want, "{len} {at}");
            }
        }
    }
}

/// Numbers of every numeric detector at every offset of a block and across
/// blocks, after and before digits, capitals, spaces and letters: numeric
/// runs are found from sixty-four-byte blocks, sixteen bytes late, SIMD or
/// not; the offsets reach across both the middle of a block and its end,
/// and the texts end at every length around a block's end.
#[test]
fn numbers_at_every_offset_equal_the_reference() {
    let s = scanner();
    let others = others();
    let aadhaar = format!("Aadhaar {}", verhoeff_complete("23456789012"));
    let aadhaar_touching = format!("aadhaar{}", verhoeff_complete("23456789012"));
    let numbers = [
        "4111 1111 1111 1111",
        "4111111111111111",
        // Thirteen digits, and twelve after the word: whole numbers that
        // are one group of a grouped run when digits follow after a space.
        "4222222222222",
        &aadhaar,
        // The word may touch the number: no `\b` between them.
        &aadhaar_touching,
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "AB 12 34 56 C",
        "AB123456C",
        "078-05-1120",
        "078.05.1120",
        "11010519491231002X",
        "+86 138 1234 5678",
        // The word may touch the number: no `\b` between them.
        "phone_no13812345678",
        "2345 6789 0124",
        "12 34",
    ];
    let fillers = ["", "x", "AB", "Q ", "12", "1 ", " ", "-", "ZZ1", "é"];
    for number in numbers {
        let mut found = 0;
        for before in fillers {
            for after in fillers {
                // Across the middle of a block with every filler, across
                // its end with those that join a number or touch it.
                let joining = |f: &str| ["", "AB", "12", "1 "].contains(&f);
                let far = if joining(before) && joining(after) { 66 } else { 34 };
                for offset in 0..far {
                    let text = format!("{}{before}{number}{after} 99", "a".repeat(offset));
                    found += both_as_the_reference(&s, &others, &text);
                }
            }
        }
        assert!(number == "12 34" || found > 100, "{number} must be found: {found} findings");
    }
}

/// Numbers and a literal-anchored secret at every offset around where
/// the AVX2 loop stops and the portable loop goes on (after the last
/// block with a block and two bytes to read), for lengths across two
/// blocks: the two loops' queues and the runs' stream meet there (an
/// IBAN's digits right after it need its capitals right before; a run's
/// place there is found sixteen bytes late, by the portable loop).
#[test]
fn numbers_and_anchors_where_the_wide_loop_stops_equal_the_reference() {
    let s = scanner();
    let others = others();
    let items = [
        "4111 1111 1111 1111",
        "4222222222222",
        "GB82 WEST 1234 5698 7654 32",
        "078-05-1120",
        "+86 138 1234 5678",
        "AKIAZ7VQ2XK4MHL3RWTN",
    ];
    let mut found = 0;
    const READ: usize = 66;
    for len in (READ..READ + 128).step_by(5) {
        // Where the wide loop stops: the first block from which fewer than
        // a block and two bytes are left.
        let stop = (len - READ) / 64 * 64 + 64;
        for item in items {
            for at in stop - 32..stop + 8 {
                if at + item.len() + 2 > len {
                    continue;
                }
                let text = format!("{} {item} {}", "a".repeat(at), "b".repeat(len - at - item.len() - 2));
                assert_eq!(text.len(), len);
                found += both_as_the_reference(&s, &others, &text);
            }
        }
    }
    assert!(found > 500, "{found} findings");
}

/// Aadhaar numbers grouped 4-4-4 inside longer grouped runs, with letters,
/// digits and colons before and after: the scanner looks for their matches
/// within three bytes of the run (the pattern takes up to three letters or
/// digits before a digit group in, and after), and over the pattern's whole
/// reach when a colon is next to the run.
#[test]
fn grouped_aadhaar_numbers_among_letters_digits_and_colons_equal_the_reference() {
    let s = scanner();
    let others = others();
    let valid = verhoeff_complete("23456789012");
    let (a, b, c) = (&valid[..4], &valid[4..8], &valid[8..]);
    let numbers = [format!("{a} {b} {c}"), format!("{a}-{b}-{c}"), format!("{a}:{b}:{c}")];
    let before = ["", "1 ", "A1 ", "AB1 ", "ABC1 ", "ABCD1 ", "x1 ", "12-", "9876 ", "1:", "ab:", "2345:6789:", ":"];
    let after = ["", " 1", " 1A", " 1AB", " 1ABC", " 1ABCD", "-12", " 9876", ":1", ":12:34", ":", " x"];
    let mut found = 0;
    for number in &numbers {
        for b in before {
            for a in after {
                let text = format!("id {b}{number}{a} end");
                found += both_as_the_reference(&s, &others, &text);
            }
        }
    }
    assert!(found > 50, "{found} findings");
}

/// Grouped numbers whose checksums fail (a tracking number in groups of
/// four, a card's 4-4-4-4 that fails Luhn, an Aadhaar 4-4-4 that fails
/// Verhoeff, a 3-4-4 group that is no mobile number) next to ones that
/// pass, with the prefixes and suffixes the patterns take in between them:
/// the scanner puts off the regex of a run none of whose windows the
/// validator would accept, and runs it only where a later candidate's
/// search could start within what it would have taken. Every valid window
/// of a run must still be found, and nothing else; and a group of twelve
/// digits in a grouped run (a UUID's last) is read as an Aadhaar number
/// after the word only.
#[test]
fn grouped_numbers_whose_checksums_fail_next_to_ones_that_pass_equal_the_reference() {
    let s = scanner();
    let others = others();
    let card = luhn_complete("411111111111111");
    let amex = luhn_complete("37828224631000");
    let aadhaar = verhoeff_complete("23456789012");
    let grouped = |n: &str, sep: &str, lens: &[usize]| {
        let mut at = 0;
        lens.iter()
            .map(|&l| {
                at += l;
                &n[at - l..at]
            })
            .collect::<Vec<_>>()
            .join(sep)
    };
    let mut failing_card = card.clone();
    failing_card.replace_range(15.., if card.ends_with('1') { "2" } else { "1" });
    let mut failing_aadhaar = aadhaar.clone();
    failing_aadhaar.replace_range(11.., if aadhaar.ends_with('1') { "2" } else { "1" });
    let pieces = [
        grouped(&card, " ", &[4, 4, 4, 4]),
        grouped(&card, "-", &[4, 4, 4, 4]),
        grouped(&amex, " ", &[4, 6, 5]),
        grouped(&failing_card, " ", &[4, 4, 4, 4]),
        grouped(&failing_card, "-", &[4, 4, 4, 4]),
        grouped(&aadhaar, " ", &[4, 4, 4]),
        grouped(&aadhaar, "-", &[4, 4, 4]),
        grouped(&failing_aadhaar, " ", &[4, 4, 4]),
        grouped(&failing_aadhaar, "-", &[4, 4, 4]),
        "9400 7091 6959 2433 7736 42".to_owned(),
        "RF22 6444 1979 9222 4248".to_owned(),
        "GIFT-9788-8294-3880".to_owned(),
        "138 1234 5678".to_owned(),
        "86 138 1234 5678".to_owned(),
        "010 6552 6824".to_owned(),
        "8613812345678".to_owned(),
        "ab12cd34-".to_owned(),
        "-abcdef123456".to_owned(),
        // A group of twelve is an Aadhaar number only after the word.
        format!("Aadhaar {aadhaar}"),
        format!("aadhaar: {aadhaar}"),
        format!("3ed1f20c-ed4b-40b8-89c1-{aadhaar}"),
        format!("{}-{aadhaar}", &card[..4]),
    ];
    let joins = ["", " ", "-", "x", "AB1 ", "ABC1 ", "1 ", " 1", " 1A", "12-", "Z9 ", "+", ": ", "\n"];
    let mut rng = Rng(0x5eed_0fde_fe7e);
    let mut found = 0;
    for _ in 0..2_000 {
        let mut text = String::from("id ");
        for _ in 0..2 + rng.below(4) {
            let (piece, join): (&String, &&str) = (rng.pick(&pieces), rng.pick(&joins));
            text.push_str(piece);
            text.push_str(join);
        }
        found += both_as_the_reference(&s, &others, &text);
    }
    assert!(found > 500, "{found} findings");
}

/// Long stretches of anchors that come to nothing (`a@b.` again and
/// again), then a real secret at every alignment: a search that finds
/// nothing tells the later anchors where no match can start, and only
/// there (a match the search's end cut short is still found).
#[test]
fn stretches_of_anchors_that_come_to_nothing_then_a_secret() {
    let s = scanner();
    // Anchors that pass their precheck, in the pattern's alphabet, that
    // match nothing; as many as make twice a match's length and more.
    let cases =
        [("a@b.", "email", 250..330), ("-1Q~", "azure_ad_client_secret", 0..40), ("0-us", "mailchimp_api_key", 0..60)];
    for (junk, id, befores) in cases {
        let mut found = 0;
        // One address is enough: the reference scan of these bodies is
        // slow in a debug build.
        for secret in positives(id).into_iter().take(if id == "email" { 1 } else { usize::MAX }) {
            for before in befores.clone() {
                // No byte outside the pattern's alphabet from the first
                // anchor on: the searches go on for twice the longest match.
                let text =
                    format!("{}{}{secret}{}", "x".repeat(before % 7), junk.repeat(before), junk.repeat(befores.end));
                let want = reference(text.as_bytes());
                found += want.iter().filter(|w| w.0 == id).count();
                assert_eq!(fast(&s, &s.scan(text.as_bytes())), want, "{id}: {text:?}");
            }
        }
        assert!(found > 40, "{id}: {found} findings");
    }
}

/// Long stretches of a long detector's anchors that come to nothing
/// (`eyJ.eyJ.…`: all in the pattern's alphabet, as far as its longest
/// match and farther), then a real one, then more: what one candidate
/// learned of the data around it (how far the alphabet goes, where the
/// pattern's required bytes are) serves the next ones, and is only used
/// where it holds.
#[test]
fn stretches_of_a_long_detectors_anchors_then_a_secret() {
    let s = scanner();
    let cases = [
        ("eyJ.", "jwt"),
        ("eyJa.", "jwt"),
        ("eyJ-.", "jwt"),
        // Nine bytes after the anchor: one short of a header.
        ("eyJabcdefghi.", "jwt"),
        // Matches of the pattern, which the validator refuses.
        ("eyJabcdefghij.", "jwt"),
        ("-----BEGIN ", "private_key"),
        ("-----BEGIN RSA PRIVATE KEY-----\n", "private_key"),
    ];
    for (junk, id) in cases {
        let d = detector(id).unwrap();
        let regex = d.compile().unwrap();
        let mut found = 0;
        let secret = positives(id).into_iter().next().unwrap();
        for before in [0, 1, 2, 5, 300, 2101, 2999] {
            for after in [0, 3, 2500] {
                let text = format!("{}{}{secret}{}", "x".repeat(before % 7), junk.repeat(before), junk.repeat(after));
                let want = own_findings(d, &regex, text.as_bytes());
                found += want.len();
                assert_eq!(
                    fast_for(&s, id, text.as_bytes()),
                    want,
                    "{id}: {junk:?} x {before}, the secret, {junk:?} x {after}"
                );
            }
        }
        // The secret alone is found at least.
        assert!(found >= 7, "{id}: {junk:?}: {found} findings");
    }
}

/// A numeric run as long as a body (`12 12 …`, `1234 1234 …`) with a
/// number in it at every offset around where one regex search's slice of
/// the data ends and the next begins: the same findings as searching the
/// whole run at once.
#[test]
fn numbers_in_a_run_longer_than_a_search_slice_equal_the_reference() {
    let s = scanner();
    let ids = ["us_ssn", "in_aadhaar", "cn_mobile", "credit_card"];
    let detectors: Vec<_> =
        ids.iter().map(|id| (detector(id).unwrap(), detector(id).unwrap().compile().unwrap())).collect();
    let reference = |data: &[u8]| -> Vec<(String, usize, usize)> {
        let mut all: Vec<_> = detectors.iter().flat_map(|(d, regex)| own_findings(d, regex, data)).collect();
        all.sort();
        all
    };
    let aadhaar = verhoeff_complete("23456789012");
    // Grouped 4-4-4 inside a longer grouped number it is not one; with
    // colons it is (the run ends at the first).
    let aadhaar = format!("{}:{}:{}", &aadhaar[..4], &aadhaar[4..8], &aadhaar[8..]);
    let numbers = ["123-45-6789".to_owned(), aadhaar, "138 0013 8000".to_owned(), "4111 1111 1111 1111".to_owned()];
    let mut found = [0usize; 4];
    for (k, number) in numbers.iter().enumerate() {
        for filler in ["12 ", "1234 "] {
            // The first slice ends 4096 bytes after the run's start.
            for at in (4000..4140).step_by(7) {
                let groups = at / filler.len();
                let text = format!("x {}{number} {}", filler.repeat(groups), filler.repeat(400));
                let want = reference(text.as_bytes());
                found[k] += want.len();
                let got: Vec<_> =
                    fast(&s, &s.scan(text.as_bytes())).into_iter().filter(|h| ids.contains(&h.0.as_str())).collect();
                assert_eq!(got, want, "{number} after {groups} of {filler:?}");
            }
        }
    }
    // Each number is found after `12 12 …` at least.
    assert!(found.iter().all(|&n| n >= 20), "{found:?}");
}

/// A grouped run of more groups than the scanner records one by one
/// (`123-45-6789 123-45-6789 …`, `1234 1234 …`) is judged by what it
/// keeps of every group: the lengths seen, groups of four in a row, the
/// last two, a mobile number's grouping. Runs of 9 to 40 groups of every
/// length, with valid numbers of each grouped shape deep inside (cards
/// 4-4-4-4 and 4-6-5, Aadhaar 4-4-4, SSNs, mobiles 3-4-4, resident ids
/// of 18 and 17 + `X`), random separators, and endings that complete a
/// shape after the run (colon groups, a dotted SSN, `X`): the same findings
/// as the reference scan, with SIMD and without.
#[test]
fn numbers_deep_in_runs_of_many_groups_equal_the_reference() {
    let s = scanner();
    let others = others();
    let mut rng = Rng(0x6e0c);
    let mut found = 0;
    for _ in 0..3000 {
        let mut groups: Vec<String> = Vec::new();
        while groups.len() < 9 + rng.below(32) {
            match rng.below(9) {
                0 => {
                    let card = luhn_complete(&format!("4{}", rng.digits(14)));
                    groups.extend([&card[..4], &card[4..8], &card[8..12], &card[12..]].map(str::to_owned));
                }
                1 => {
                    let amex = luhn_complete(&format!("37{}", rng.digits(12)));
                    groups.extend([&amex[..4], &amex[4..10], &amex[10..]].map(str::to_owned));
                }
                2 => {
                    let aadhaar = verhoeff_complete(&format!("{}{}", 2 + rng.below(8), rng.digits(10)));
                    groups.extend([&aadhaar[..4], &aadhaar[4..8], &aadhaar[8..]].map(str::to_owned));
                }
                3 => groups.extend([format!("{:03}", 1 + rng.below(665)), "45".to_owned(), rng.digits(3) + "7"]),
                4 => groups.extend([format!("1{}{}", 3 + rng.below(7), rng.below(10)), rng.digits(4), rng.digits(4)]),
                5 => {
                    let id = gb11643_complete(&format!("11010519{}", rng.digits(9)));
                    groups.push(if id.ends_with('X') { id[..17].to_owned() } else { id });
                }
                _ => {
                    let n = *rng.pick(&[1, 2, 3, 4, 4, 4, 5, 6, 7, 11, 12, 13, 17, 18]);
                    groups.push(rng.digits(n));
                }
            }
        }
        let mut run = String::new();
        for (k, group) in groups.iter().enumerate() {
            if k > 0 {
                run.push(*rng.pick(&[' ', '-']));
            }
            run.push_str(group);
        }
        let before = *rng.pick(&["", " ", "a", "+86 ", "x-"]);
        let after = rng.pick(&[" ", "", "x", ":2345:6789", ".45.6789", "X", "X ", "-"]).to_string();
        let text = format!("{before}{run}{after} 99");
        found += both_as_the_reference(&s, &others, &text);
    }
    assert!(found > 3000, "{found}");
}

/// The vendor detectors found by a keyword assigned a value
/// (`SENTRY_AUTH_TOKEN = "…"`): a keyword is looked at only with an
/// assignment sign close enough after it, so the assignment is put as far
/// from the keyword as the pattern allows (20 identifier bytes, Go's
/// ` string`, an escaped quote, 4 blanks of every kind) and one byte
/// farther, with every operator, after identifier bytes with and without
/// `.` and `-`, after prose and YAML-value mentions of the keyword, and
/// with what may and may not come between the operator and the value, and
/// values one byte short or with a byte they cannot hold: the same
/// findings as the detector's regex over the text.
#[test]
fn keywords_assigned_at_every_distance_equal_the_reference() {
    let s = scanner();
    let keyed = [
        "cohere_api_key",
        "heroku_api_key",
        "datadog_api_key",
        "sentry_token",
        "twilio_key",
        "mailgun_key",
        "plaid_token",
        "vault_token",
        "linear_api_key",
        "snyk_token",
    ];
    let ops = ["=", ":", "=>", "?=", ".=", ":=", ":::=", ">", "\", \""];
    for id in keyed {
        let d = detector(id).unwrap();
        let regex = d.compile().unwrap();
        let Anchor::Literals(words) = d.anchor else { panic!("{id}") };
        let keyword = words.iter().copied().find(|w| w.chars().all(|c| c.is_ascii_lowercase())).unwrap();
        // A value the detector takes after its keyword: the end of the
        // first sample's match that starts with a keyword.
        let keywords: Vec<&str> = words.iter().copied().filter(|w| w.to_lowercase() == keyword).collect();
        let m = positives(id)
            .iter()
            .filter_map(|p| regex.find(p.as_bytes()).map(|m| m.as_bytes().to_vec()))
            .find(|m| keywords.iter().any(|k| m.starts_with(k.as_bytes())))
            .unwrap_or_else(|| panic!("{id}: no sample starts with its keyword"));
        let at = m.iter().rposition(|b| b" \t\"'`=:>,\\".contains(b)).map_or(0, |i| i + 1);
        let value = String::from_utf8(m[at..].to_vec()).unwrap();
        let mut found = 0;
        for (tail, identifier) in [0, 1, 19, 20, 21].into_iter().flat_map(|t| {
            // Not `xxxx`: four of a byte make a placeholder.
            [(t, "_Ab3_Cd4_Ef5_Gh6_Ij7_Kl8"), (t, "-Ab3.Cd4-Ef5.Gh6-Ij7.Kl8")]
        }) {
            for typed in ["", " string"] {
                for quote in ["", "\\\"", "'"] {
                    for blanks in ["", "    ", "     ", "\t\n", "\x0b\x0c\r\n", "\t\t\t\t\t"] {
                        for op in ops {
                            let name = format!("{keyword}{}{typed}{quote}", &identifier[..tail]);
                            // The call form's operator ends with the value's quote.
                            let close = if op.ends_with('"') { "" } else { "\"" };
                            let text = format!(
                                "{keyword} is {keyword}. name: {keyword}-agent\n  v: 1 {name}{blanks}{op}{close}{value}\" {keyword}",
                            );
                            found += same_as_the_regex(&s, d, &regex, &text);
                        }
                    }
                }
            }
        }
        // Between the operator and the value: blanks up to the five the
        // pattern takes and one more, a backslash, each quote, and bytes
        // no value starts with (`"twilio": "^5.3.0"`, a nested map); the
        // call form with blanks up to the four it takes and one more.
        let between = [
            "",
            "\"",
            " ",
            "     ",
            "      ",
            "\t\n\x0b\x0c\r",
            "     \"",
            "      \"",
            "     \\\"",
            "\\\"",
            " \\'",
            "`",
            "\\",
        ];
        let not_values = ["^", "{", "[\"", "\" ", "<", "$", "."];
        // The longest way to the value: 20 identifier bytes, ` string`,
        // an escaped quote, four blanks, `:::=`, five blanks, a quote.
        for identifier in ["", "_Ab3", "-Ab3.Cd4", "_Ab3_Cd4_Ef5_Gh6_Ij7 string\\\"\t\t\t\t"] {
            for op in ops.iter().filter(|op| !op.ends_with('"')) {
                for before in between.iter().chain(&not_values) {
                    let text = format!("{keyword}{identifier}{op}{before}{value}\" {keyword}");
                    found += same_as_the_regex(&s, d, &regex, &text);
                }
                // The value one byte short, and with a byte it cannot hold.
                let short = &value[..value.len() - 1];
                let broken = format!("{}!{}", &value[..5], &value[6..]);
                for value in [short, &broken] {
                    let text = format!("{keyword}{identifier}{op}\"{value}\" {keyword}");
                    found += same_as_the_regex(&s, d, &regex, &text);
                }
            }
            for call in ["\",\"", "\", '", "\"\t,    \"", "\",     \"", "\", \\\"", "\", ", "\", \"^"] {
                let text = format!("{keyword}{identifier}{call}{value}\" {keyword}");
                found += same_as_the_regex(&s, d, &regex, &text);
            }
        }
        assert!(found > 50, "{id}: {found}");
    }
}

/// `generic_credential` reads its match at a credential name from the
/// bytes, and finds one only when an assignment and a value of eight
/// bytes or more follow: names with every
/// form of assignment the pattern takes and some it does not (`.`, `+`,
/// four signs, five blanks, nine after `>`), then values one byte either
/// side of the shortest, and values that start with a byte no value starts
/// with, find what the detector's regex finds (and the forms that are
/// assignments do find something).
#[test]
fn credential_names_with_every_assignment_and_value_length_equal_the_reference() {
    let s = scanner();
    let d = detector("generic_credential").unwrap();
    let regex = d.compile().unwrap();
    let names = ["password", "DB_PASSWORD", "_PASSWD", "apiKey", "Token", "csrf_token"];
    let assignments = [
        "=",
        ":",
        ": ",
        "=>",
        ":=",
        ".=",
        "?=",
        "+=",
        "?:=",
        "...=",
        "....=",
        ".",
        "+",
        "?",
        ".:",
        "\\\":\\\"",
        "\": \"",
        "\"=",
        "'='",
        "    =    ",
        "     =",
        "=     ",
        ">",
        "> \n\t\r ",
        ">        ",
        ">         ",
        "\">\"",
        " ",
        // The longest the pattern takes, and one more blank.
        "\\\"    ...=    \\\"",
        "\\\"    ...=     \\\"",
    ];
    let values =
        ["Zq7x9Kp", "Zq7x9Kp2", "Zq7x9Kp2w", "Zq7x9Kp2w4Ld8Rt", ".Zq7x9Kp2w", "=Zq7x9Kp2", "+Zq7x9Kp2w", "Zq7x9+./:=?"];
    let mut found = 0;
    for name in names {
        for assignment in assignments {
            for value in values {
                for after in ["", "\"", " ", ",x=1"] {
                    let text = format!("{name} {name}{assignment}{value}{after} {name}");
                    found += same_as_the_regex(&s, d, &regex, &text);
                }
            }
        }
    }
    assert!(found > 500, "{found}");
}

/// `password_in_url` runs its regex at a `://` only where the userinfo the
/// pattern needs follows it: users and passwords one byte either side of
/// their bounds, every byte that ends either part placed in each, a `:` in
/// the password, every kind of first byte of the host, and schemes of every
/// length around the pattern's, find what the detector's regex finds (and
/// the URLs with a password are found).
#[test]
fn urls_with_every_userinfo_length_and_ending_equal_the_reference() {
    let s = scanner();
    let d = detector("password_in_url").unwrap();
    let regex = d.compile().unwrap();
    let users = ["", "u", "deploy", &"u".repeat(63), &"u".repeat(64), &"u".repeat(65)];
    let passwords = ["", "p", "Zq7x9Kp2w4", "Zq7x:9Kp2w4", &"p".repeat(127), &"p".repeat(128), &"p".repeat(129)];
    let enders = ["", " ", "\t", "\x0b", "\n", "@", "/", "?", "#", "[", "]", "\"", "'", "<", ">", "\\", ":"];
    let hosts = ["db.example.com", "[::1]", "-x.example", ".x", "", "x"];
    let mut found = 0;
    for scheme in ["https", "s", "postgres+ssl", &"s".repeat(31), &"s".repeat(32)] {
        for user in users {
            for password in passwords {
                for host in hosts {
                    let text = format!("x {scheme}://{user}:{password}@{host}/path y");
                    found += same_as_the_regex(&s, d, &regex, &text);
                }
            }
        }
    }
    for ender in enders {
        for (user, password) in
            [(format!("de{ender}ploy"), "Zq7x9Kp2w4".to_owned()), ("deploy".to_owned(), format!("Zq7x{ender}9Kp2w4"))]
        {
            let text = format!("x https://{user}:{password}@db.example.com/ y https://a:b@c");
            found += same_as_the_regex(&s, d, &regex, &text);
        }
    }
    assert!(found > 150, "{found}");
}

/// `generic_credential`'s match at a key word is read from the bytes
/// (`credential_end`), not by its regex: at every offset of generated text
/// made of names that overlap (`csrf_token` and `_token`, `secret` and
/// `secret_key`, `credential` and `credentials`, lower case after a word
/// byte, and each with one byte changed anywhere in it), every byte an
/// assignment is made of, and values of every length around the shortest
/// and the longest, it ends the match where the regex anchored there does,
/// or finds none where the regex finds none.
#[test]
fn credential_ends_read_from_the_bytes_equal_the_anchored_regex() {
    use warden_engine::dlp::detectors::credential_end;
    let d = detector("generic_credential").unwrap();
    let at_start = Regex::new(&format!(r"\A(?:{})", d.pattern)).unwrap();
    let after_one = Regex::new(&format!(r"\A(?s-u:.)(?:{})", d.pattern)).unwrap();
    let names = [
        "password",
        "Password",
        "PASSWORD",
        "passwords",
        "pass",
        "PASS",
        "pwd",
        "xpassword",
        "DB_PASSWORD",
        "_PASSWD",
        "secret",
        "secret_key",
        "secretKey",
        "secret-key",
        "SecretKey",
        "clientSecret",
        "token",
        "Token",
        "_token",
        "csrf_token",
        "csrfToken",
        "CSRF-TOKEN",
        "nextPageToken",
        "page_token",
        "credential",
        "credentials",
        "CREDENTIALS",
        "_credentials",
        "api_key",
        "x-api-key",
        "APIKey",
        "ApiKey",
        "accessKey",
        "private_key",
        "authtoken",
    ];
    let signs =
        ["\\", "\"", "'", "`", ">", " ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", ":", "?", ".", "+", "=", "=>", "::"];
    let assignments = [
        "=",
        ":",
        ": ",
        "\":\"",
        "\": \"",
        "=>",
        ":=",
        "?:=",
        ">",
        "> \n",
        "\\\":\\\"",
        "    =    ",
        "\t\t\t\t=\t\t\t\t",
        "     =",
        "'='",
        ">        ",
        ">         ",
        ">\x0b\x0c\r\n\t   ",
    ];
    let value = |rng: &mut Rng, n: usize| -> String {
        const BYTES: &[u8] = b"aZ09!#$%*/@^_|~-+./:=?";
        (0..n).map(|_| *rng.pick(BYTES) as char).collect()
    };
    // A name, one time in three with one byte changed (names are compared
    // eight bytes at a time, then the rest).
    let name = |rng: &mut Rng| -> String {
        let mut name = rng.pick::<&str>(&names).as_bytes().to_vec();
        if rng.below(3) == 0 {
            let k = rng.below(name.len());
            let other = *rng.pick(b"aAzZ_-x0");
            name[k] = if other == name[k] { b'q' } else { other };
        }
        String::from_utf8(name).unwrap()
    };
    let mut rng = Rng(0xc4ed);
    let (mut checked, mut found) = (0, 0);
    for _ in 0..10_000 {
        let mut text = String::new();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 => text.push_str(&name(&mut rng)),
                // A name, an assignment, a value.
                1 => {
                    text.push_str(&name(&mut rng));
                    if rng.below(2) == 0 {
                        text.push_str(rng.pick::<&str>(&assignments));
                    }
                    for _ in 0..rng.below(3) {
                        text.push_str(rng.pick::<&str>(&signs));
                    }
                    let n = *rng.pick(&[6, 7, 8, 9, 30, 128, 129, 130]);
                    text.push_str(&value(&mut rng, n));
                }
                2 => {
                    for _ in 0..rng.below(6) {
                        text.push_str(rng.pick::<&str>(&signs));
                    }
                }
                3 => {
                    let n = *rng.pick(&[1, 6, 7, 8, 9, 20, 127, 128, 129, 130, 140]);
                    text.push_str(&value(&mut rng, n));
                }
                _ => text.push_str(rng.pick::<&str>(&[" ", "&", ",", "\"", "}", "x", "_", "\u{ff}"])),
            }
        }
        let hay = text.as_bytes();
        for at in 0..hay.len() {
            let want = match at.checked_sub(1) {
                None => at_start.find(hay).map(|m| m.end()),
                Some(before) => after_one.find(&hay[before..]).map(|m| before + m.end()),
            };
            assert_eq!(credential_end(hay, at), want, "at {at} of {text:?}");
            checked += 1;
            found += usize::from(want.is_some());
        }
    }
    assert!(found > 450 && checked > 500_000, "{found} of {checked}");
}

/// `iban` runs its regex at a country code only where the country's length
/// holds the electronic or the printed form with no word byte after it:
/// valid IBANs of every country, electronic and printed (spaces, dashes,
/// both), one character short and long, followed by each kind of byte,
/// and codes repeated (`GB82 GB82 …`), find what the detector's regex
/// finds (and the valid ones are found).
#[test]
fn iban_codes_with_every_length_and_ending_equal_the_reference() {
    let s = scanner();
    let d = detector("iban").unwrap();
    let regex = d.compile().unwrap();
    let Anchor::CodeAndDigits(countries) = d.anchor else { panic!("iban is anchored on country codes") };
    let mut rng = Rng(0x1ba4);
    let mut found = 0;
    for country in countries {
        let &(_, len) = warden_engine::dlp::validators::IBAN_LENGTHS
            .iter()
            .find(|(c, _)| c == country)
            .unwrap_or_else(|| panic!("{country} has no length"));
        for delta in [0i32, -1, 1] {
            let value = iban(&mut rng, country, (len as i32 + delta) as usize);
            let printed = |sep: &dyn Fn(usize) -> char| {
                let mut out = value[..4].to_owned();
                for (k, chunk) in value.as_bytes()[4..].chunks(4).enumerate() {
                    out.push(sep(k));
                    out.push_str(std::str::from_utf8(chunk).unwrap());
                }
                out
            };
            for form in
                [value.clone(), printed(&|_| ' '), printed(&|_| '-'), printed(&|k| if k % 2 == 0 { ' ' } else { '-' })]
            {
                for after in ["", " ", ".", "A", "a", "_", "7", "-", "\"", " AB"] {
                    let text = format!("IBAN: {form}{after} x {country}12 {country}12{after}");
                    found += same_as_the_regex(&s, d, &regex, &text);
                }
            }
        }
    }
    for unit in ["GB82 ", "GB82-", "DE89 3704 ", "GB82 WEST "] {
        let text = unit.repeat(300);
        assert_eq!(fast_for(&s, "iban", text.as_bytes()), own_findings(d, &regex, text.as_bytes()), "{unit:?}");
    }
    assert!(found > 4 * countries.len(), "{found}");
    // And the check itself passes such codes over, so the regex does not
    // run there: no word byte may follow the country's length.
    use warden_engine::dlp::validators::iban_may_match;
    assert!(iban_may_match(b"GB82WEST12345698765432", 0));
    assert!(iban_may_match(b"GB82 WEST 1234 5698 7654 32.", 0));
    for crafted in ["GB82WEST12345698765432a", "GB82 WEST 1234 5698 7654 32_", "GB82 GB82 GB82 GB82 GB82 GB82 "] {
        assert!(!iban_may_match(crafted.as_bytes(), 0), "{crafted}");
    }
}

/// A one- or two-byte anchor whose detector's matches never follow a word
/// byte (`\B\+[1-9]`, a phone number's `+`) is no anchor occurrence after
/// one: base64's `a+1` costs the table loop nothing. After a space, a
/// quote, a parenthesis or at the start it is one, and the number is
/// found. (At an even offset the pair `+1` itself is in the table: the
/// occurrence is seen there and the detector's own check refuses it.)
#[test]
fn short_anchors_after_word_bytes_are_no_occurrences_where_no_match_can_start() {
    let phone = Scanner::new(&[detector("phone_number").unwrap()], Vec::new()).unwrap();
    let mut skipped = 0;
    for lead in ["", "x", " x", "  x"] {
        for (before, found) in
            [("a", false), ("Z", false), ("_", false), ("0", false), (" ", true), ("\"", true), ("(", true)]
        {
            let text = format!("{lead}{before}+14155552671 ");
            let at = lead.len() + before.len();
            let seen = phone.anchors(text.as_bytes()).iter().any(|&(start, _)| start == at);
            assert_eq!(phone.scan(text.as_bytes()).is_empty(), !found, "{text:?}");
            if found {
                assert!(seen, "{text:?}");
            } else if at % 2 == 1 {
                assert!(!seen, "{text:?}");
                skipped += 1;
            }
        }
    }
    assert_eq!(skipped, 8);
    let start = phone.anchors(b"+14155552671");
    assert_eq!(start.len(), 1);
}

/// Detectors whose matches start with `\b` at their anchor are not
/// looked at where a word byte comes before an anchor (`glsa_glsa_…`):
/// every detector's samples after every kind of byte, and after its own
/// anchors glued together, find what its regex finds (a pattern with an
/// alternative that does not start with `\b`, such as a vendor keyword's
/// assignment, is looked at everywhere). A test detector whose `\b`
/// comes before a `+` matches only after a word byte.
#[test]
fn anchors_after_word_bytes_equal_the_reference() {
    static PLUS: Detector = Detector {
        id: "test_plus",
        group: warden_engine::dlp::Group::Generic,
        description: "Test: a word boundary before a non-word anchor",
        anchor: Anchor::Literals(&["+1"]),
        pattern: r"(?-u)\b\+1[0-9]{3}",
        validator: None,
        keep_last: 0,
    };
    let s = scanner();
    let plus = Scanner::new(&[&PLUS], Vec::new()).unwrap();
    let mut checked = 0;
    for (d, s) in CATALOGUE.iter().map(|d| (d, &s)).chain([(&PLUS, &plus)]) {
        let Anchor::Literals(words) = d.anchor else { continue };
        let regex = d.compile().unwrap();
        let samples = if d.id == "test_plus" { vec!["a+1234".to_owned()] } else { positives(d.id) };
        let glued: String = words.iter().map(|w| w.to_string()).collect();
        let mut found = 0;
        for sample in samples.iter().take(6) {
            let Some(m) = regex.find(sample.as_bytes()).map(|m| m.as_bytes().to_vec()) else { continue };
            for before in ["", "a", "Z", "_", "0", " ", "-", ".", "\"", "é", "\u{80}", &glued] {
                let mut text = before.as_bytes().to_vec();
                text.extend_from_slice(&m);
                text.extend_from_slice(b" ");
                text.extend_from_slice(glued.as_bytes());
                let want = own_findings(d, &regex, &text);
                found += want.len();
                assert_eq!(fast_for(s, d.id, &text), want, "{}: {:?}", d.id, String::from_utf8_lossy(&text));
            }
        }
        assert!(found >= 5, "{}: {found}", d.id);
        checked += 1;
    }
    assert!(checked > 60, "{checked}");
}

/// A numeric detector the scanner has no built-in shape for is found at
/// every run of two or more digits.
#[test]
fn a_numeric_detector_without_a_built_in_shape() {
    static SHORT: Detector = Detector {
        id: "test_order",
        group: warden_engine::dlp::Group::Generic,
        description: "Test: an order number 123-456",
        anchor: Anchor::Digits { min: 6, max: 6 },
        pattern: r"(?-u)\b[0-9]{3}-[0-9]{3}\b",
        validator: None,
        keep_last: 0,
    };
    let s = Scanner::new(&[&SHORT, detector("credit_card").unwrap()], Vec::new()).unwrap();
    let regex = SHORT.compile().unwrap();
    let lines = sample_lines();
    let mut rng = Rng(7);
    for _ in 0..500 {
        let mut text = String::new();
        for _ in 0..rng.below(10) + 2 {
            if rng.below(3) == 0 {
                let n = rng.below(4) + 1;
                text += &format!("{}-{}", rng.digits(n), rng.digits(3));
            } else {
                text += &piece(&mut rng, &lines);
            }
        }
        let data = text.as_bytes();
        let mut want: Vec<_> = regex.find_iter(data).map(|m| ("test_order".to_owned(), m.start(), m.end())).collect();
        want.extend(reference_for("credit_card", data));
        want.sort();
        assert_eq!(fast(&s, &s.scan(data)), want, "{text:?}");
    }
}

// ---------------------------------------------------------------- custom patterns

/// (name, pattern) → a scanner with the pattern as its only detector,
/// anchored as the policy compiler anchors it.
fn custom_scanner(name: &str, pattern: &str) -> (Scanner, Regex) {
    let regex = compile_custom(name, pattern).unwrap();
    let s = Scanner::new(&[], vec![(name.to_owned(), regex.clone(), custom_anchors(pattern))]).unwrap();
    (s, regex)
}

#[test]
fn custom_anchors_are_literals_every_match_contains() {
    let cases: &[(&str, &[&str])] = &[
        ("itk_[A-Za-z0-9]{32}", &["itk_"]),
        (r"\bEMP-\d{6}\b", &["EMP-"]),
        ("(?:foo|bar)_[0-9]+", &["bar_", "foo_"]),
        ("[a-z]+_secret=[0-9]{4}", &["_secret="]),
        ("[0-9]{4}-internal", &["-internal"]),
        ("(?i)tok-[a-z]{4}", &["TOK-", "TOk-", "ToK-", "Tok-", "tOK-", "tOk-", "toK-", "tok-"]),
        // Two bytes are still far cheaper than a regex over everything.
        (r"\bx[0-9]{3,5}\b", &["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"]),
    ];
    for (pattern, want) in cases {
        assert_eq!(custom_anchors(pattern), *want, "{pattern}");
    }
    // No literal of two bytes or more: scanned whole.
    for pattern in [r"[A-Z]{3}[0-9]{4}", r"\d{3}-\d{4}", "[a-z]@[a-z]", "(unclosed", "x|yz"] {
        assert_eq!(custom_anchors(pattern), Vec::<String>::new(), "{pattern}");
    }
    // Too many literals, even shortened to two bytes.
    let many = (0..MAX_CUSTOM_ANCHORS + 1)
        .map(|i| format!("{}{}k", char::from(b'a' + (i / 26) as u8), char::from(b'a' + (i % 26) as u8)))
        .collect::<Vec<_>>()
        .join("|");
    assert_eq!(custom_anchors(&format!("(?:{many})=[0-9]+")), Vec::<String>::new());
}

/// Custom patterns with and without anchors find what their regex finds
/// over the whole input, embedded in JSON and prose, whole and in a
/// stream split anywhere.
#[test]
fn custom_patterns_with_and_without_anchors() {
    let cases = [
        ("internal-token", "itk_[A-Za-z0-9]{32}", true),
        ("employee-id", r"\bEMP-\d{6}\b", true),
        ("vault-path", "[a-z]+_secret=[0-9]{4}", true),
        ("phone-ext", r"\bx[0-9]{3,5}\b", true),
        ("ticket", r"\b[A-Z]{3}[0-9]{4}\b", false),
        ("serial", r"[0-9]{3}-[0-9]{4}", false),
    ];
    let texts = [
        "token=itk_0123456789abcdef0123456789ABCDEF and EMP-123456, EMP-1234567",
        "{\"id\": \"ABC1234\", \"ext\": \"x1234\", \"path\": \"db_secret=0042\", \"t\": \"itk_0123456789abcdef0123456789ABCDEF\"}",
        "ABC1234ABC1234 XYZ9876 x12 x123456 EMP-000001 api_secret=1234 _secret=1234 itk_short 555-0199-12",
        "itk_0123456789abcdef0123456789ABCDEFitk_0123456789abcdef0123456789ABCDEF",
    ];
    for (name, pattern, anchored) in cases {
        assert_eq!(!custom_anchors(pattern).is_empty(), anchored, "{pattern}");
        let (s, regex) = custom_scanner(name, pattern);
        for text in texts {
            for data in [text.to_owned(), format!("{{\"note\": \"{text}\"}}"), format!("x {text} y")] {
                let data = data.as_bytes();
                let want: Vec<_> = regex.find_iter(data).map(|m| (name.to_owned(), m.start(), m.end())).collect();
                assert_eq!(fast(&s, &s.scan(data)), want, "{name}: {}", String::from_utf8_lossy(data));
                for cut in 0..=data.len() {
                    let mut stream = Stream::new(&s);
                    let mut hits = stream.feed(&data[..cut], false);
                    hits.extend(stream.feed(&data[cut..], true));
                    assert_eq!(fast(&s, &hits), want, "{name}, cut at {cut}: {}", String::from_utf8_lossy(data));
                }
            }
        }
    }
    // Every case found something somewhere.
    for (name, pattern, _) in cases {
        let (s, _) = custom_scanner(name, pattern);
        assert!(texts.iter().any(|t| !s.scan(t.as_bytes()).is_empty()), "{name} found nothing");
    }
}

/// Custom patterns next to the whole catalogue: each finds its own.
#[test]
fn custom_patterns_beside_the_catalogue() {
    let mut all: Vec<&Detector> = CATALOGUE.iter().collect();
    all.retain(|d| d.id != "password_in_url");
    let custom = vec![
        (
            "internal-token".to_owned(),
            compile_custom("internal-token", "itk_[A-Za-z0-9]{8}").unwrap(),
            custom_anchors("itk_[A-Za-z0-9]{8}"),
        ),
        (
            "ticket".to_owned(),
            compile_custom("ticket", r"\b[A-Z]{3}[0-9]{4}\b").unwrap(),
            custom_anchors(r"\b[A-Z]{3}[0-9]{4}\b"),
        ),
    ];
    let s = Scanner::new(&all, custom).unwrap();
    let body = br#"{"card": "4111 1111 1111 1111", "t": "itk_abcdEFGH", "ticket": "ABC1234"}"#;
    let ids: Vec<&str> = s.scan(body).iter().map(|h| s.detectors()[h.detector].id.as_str()).collect();
    assert_eq!(ids, ["credit_card", "internal-token", "ticket"]);
}

// ---------------------------------------------------------------- streaming

/// The positive samples of a data file, markers removed.
fn positives(id: &str) -> Vec<String> {
    std::fs::read_to_string(data_dir().join(format!("{id}.txt")))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("+ "))
        .map(|l| l.replace("[[", "").replace("]]", "").replace('⏎', "\n"))
        .collect()
}

/// A body with long findings (PEM keys, JWTs) among short ones and clean
/// JSON, streamed in chunks of many sizes: the same findings as the
/// reference over the whole body, each once, with absolute offsets.
#[test]
fn a_long_body_streamed_in_chunks_of_any_size() {
    let s = scanner();
    let clean = std::fs::read(data_dir().join("corpus/orders.json")).unwrap();
    let mut body = Vec::new();
    let mut parts: Vec<String> = positives("private_key");
    parts.extend(positives("jwt"));
    parts.extend(positives("credit_card"));
    parts.extend(positives("email"));
    for (k, part) in parts.iter().enumerate() {
        body.extend_from_slice(&clean[k * 997 % 300_000..k * 997 % 300_000 + 700]);
        body.extend_from_slice(format!("{{\"v\": \"{part}\"}}\n").as_bytes());
    }
    let want = reference(&body);
    assert!(want.iter().any(|f| f.0 == "private_key") && want.iter().any(|f| f.0 == "jwt"));
    for size in [61, 500, 1000, 4096, 16384, body.len()] {
        let mut state = StreamState::new();
        let mut hits: Vec<StreamHit> = Vec::new();
        let mut max_retained = 0;
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            hits.extend(state.feed(&s, chunk, n + 1 == chunks.len()));
            max_retained = max_retained.max(state.retained());
        }
        let got: Vec<_> = {
            let mut v: Vec<_> =
                hits.iter().map(|h| (s.detectors()[h.detector].id.clone(), h.start as usize, h.end as usize)).collect();
            v.sort();
            v
        };
        assert_eq!(got, want, "chunks of {size}");
        // Twice the short window, and a long match (at most the window).
        assert!(max_retained <= 2 * 1024 + s.window() + size, "chunks of {size}: kept {max_retained}");
    }
}

/// A PEM header near the end of what has arrived keeps its text until the
/// key is complete; clean data keeps only the short windows.
#[test]
fn a_stream_keeps_an_open_key_and_little_else() {
    let s = scanner();
    let key = positives("private_key").into_iter().max_by_key(String::len).unwrap();
    let (head, tail) = key.split_at(key.len() / 2);
    let mut stream = Stream::new(&s);
    let filler = vec![b'x'; 20_000];
    assert!(stream.feed(&filler, false).is_empty());
    assert!(stream.retained() <= 2 * 1024, "kept {}", stream.retained());
    assert!(stream.feed(head.as_bytes(), false).is_empty());
    assert!(stream.retained() >= head.len(), "the open key is kept: {}", stream.retained());
    let mut hits = stream.feed(tail.as_bytes(), false);
    hits.extend(stream.feed(&filler, false));
    hits.extend(stream.feed(b"", true));
    let want = reference(&[filler.as_slice(), key.as_bytes(), filler.as_slice()].concat());
    assert_eq!(fast(&s, &hits), want);
    assert!(want.iter().any(|f| f.0 == "private_key"));
}

/// A literal anchor inside a longer one of the same detector (`secret` in
/// `client_secret`) can be found at its pair before the longer one is at
/// its own, which may lie further in: the longer one starts first, and a
/// detector's candidates are verified in the order of their starts. Every
/// such pair of anchors of the catalogue, each assigned values of several
/// kinds: the same findings as the reference scan.
#[test]
fn anchors_inside_longer_anchors_equal_the_reference() {
    let s = scanner();
    let others = others();
    let values =
        ["=Zq7x9Kp2wLmQ", "\": \"a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6\"", ": 0123456789ABCDEFGHIJabcdefghij0123456789"];
    let (mut pairs, mut found) = (0, 0);
    for d in CATALOGUE {
        let Anchor::Literals(literals) = d.anchor else { continue };
        for outer in literals {
            for inner in literals.iter().filter(|inner| inner.len() < outer.len() && outer[1..].contains(**inner)) {
                pairs += 1;
                for value in values {
                    found += both_as_the_reference(&s, &others, &format!("{outer}{value} x{outer}{inner}{value}"));
                }
            }
        }
    }
    assert!(pairs > 30 && found > 30, "{pairs} pairs, {found} findings");
}

/// The findings come in body order (start, then end, then detector), each
/// once, whichever pass found them: numeric runs are judged in the table
/// loop, literal anchors after it, so a key before a card number is found
/// after it.
#[test]
fn findings_come_in_body_order() {
    let s = scanner();
    let body = r#"{"key": "AKIAZ7VQ2XK4MHL3RWTN", "card": "4111111111111111", "again": "AKIAZ7VQ2XK4MHL3RWTN 4111111111111111"}"#;
    let hits = s.scan(body.as_bytes());
    let ids: Vec<&str> = hits.iter().map(|h| s.detectors()[h.detector].id.as_str()).collect();
    assert_eq!(ids, ["aws_access_key_id", "credit_card", "aws_access_key_id", "credit_card"], "{hits:?}");
    let keys: Vec<_> = hits.iter().map(|h| (h.span.start, h.span.end, h.detector)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted);
}
