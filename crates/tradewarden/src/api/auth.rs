//! Bearer tokens and roles. A token is known only by its SHA-256 (`[[api_tokens]]`, or
//! `$TRADEWARDEN_ADMIN_TOKEN` hashed at start); a request's token is hashed and compared with
//! every known hash in constant time ([`same_hash`]). Tokens are never logged: a caller is named by its
//! token's `name`.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::request::Parts;

use crate::config::{ApiToken, Role};

use super::Api;
use super::error::ApiError;

/// The environment variable holding an admin token (its value is hashed at start).
pub const ADMIN_TOKEN_ENV: &str = "TRADEWARDEN_ADMIN_TOKEN";

/// Who is calling: a configured token's name, role and expert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// The expert an expert token acts for.
    pub expert_id: Option<i64>,
}

/// What a route does, for the role check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Post recommendations, create and end analysis jobs: experts for themselves, admins.
    Submit,
    /// Read data: experts their own, operators and admins everything.
    Read,
    /// Process, refresh, close: operators and admins.
    Operate,
}

impl Access {
    fn allows(self, role: Role) -> bool {
        matches!(
            (role, self),
            (Role::Admin, _)
                | (Role::Operator, Access::Read | Access::Operate)
                | (Role::Expert, Access::Submit | Access::Read)
        )
    }

    fn words(self) -> &'static str {
        match self {
            Access::Submit => "submitting recommendations and jobs (expert or admin)",
            Access::Read => "reading",
            Access::Operate => "processing, refresh and close (operator or admin)",
        }
    }
}

impl Caller {
    /// 403 unless the caller's role allows `access`.
    pub fn may(&self, access: Access) -> Result<(), ApiError> {
        if access.allows(self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token {:?} has the role {}, which does not allow {}",
                self.name,
                self.role.as_str(),
                access.words()
            )))
        }
    }

    /// 403 when an expert token acts for another expert than its own.
    pub fn may_act_for(&self, expert_id: i64) -> Result<(), ApiError> {
        match self.expert_id {
            Some(own) if own != expert_id => Err(ApiError::forbidden(format!(
                "token {:?} acts for expert {own} only, not for expert {expert_id}",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// The expert a read is limited to: an expert token reads its own data only (asking for
    /// another's is 403); other roles read what they ask for.
    pub fn read_scope(&self, asked: Option<i64>) -> Result<Option<i64>, ApiError> {
        self.may(Access::Read)?;
        match (self.expert_id, asked) {
            (Some(own), Some(id)) => self.may_act_for(id).map(|()| Some(own)),
            (Some(own), None) => Ok(Some(own)),
            (None, asked) => Ok(asked),
        }
    }
}

/// Every known token's hash and its caller.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    known: Vec<([u8; 32], Caller)>,
}

impl Tokens {
    /// The configured tokens, plus the admin token `admin` (from [`ADMIN_TOKEN_ENV`]) when set
    /// and not blank.
    pub fn new(configured: &[ApiToken], admin: Option<&str>) -> Tokens {
        let mut known: Vec<([u8; 32], Caller)> = configured
            .iter()
            .map(|t| {
                let caller = Caller {
                    name: t.name.clone(),
                    role: t.role,
                    expert_id: t.expert_id,
                };
                (t.token_sha256, caller)
            })
            .collect();
        if let Some(token) = admin.map(str::trim).filter(|t| !t.is_empty()) {
            let caller = Caller {
                name: format!("${ADMIN_TOKEN_ENV}"),
                role: Role::Admin,
                expert_id: None,
            };
            known.push((sha256(token.as_bytes()), caller));
        }
        Tokens { known }
    }

    /// Whether no token is known at all (then `serve` binds only loopback addresses).
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The caller whose token is `token`. Every known hash is compared, each in constant
    /// time, so the time taken says nothing about which one (nearly) matched.
    pub fn find(&self, token: &str) -> Option<&Caller> {
        let hash = sha256(token.as_bytes());
        let mut found = None;
        for (known, caller) in &self.known {
            if same_hash(known, &hash) {
                found = Some(caller);
            }
        }
        found
    }

    /// The caller of a request: 401 without an `Authorization: Bearer` header or with an
    /// unknown token. With no token configured at all every request is the local admin:
    /// `serve` then listens on loopback addresses only, so only this host reaches it.
    pub fn caller(&self, parts: &Parts) -> Result<Caller, ApiError> {
        if self.is_empty() {
            return local_caller(parts);
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        self.find(token)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

/// The caller of a request when no token is configured: this host, as admin, but only for
/// a request addressed to a loopback name (`Host`) and sent by no other site's page
/// (`Origin` absent or loopback). Binding loopback alone does not keep out a web page open
/// in a browser on this host: it may post to `127.0.0.1` (a request a browser sends without
/// asking first), or reach it under its own name by DNS rebinding; both are 403 here.
fn local_caller(parts: &Parts) -> Result<Caller, ApiError> {
    let header_host = |name| {
        parts
            .headers
            .get(name)
            .map(|v| v.to_str().ok().map(host_of).unwrap_or_default())
    };
    // HTTP/2 names the host in the URI's authority, HTTP/1.1 in `Host`.
    let host = header_host(HOST).or(parts.uri.host().map(|h| h.trim_matches(['[', ']'])));
    let loopback_host = host.is_some_and(is_loopback_name);
    let loopback_origin = header_host(ORIGIN).is_none_or(is_loopback_name);
    if !(loopback_host && loopback_origin) {
        return Err(ApiError::forbidden(
            "with no API token configured, serve answers only requests to a loopback address \
             (Host) from no other site (Origin); configure [[api_tokens]] to be reached otherwise",
        ));
    }
    Ok(Caller {
        name: "local (no API token configured)".to_string(),
        role: Role::Admin,
        expert_id: None,
    })
}

/// The host of a `Host` header (`127.0.0.1:8080`, `[::1]:8080`) or an `Origin`
/// (`http://localhost:3000`), without scheme, port or brackets.
fn host_of(value: &str) -> &str {
    let rest = value.split_once("://").map_or(value, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

/// Whether `host` names this host's loopback: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let caller = api.tokens.caller(parts)?;
        tracing::debug!(caller = %caller.name, role = caller.role.as_str(), "authenticated");
        Ok(caller)
    }
}

/// Whether two hashes are equal, looking at every byte whatever the first difference (no
/// early exit that would tell an attacker how many leading bytes matched).
fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A fresh token: 32 random bytes from the operating system, as 64 hexadecimal digits.
pub fn new_token() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(crate::config::to_hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::to_hex;

    fn token(role: Role, expert_id: Option<i64>, secret: &str) -> ApiToken {
        ApiToken {
            name: format!("{}-{expert_id:?}", role.as_str()),
            token_sha256: sha256(secret.as_bytes()),
            role,
            expert_id,
        }
    }

    #[test]
    fn a_token_is_found_by_its_hash_only() {
        let tokens = Tokens::new(&[token(Role::Expert, Some(1), "s1")], Some("root"));
        assert_eq!(tokens.find("s1").unwrap().expert_id, Some(1));
        assert_eq!(tokens.find("root").unwrap().role, Role::Admin);
        assert!(tokens.find("s2").is_none());
        assert!(tokens.find(&to_hex(&sha256(b"s1"))).is_none());
        assert!(Tokens::new(&[], Some("  ")).is_empty());
    }

    #[test]
    fn roles_allow_what_the_issue_says() {
        use Access::*;
        let cases = [
            (Role::Expert, Submit, true),
            (Role::Expert, Read, true),
            (Role::Expert, Operate, false),
            (Role::Operator, Submit, false),
            (Role::Operator, Read, true),
            (Role::Operator, Operate, true),
            (Role::Admin, Submit, true),
            (Role::Admin, Read, true),
            (Role::Admin, Operate, true),
        ];
        for (role, access, allowed) in cases {
            assert_eq!(access.allows(role), allowed, "{role:?} {access:?}");
        }
    }

    #[test]
    fn new_tokens_are_64_hex_digits_and_differ() {
        let a = new_token().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_token().unwrap());
    }
}

#[cfg(test)]
mod local_tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder().uri("/api/v1/transactions");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn without_tokens_only_loopback_requests_from_no_other_site_are_the_local_admin() {
        let none = Tokens::default();
        for ok in [
            vec![("host", "127.0.0.1:8080")],
            vec![
                ("host", "localhost:8080"),
                ("origin", "http://localhost:3000"),
            ],
            vec![("host", "[::1]:8080"), ("origin", "http://127.0.0.1:8080")],
        ] {
            let caller = none.caller(&parts(&ok)).unwrap();
            assert_eq!(caller.role, Role::Admin, "{ok:?}");
        }
        for refused in [
            vec![],
            vec![("host", "evil.example:8080")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ],
            vec![("host", "127.0.0.1.evil.example")],
            vec![("host", "127.0.0.1:8080"), ("origin", "null")],
        ] {
            let err = none.caller(&parts(&refused)).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::FORBIDDEN, "{refused:?}");
        }
    }
}
