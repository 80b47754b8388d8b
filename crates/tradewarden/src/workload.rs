//! Deterministic workload generator: writes expert recommendations as JSON Lines, byte for byte
//! identical to `gen_recommendations.py` (CPython's `random.Random`, `round` and `json.dumps`).

use std::io::{self, Write};

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc};

/// Actions with their relative weights, in the order the Python script tries them.
const ACTIONS: [(&str, u32); 5] = [
    ("BUY", 55),
    ("SELL", 15),
    ("HOLD", 15),
    ("OVERWEIGHT", 10),
    ("UNDERWEIGHT", 5),
];
/// Risk levels, drawn uniformly.
const RISK: [&str; 3] = ["LOW", "MEDIUM", "HIGH"];
/// Time horizons, drawn uniformly.
const HORIZON: [&str; 3] = ["SHORT_TERM", "MEDIUM_TERM", "LONG_TERM"];
/// Last year Python's `datetime` can represent; beyond it the script stops with an error.
const MAX_YEAR: i32 = 9999;

/// Arguments of the generator, mirroring the command line of `gen_recommendations.py`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenArgs {
    /// Number of experts; ids run from 1 to `experts`.
    pub experts: u32,
    /// Number of symbols per expert, named `SYM0000`, `SYM0001`, ...
    pub symbols: u32,
    /// Number of recommendations per expert and symbol (outer rounds).
    pub per_symbol: u32,
    /// Seed of the Mersenne Twister, as `random.Random(seed)` (full `u64` range).
    pub seed: u64,
    /// Time of the first recommendation; each following one is one second later.
    pub start: DateTime<Utc>,
}

impl Default for GenArgs {
    /// The Python defaults: 20 experts, 100 symbols, 1 per symbol, seed 42, 2026-11-27T10:00:00Z.
    fn default() -> Self {
        Self {
            experts: 20,
            symbols: 100,
            per_symbol: 1,
            seed: 42,
            start: Utc
                .with_ymd_and_hms(2026, 11, 27, 10, 0, 0)
                .single()
                .expect("2026-11-27T10:00:00Z is a valid UTC time"),
        }
    }
}

/// Writes the recommendations for `args` to `out`, one JSON object per line, exactly as the
/// Python script does. Wrap `out` in a `BufWriter` for large workloads.
///
/// Zero experts, symbols or rounds produce no output. If `created_at` would pass year 9999
/// (where Python fails), the lines before it are written and an `InvalidInput` error is returned.
pub fn generate(args: &GenArgs, out: &mut impl Write) -> io::Result<()> {
    let mut rng = MersenneTwister::new(args.seed);
    let mut n: u64 = 0;
    for _round in 0..args.per_symbol {
        for expert in 1..=args.experts {
            for symbol in 0..args.symbols {
                let created_at = created_at(args.start, n)?;
                Recommendation::draw(&mut rng, expert, symbol, created_at).write_json(out)?;
                n += 1;
            }
        }
    }
    Ok(())
}

/// One generated recommendation, with values already rounded as Python rounds them.
struct Recommendation {
    expert_id: u32,
    symbol: u32,
    action: &'static str,
    confidence: f64,
    expected_profit_percent: f64,
    price_at_date: f64,
    risk_level: &'static str,
    time_horizon: &'static str,
    created_at: DateTime<Utc>,
}

impl Recommendation {
    /// Draws the random fields in the script's order: action, three uniforms, two choices.
    fn draw(
        rng: &mut MersenneTwister,
        expert_id: u32,
        symbol: u32,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            expert_id,
            symbol,
            action: pick(rng, &ACTIONS),
            confidence: py_round::<1>(rng.uniform(30.0, 98.0)),
            expected_profit_percent: py_round::<2>(rng.uniform(-5.0, 25.0)),
            price_at_date: py_round::<2>(rng.uniform(5.0, 500.0)),
            risk_level: rng.choice(&RISK),
            time_horizon: rng.choice(&HORIZON),
            created_at,
        }
    }

    /// Writes the record as `json.dumps(rec, separators=(",", ":"))` plus a newline.
    fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            concat!(
                r#"{{"expert_id":{},"symbol":"SYM{:04}","action":"{}","confidence":{},"#,
                r#""expected_profit_percent":{},"price_at_date":{},"risk_level":"{}","#,
                r#""time_horizon":"{}","created_at":"{}"}}"#,
            ),
            self.expert_id,
            self.symbol,
            self.action,
            py_float_repr(self.confidence),
            py_float_repr(self.expected_profit_percent),
            py_float_repr(self.price_at_date),
            self.risk_level,
            self.time_horizon,
            py_timestamp(&self.created_at),
        )
    }
}

/// Python's `pick`: walks the weights with `uniform(0, total)`, falling back to the last value.
fn pick<const N: usize>(
    rng: &mut MersenneTwister,
    weighted: &[(&'static str, u32); N],
) -> &'static str {
    const { assert!(N > 0) };
    let total: u32 = weighted.iter().map(|&(_, w)| w).sum();
    let mut r = rng.uniform(0.0, f64::from(total));
    for &(value, w) in weighted {
        r -= f64::from(w);
        if r <= 0.0 {
            return value;
        }
    }
    weighted[N - 1].0
}

/// `start + n` seconds, or `InvalidInput` where Python's `datetime` would overflow.
fn created_at(start: DateTime<Utc>, n: u64) -> io::Result<DateTime<Utc>> {
    i64::try_from(n)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|delta| start.checked_add_signed(delta))
        .filter(|t| t.year() <= MAX_YEAR)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "created_at beyond year 9999"))
}

/// Python's `strftime("%Y-%m-%dT%H:%M:%SZ")` on glibc, where `%Y` is not zero-padded.
fn py_timestamp(t: &DateTime<Utc>) -> String {
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Exact powers of ten representable in an `f64` (10^0 ..= 10^22).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Python's `round(x, DIGITS)` for floats: round half to even on the exact binary value of `x`,
/// then the nearest `f64` to the decimal result (what CPython does with dtoa and strtod).
/// `DIGITS` is limited to 22 at compile time so that the arithmetic stays exact in `u128`.
fn py_round<const DIGITS: u32>(x: f64) -> f64 {
    const { assert!(DIGITS <= 22) };
    let Some((mantissa, shift)) = fraction_parts(x) else {
        return x;
    };
    let scaled = u128::from(mantissa) * 10u128.pow(DIGITS);
    let units = round_half_even_shr(scaled, shift);
    decimal_to_f64(units, DIGITS).copysign(x)
}

/// Splits `x` into `|x| = mantissa / 2^shift` with `shift > 0`; `None` for zero, non-finite
/// values and values of magnitude at least 2^52, which are integers and need no rounding.
fn fraction_parts(x: f64) -> Option<(u64, u32)> {
    if !x.is_finite() || x == 0.0 {
        return None;
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = match biased {
        0 => (fraction, -1074),
        _ => (fraction | (1 << 52), biased - 1075),
    };
    u32::try_from(-exponent)
        .ok()
        .filter(|&s| s > 0)
        .map(|s| (mantissa, s))
}

/// `value / 2^shift` rounded half to even; `value` must be below 2^127.
fn round_half_even_shr(value: u128, shift: u32) -> u128 {
    if shift >= 128 {
        return 0; // value < 2^127 <= 2^(shift - 1): strictly below one half.
    }
    let quotient = value >> shift;
    let remainder = value & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    let round_up = remainder > half || (remainder == half && quotient & 1 == 1);
    quotient + u128::from(round_up)
}

/// The `f64` nearest to `units / 10^digits`, correctly rounded like `strtod`.
fn decimal_to_f64(units: u128, digits: u32) -> f64 {
    const EXACT_LIMIT: u128 = 1 << 53;
    if units <= EXACT_LIMIT {
        // Both operands are exact, so IEEE division rounds once, correctly.
        return units as f64 / POW10[digits as usize];
    }
    let text = format!("{units}e-{digits}");
    text.parse().unwrap_or(f64::NAN) // Always parses: digits, 'e', '-', digits.
}

/// Python's `repr(float)` as `json.dumps` writes it: shortest round-trip digits, `.0` on
/// integral values, exponent form (`1e+16`, `1.5e-07`) outside `1e-4 <= |x| < 1e16`, and
/// `NaN` / `Infinity` / `-Infinity` for non-finite values.
fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if x == 0.0 || (1e-4..1e16).contains(&x.abs()) {
        return fixed_repr(x);
    }
    exponent_repr(x)
}

/// Plain decimal digits of `x`, with `.0` appended when there is no fractional part.
fn fixed_repr(x: f64) -> String {
    let mut text = x.to_string();
    if !text.contains('.') {
        text.push_str(".0");
    }
    text
}

/// Scientific notation with Python's signed, at least two-digit exponent.
fn exponent_repr(x: f64) -> String {
    let text = format!("{x:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// CPython's MT19937 (`random.Random`), limited to what the generator needs.
struct MersenneTwister {
    state: [u32; MersenneTwister::N],
    index: usize,
}

impl MersenneTwister {
    const N: usize = 624;
    const M: usize = 397;
    const MATRIX_A: u32 = 0x9908_b0df;
    const UPPER_MASK: u32 = 0x8000_0000;
    const LOWER_MASK: u32 = 0x7fff_ffff;

    /// `random.Random(seed)`: `init_by_array` on the seed's 32-bit words, least significant
    /// first, with one word even when the seed is zero.
    fn new(seed: u64) -> Self {
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let key: &[u32] = if high == 0 { &[low] } else { &[low, high] };
        let mut rng = Self::from_seed_word(19_650_218);
        rng.mix_key(key);
        rng
    }

    /// Reference `init_genrand(s)`.
    fn from_seed_word(seed: u32) -> Self {
        let mut state = [0u32; Self::N];
        state[0] = seed;
        for i in 1..Self::N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self {
            state,
            index: Self::N,
        }
    }

    /// The two mixing passes of reference `init_by_array(key)`.
    fn mix_key(&mut self, key: &[u32]) {
        let mt = &mut self.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..Self::N.max(key.len()) {
            let prev = mt[i - 1];
            mt[i] = (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            (i, j) = (i + 1, (j + 1) % key.len());
            if i >= Self::N {
                mt[0] = mt[Self::N - 1];
                i = 1;
            }
        }
        for _ in 0..Self::N - 1 {
            let prev = mt[i - 1];
            mt[i] =
                (mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= Self::N {
                mt[0] = mt[Self::N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    /// Regenerates all 624 words of state.
    fn twist(&mut self) {
        let mt = &mut self.state;
        for k in 0..Self::N {
            let y = (mt[k] & Self::UPPER_MASK) | (mt[(k + 1) % Self::N] & Self::LOWER_MASK);
            let odd = if y & 1 == 1 { Self::MATRIX_A } else { 0 };
            mt[k] = mt[(k + Self::M) % Self::N] ^ (y >> 1) ^ odd;
        }
        self.index = 0;
    }

    /// Reference `genrand_uint32()`: next tempered 32-bit word.
    fn next_u32(&mut self) -> u32 {
        if self.index >= Self::N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random()`: a 53-bit float in [0, 1).
    fn random(&mut self) -> f64 {
        let a = f64::from(self.next_u32() >> 5);
        let b = f64::from(self.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `uniform(a, b)` = `a + (b - a) * random()`.
    fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }

    /// `getrandbits(k)` for `1 <= k <= 32`.
    fn getrandbits(&mut self, k: u32) -> u32 {
        self.next_u32() >> (32 - k)
    }

    /// `_randbelow(n)` for `n >= 1`: rejection sampling on `n.bit_length()` bits.
    fn randbelow(&mut self, n: u32) -> u32 {
        let k = u32::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `choice(seq)` on a non-empty array (checked at compile time).
    fn choice<T: Copy, const N: usize>(&mut self, items: &[T; N]) -> T {
        const { assert!(N > 0 && N <= u32::MAX as usize) };
        items[self.randbelow(N as u32) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixtures written by `gen_recommendations.py` with the arguments in their names.
    const FIXTURES: [(&str, &str, GenArgsSpec); 4] = [
        (
            "--experts 3 --symbols 7 --per-symbol 2 --seed 7",
            include_str!("../tests/fixtures/e3_s7_p2_seed7.jsonl"),
            (3, 7, 2, 7, None),
        ),
        (
            "--experts 2 --symbols 50",
            include_str!("../tests/fixtures/e2_s50_default.jsonl"),
            (2, 50, 1, 42, None),
        ),
        (
            "--experts 4 --symbols 10 --seed 0",
            include_str!("../tests/fixtures/e4_s10_seed0.jsonl"),
            (4, 10, 1, 0, None),
        ),
        (
            "--experts 3 --symbols 10 --per-symbol 2 --seed 12345678901234 --start 2030-12-31T23:59:30Z",
            include_str!("../tests/fixtures/e3_s10_p2_bigseed.jsonl"),
            (3, 10, 2, 12_345_678_901_234, Some("2030-12-31T23:59:30Z")),
        ),
    ];

    /// experts, symbols, per_symbol, seed, start (None = default).
    type GenArgsSpec = (u32, u32, u32, u64, Option<&'static str>);

    fn args_from(spec: GenArgsSpec) -> GenArgs {
        let (experts, symbols, per_symbol, seed, start) = spec;
        let start = start.map_or(GenArgs::default().start, |s| {
            s.parse().expect("fixture start")
        });
        GenArgs {
            experts,
            symbols,
            per_symbol,
            seed,
            start,
        }
    }

    fn generate_string(args: &GenArgs) -> String {
        let mut out = Vec::new();
        generate(args, &mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("ASCII output")
    }

    #[test]
    fn matches_python_fixtures() {
        for (cli, expected, spec) in FIXTURES {
            assert_eq!(generate_string(&args_from(spec)), expected, "{cli}");
        }
    }

    #[test]
    fn default_matches_python_defaults() {
        let args = GenArgs::default();
        assert_eq!(
            (args.experts, args.symbols, args.per_symbol, args.seed),
            (20, 100, 1, 42)
        );
        assert_eq!(py_timestamp(&args.start), "2026-11-27T10:00:00Z");
    }

    #[test]
    fn zero_counts_produce_nothing() {
        for (experts, symbols, per_symbol) in [(0, 10, 1), (10, 0, 1), (10, 10, 0), (0, 0, 0)] {
            let args = GenArgs {
                experts,
                symbols,
                per_symbol,
                ..GenArgs::default()
            };
            assert_eq!(generate_string(&args), "");
        }
    }

    #[test]
    fn stops_with_error_past_year_9999() {
        let args = GenArgs {
            experts: 1,
            symbols: 3,
            start: "9999-12-31T23:59:59Z".parse().expect("valid date"),
            ..GenArgs::default()
        };
        let mut out = Vec::new();
        let err = generate(&args, &mut out).expect_err("year 10000");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn mersenne_twister_matches_cpython() {
        // Values from CPython 3.11 `random.Random(seed).random()`.
        let cases: [(u64, f64); 5] = [
            (42, 0.6394267984578837),
            (0, 0.8444218515250481),
            (u64::from(u32::MAX), 0.6353574441341173),
            (1 << 32, 0.11299430095636409),
            (u64::MAX, 0.021825695401270107),
        ];
        for (seed, expected) in cases {
            assert_eq!(MersenneTwister::new(seed).random(), expected, "seed {seed}");
        }
        let mut rng = MersenneTwister::new(42);
        rng.random();
        assert_eq!(rng.random(), 0.025010755222666936);
        assert_eq!(rng.getrandbits(32), 1_181_241_943);
    }

    #[test]
    fn round_matches_python() {
        // (x, round(x, 1), round(x, 2)) as printed by CPython 3.11.
        let cases: [(f64, &str, &str); 14] = [
            (0.125, "0.1", "0.12"),
            (0.375, "0.4", "0.38"),
            (2.675, "2.7", "2.67"),
            (0.25, "0.2", "0.25"),
            (0.35, "0.3", "0.35"),
            (-0.125, "-0.1", "-0.12"),
            (-0.001, "-0.0", "-0.0"),
            (1.005, "1.0", "1.0"),
            (30.25, "30.2", "30.25"),
            (30.75, "30.8", "30.75"),
            (97.95, "98.0", "97.95"),
            (123_456.785, "123456.8", "123456.79"),
            (1e-320, "0.0", "0.0"),
            (
                2_251_799_813_685_248.5,
                "2251799813685248.5",
                "2251799813685248.5",
            ),
        ];
        for (x, one, two) in cases {
            assert_eq!(py_float_repr(py_round::<1>(x)), one, "round({x}, 1)");
            assert_eq!(py_float_repr(py_round::<2>(x)), two, "round({x}, 2)");
        }
    }

    #[test]
    fn float_repr_matches_python() {
        let cases: [(f64, &str); 14] = [
            (8.0, "8.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (0.1, "0.1"),
            (123.45, "123.45"),
            (1e-4, "0.0001"),
            (9.999e-5, "9.999e-05"),
            (1.5e-7, "1.5e-07"),
            (2.5e-310, "2.5e-310"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (-1e22, "-1e+22"),
            (f64::INFINITY, "Infinity"),
            (f64::NAN, "NaN"),
        ];
        for (x, expected) in cases {
            assert_eq!(py_float_repr(x), expected, "repr({x:?})");
        }
    }

    #[test]
    fn timestamp_matches_python_strftime() {
        let cases = [
            ("2026-11-27T10:00:07Z", "2026-11-27T10:00:07Z"),
            ("0999-01-02T03:04:05Z", "999-01-02T03:04:05Z"),
        ];
        for (input, expected) in cases {
            let t: DateTime<Utc> = input.parse().expect("valid date");
            assert_eq!(py_timestamp(&t), expected);
        }
    }
}
