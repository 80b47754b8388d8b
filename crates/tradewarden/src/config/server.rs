//! `[server]` and `[[api_tokens]]`: where `serve` listens, how it stops, and who may call it
//! (each token only as its SHA-256, never the token itself).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use tradewarden_domain::expert::Expert;

use super::{Section, secs};

/// `[server] shutdown_grace_seconds`: accepted values.
pub const SHUTDOWN_GRACE_SECONDS: RangeInclusive<i64> = 0..=3_600;
/// `[server] max_body_bytes`: accepted values (1 byte to 1 GiB).
pub const MAX_BODY_BYTES: RangeInclusive<i64> = 1..=1_073_741_824;
/// `[server] bind` when not configured.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// `[server]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `bind` (default `127.0.0.1:8080`); `serve --bind` overrides it.
    pub bind: SocketAddr,
    /// `shutdown_grace_seconds` (default 30): how long running requests and background work
    /// may take to finish after SIGINT / SIGTERM.
    pub shutdown_grace: Duration,
    /// `max_body_bytes` (default 1 MiB): a larger request body is refused with 413.
    pub max_body_bytes: usize,
    /// `metrics_require_token` (default false): `/metrics` needs a token of any role.
    pub metrics_require_token: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: DEFAULT_BIND
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            shutdown_grace: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            metrics_require_token: false,
        }
    }
}

/// What an API token may do: an expert posts its own recommendations and reads its own data;
/// an operator reads everything and runs processing, refresh and close; an admin does all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Expert,
    Operator,
    Admin,
}

impl Role {
    /// The role's name in the configuration and in `token new --role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Expert => "expert",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "expert" => Some(Role::Expert),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// One `[[api_tokens]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Who holds it (logged instead of the token).
    pub name: String,
    /// SHA-256 of the token.
    pub token_sha256: [u8; 32],
    pub role: Role,
    /// The expert an `expert` token acts for; `None` for the other roles.
    pub expert_id: Option<i64>,
}

/// Reads `[server]`.
pub(super) fn server(top: &mut Section<'_>, errs: &mut Vec<String>) -> ServerSettings {
    let mut out = ServerSettings::default();
    let Some(mut s) = top.table("server", errs) else {
        return out;
    };
    if let Some(bind) = s.string("bind", errs) {
        match bind.trim().parse::<SocketAddr>() {
            Ok(addr) => out.bind = addr,
            Err(_) => errs.push(format!(
                "{}: expected IP:PORT (e.g. {DEFAULT_BIND} or 0.0.0.0:8080), got {bind:?}",
                s.at("bind")
            )),
        }
    }
    let grace = s.integer("shutdown_grace_seconds", 30, SHUTDOWN_GRACE_SECONDS, errs);
    out.shutdown_grace = secs(grace);
    let max_body = s.integer(
        "max_body_bytes",
        out.max_body_bytes as i64,
        MAX_BODY_BYTES,
        errs,
    );
    out.max_body_bytes = usize::try_from(max_body).unwrap_or(out.max_body_bytes);
    out.metrics_require_token = s.boolean("metrics_require_token", false, errs);
    s.finish(errs);
    out
}

/// Reads every `[[api_tokens]]` entry; `expert_id` is required for, and only for, the expert
/// role, and must name a configured expert.
pub(super) fn api_tokens(
    top: &mut Section<'_>,
    experts: &BTreeMap<i64, Expert>,
    errs: &mut Vec<String>,
) -> Vec<ApiToken> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (path, t) in top.array_of_tables("api_tokens", errs) {
        let mut e = Section::new(path.clone(), t);
        let name = e.required_string("name", errs);
        let hash = e
            .required_string("token_sha256", errs)
            .and_then(|h| match parse_sha256(&h) {
                Some(bytes) => Some(bytes),
                None => {
                    errs.push(format!(
                        "{path}.token_sha256: expected 64 hexadecimal digits (the SHA-256 that \"tradewarden token new\" prints)"
                    ));
                    None
                }
            });
        let role = e
            .required_string("role", errs)
            .and_then(|r| match Role::parse(&r) {
                Some(role) => Some(role),
                None => {
                    errs.push(format!(
                        "{path}.role: unknown role {r:?} (expected admin, operator or expert)"
                    ));
                    None
                }
            });
        let expert_id = match e.get("expert_id") {
            None => None,
            Some(v) => super::integer_in(&e.at("expert_id"), v, &super::EXPERT_ID, errs),
        };
        let has_expert = t.contains_key("expert_id");
        e.finish(errs);
        match (role, has_expert) {
            (Some(Role::Expert), false) => errs.push(format!(
                "{path}.expert_id: missing — an expert token acts for one expert"
            )),
            (Some(r @ (Role::Operator | Role::Admin)), true) => errs.push(format!(
                "{path}.expert_id: only an expert token has one (this one's role is {})",
                r.as_str()
            )),
            _ => {}
        }
        if let Some(id) = expert_id
            && !experts.contains_key(&id)
        {
            errs.push(format!("{path}.expert_id: unknown expert {id}"));
        }
        if let Some(n) = &name
            && !names.insert(n.clone())
        {
            errs.push(format!("{path}.name: duplicate token name {n:?}"));
        }
        if let (Some(name), Some(token_sha256), Some(role)) = (name, hash, role) {
            out.push(ApiToken {
                name,
                token_sha256,
                role,
                expert_id: expert_id.filter(|_| role == Role::Expert),
            });
        }
    }
    out
}

/// 64 hexadecimal digits as 32 bytes.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// Bytes as lowercase hexadecimal.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_CONFIG, parse};

    /// The problems of the default configuration with `extra` appended.
    fn errors(extra: &str) -> Vec<String> {
        match parse(&format!("{DEFAULT_CONFIG}\n{extra}")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        }
    }

    #[test]
    fn server_and_token_problems_name_their_key() {
        let hash = "ab".repeat(32);
        let cases: Vec<(String, &str)> = vec![
            (
                "[server]\nbind = \"localhost\"".into(),
                "server.bind: expected IP:PORT",
            ),
            (
                "[server]\nshutdown_grace_seconds = -1".into(),
                "server.shutdown_grace_seconds: out of range",
            ),
            (
                "[server]\nmax_body_bytes = 0".into(),
                "server.max_body_bytes: out of range",
            ),
            (
                "[server]\nmetrics_require_token = 1".into(),
                "server.metrics_require_token",
            ),
            ("[server]\nport = 1".into(), "server.port: unknown key"),
            (
                format!(
                    "[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"{hash}\"\nrole = \"expert\""
                ),
                "api_tokens[0].expert_id: missing",
            ),
            (
                format!(
                    "[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"{hash}\"\nrole = \"admin\"\nexpert_id = 1"
                ),
                "api_tokens[0].expert_id: only an expert token",
            ),
            (
                format!(
                    "[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"{hash}\"\nrole = \"expert\"\nexpert_id = 7"
                ),
                "api_tokens[0].expert_id: unknown expert 7",
            ),
            (
                format!("[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"{hash}\"\nrole = \"root\""),
                "api_tokens[0].role: unknown role",
            ),
            (
                "[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"secret\"\nrole = \"admin\"".into(),
                "api_tokens[0].token_sha256: expected 64 hexadecimal digits",
            ),
            (
                format!(
                    "[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"{hash}\"\nrole = \"admin\"\n[[api_tokens]]\nname = \"a\"\ntoken_sha256 = \"{hash}\"\nrole = \"operator\""
                ),
                "api_tokens[1].name: duplicate token name",
            ),
        ];
        for (extra, want) in cases {
            let errs = errors(&extra);
            assert!(
                errs.iter().any(|e| e.starts_with(want)),
                "{extra:?}: {errs:?}"
            );
        }
        let ok = format!(
            "[server]\nbind = \"0.0.0.0:9000\"\n[[api_tokens]]\nname = \"p\"\ntoken_sha256 = \"{hash}\"\nrole = \"expert\"\nexpert_id = 1"
        );
        let cfg = parse(&format!("{DEFAULT_CONFIG}\n{ok}")).unwrap();
        assert_eq!(cfg.server.bind.port(), 9000);
        assert_eq!(cfg.api_tokens[0].role, Role::Expert);
        assert_eq!(cfg.api_tokens[0].expert_id, Some(1));
    }

    #[test]
    fn background_intervals_are_ranged() {
        let with = |key: &str, v: &str| {
            DEFAULT_CONFIG.replace(
                "lease_seconds = 30",
                &format!("lease_seconds = 30\n{key} = {v}"),
            )
        };
        for key in ["refresh_interval_seconds", "process_interval_seconds"] {
            for bad in ["0", "-5", "86401", "\"soon\""] {
                let errs = parse(&with(key, bad)).unwrap_err().0;
                let want = format!("processing.{key}:");
                assert!(
                    errs.iter().any(|e| e.starts_with(&want)),
                    "{key} = {bad}: {errs:?}"
                );
            }
        }
        let cfg = parse(&with("process_interval_seconds", "120")).unwrap();
        assert_eq!(
            cfg.background.process_interval,
            Some(Duration::from_secs(120))
        );
        assert_eq!(cfg.background.refresh_interval, Duration::from_secs(60));
        assert_eq!(
            parse(DEFAULT_CONFIG).unwrap().background.process_interval,
            None
        );
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0u8..32).collect();
        assert_eq!(parse_sha256(&to_hex(&bytes)).unwrap().to_vec(), bytes);
        for bad in ["", "zz", &"0".repeat(63), &"g".repeat(64)] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }
}
