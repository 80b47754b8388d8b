//! Hiding database passwords in everything tradewarden prints: `check` output and every
//! message that echoes a database URL.
//!
//! A secret can sit in three places: the userinfo of a URL (`postgres://u:SECRET@host/db`), a
//! `password=` or `sslpassword=` URL parameter (`…/db?password=SECRET`), and a libpq
//! key/value string (`host=h password='SECRET'`). Each is replaced by `***`. Redaction errs
//! on the side of hiding: a doubtful stretch of text is masked rather than shown.

/// What a hidden secret is replaced by.
pub const MASK: &str = "***";

/// Parameter names whose values are secrets (compared case-insensitively, percent-decoded).
const SECRET_KEYS: &[&str] = &["password", "sslpassword"];

/// Secrets shorter than this are not searched for in free text (see [`scrub`]): replacing
/// every `a` of a message would hide nothing and garble everything.
const MIN_SCRUB_LEN: usize = 3;

/// `url` with every password replaced by [`MASK`].
pub fn url(url: &str) -> String {
    let (masked, _) = parameters(&userinfo(url).0);
    masked
}

/// Free text (an error message, a TOML error quoting a line) with every URL password and
/// password parameter masked, line by line.
pub fn text(text: &str) -> String {
    text.split('\n').map(url).collect::<Vec<_>>().join("\n")
}

/// `message` with the secrets of `url` removed: wherever the URL itself appears it is
/// redacted, and any secret value of it that still appears (a driver quoting a misparsed
/// value, say) is masked too.
pub fn scrub(message: &str, url: &str) -> String {
    let mut out = text(message);
    for secret in secrets(url) {
        if secret.chars().count() >= MIN_SCRUB_LEN {
            out = out.replace(&secret, MASK);
        }
    }
    out
}

/// Every secret value in `url`, as written and percent-decoded.
pub fn secrets(url: &str) -> Vec<String> {
    let (after_userinfo, mut found) = userinfo(url);
    found.extend(parameters(&after_userinfo).1);
    let mut all: Vec<String> = found
        .iter()
        .flat_map(|s| [s.clone(), percent_decode(s), unquote(s)])
        .filter(|s| !s.is_empty())
        .collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    all
}

/// Masks the password of `scheme://user:password@host…`; returns the text and the password.
///
/// The userinfo is taken to run from `://` to the *last* `@` of the text, so a password with
/// an unencoded `@`, `/` or `?` is still hidden whole; a `:` followed by digits and then `/`,
/// `?` or `#` is a port, not a password. Doubtful text is masked (the safe mistake).
fn userinfo(url: &str) -> (String, Vec<String>) {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return (url.to_string(), Vec::new());
    };
    let Some(at) = url[start..].rfind('@').map(|i| start + i) else {
        return (url.to_string(), Vec::new());
    };
    let info = &url[start..at];
    let Some(colon) = info.find(':') else {
        return (url.to_string(), Vec::new());
    };
    let after = &info[colon + 1..];
    let digits = after.bytes().take_while(u8::is_ascii_digit).count();
    if after[digits..].starts_with(['/', '?', '#']) {
        return (url.to_string(), Vec::new());
    }
    (
        format!("{}{}:{MASK}{}", &url[..start], &info[..colon], &url[at..]),
        vec![after.to_string()],
    )
}

/// Whether a parameter name may start right after `prev`.
fn is_boundary(prev: Option<char>) -> bool {
    prev.is_none_or(|c| c.is_whitespace() || matches!(c, '?' | '&' | ';' | ',' | '"' | '\''))
}

/// Masks the value of every `password=` / `sslpassword=` parameter, in URL query form
/// (`&`-separated) or libpq key/value form (spaces around `=`, values in single quotes with
/// backslash escapes). Returns the text and the values masked.
fn parameters(s: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(s.len());
    let mut found = Vec::new();
    let mut prev = None;
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if is_boundary(prev)
            && let Some((value_start, value_end)) = secret_parameter(rest)
        {
            out.push_str(&rest[..value_start]);
            out.push_str(MASK);
            found.push(rest[value_start..value_end].to_string());
            i += value_end;
            prev = rest[..value_end].chars().last().or(Some('='));
            continue;
        }
        let c = rest.chars().next().expect("i < len");
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
    }
    (out, found)
}

/// If `rest` starts with a secret parameter: where its value starts and ends.
fn secret_parameter(rest: &str) -> Option<(usize, usize)> {
    let key_len = rest
        .find(|c: char| c == '=' || c.is_whitespace() || matches!(c, '&' | '?' | '#' | ';'))
        .unwrap_or(rest.len());
    if key_len == 0 {
        return None;
    }
    let key = percent_decode(&rest[..key_len]).to_ascii_lowercase();
    if !SECRET_KEYS.contains(&key.as_str()) {
        return None;
    }
    let after_key = &rest[key_len..];
    let eq = after_key.len() - after_key.trim_start().len();
    if !after_key[eq..].starts_with('=') {
        return None;
    }
    let after_eq = &after_key[eq + 1..];
    let value_start = key_len + eq + 1 + (after_eq.len() - after_eq.trim_start().len());
    let value = &rest[value_start..];
    let value_len = if value.starts_with('\'') {
        quoted_len(value)
    } else {
        value
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '#' | '"'))
            .unwrap_or(value.len())
    };
    Some((value_start, value_start + value_len))
}

/// Length of a single-quoted libpq value, quotes included (to the end if unterminated).
fn quoted_len(value: &str) -> usize {
    let mut escaped = false;
    for (i, c) in value.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return i + 1,
            _ => {}
        }
    }
    value.len()
}

/// A single-quoted libpq value without its quotes and escapes (other text unchanged).
fn unquote(s: &str) -> String {
    match s.strip_prefix('\'') {
        None => s.to_string(),
        Some(inner) => {
            let inner = inner.strip_suffix('\'').unwrap_or(inner);
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' {
                    chars.next().unwrap_or(c)
                } else {
                    c
                });
            }
            out
        }
    }
}

/// Form-style percent decoding (`%XX`, `+` as space); invalid sequences are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_password_is_masked() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://x.db", "sqlite://x.db"),
            ("sqlite:tradewarden.db", "sqlite:tradewarden.db"),
            (
                "postgres://u@h/db?password=secret",
                "postgres://u@h/db?password=***",
            ),
            (
                "postgres://u@h/db?sslmode=require&sslpassword=secret&application_name=tw",
                "postgres://u@h/db?sslmode=require&sslpassword=***&application_name=tw",
            ),
            (
                "postgres://u@h/db?PassWord=secret",
                "postgres://u@h/db?PassWord=***",
            ),
            (
                "postgres://u@h/db?pass%77ord=secret",
                "postgres://u@h/db?pass%77ord=***",
            ),
            (
                "host=h user=u password=secret dbname=db",
                "host=h user=u password=*** dbname=db",
            ),
            (
                "host=h password = 'se cr\\'et' dbname=db",
                "host=h password = *** dbname=db",
            ),
            ("postgres: password=secret", "postgres: password=***"),
            ("postgres://u:p@ss/w?rd@h/db", "postgres://u:***@h/db"),
            ("postgres://u:1234@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h:5432/db?application_name=a@b",
                "postgres://h:5432/db?application_name=a@b",
            ),
            (
                "postgres://u@h:5432/db?application_name=a@b",
                "postgres://u@h:5432/db?application_name=a@b",
            ),
            // `password` inside another word is not a parameter.
            (
                "postgres://u@h/mypassword=db",
                "postgres://u@h/mypassword=db",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(url(input), want, "{input}");
        }
    }

    #[test]
    fn secrets_are_found_in_every_spelling() {
        let s = secrets("postgres://u:p%40ss@h/db?sslpassword=two&x=1");
        for want in ["p%40ss", "p@ss", "two"] {
            assert!(s.contains(&want.to_string()), "{want} in {s:?}");
        }
        assert_eq!(secrets("host=h password='a\\'b'"), ["'a\\'b'", "a'b"]);
    }

    #[test]
    fn scrub_masks_the_url_and_stray_copies_of_its_secrets() {
        let u = "postgres://u:hunter2@h/db";
        let msg =
            "cannot connect to postgres://u:hunter2@h/db: database \"hunter2\" does not exist";
        let out = scrub(msg, u);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("postgres://u:***@h/db"), "{out}");
    }

    #[test]
    fn text_masks_each_line_on_its_own() {
        let t = "TOML parse error at line 2\n2 | url = \"postgres://u:secret@h/db\n  |   ^";
        let out = text(t);
        assert!(!out.contains("secret"), "{out}");
        assert!(out.contains("TOML parse error at line 2"), "{out}");
    }

    #[test]
    fn percent_decoding_keeps_what_it_cannot_decode() {
        assert_eq!(percent_decode("a%40b+c"), "a@b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
