//! [`Secret`]: an API key that never prints. Alpaca's key id and secret key travel in request
//! headers only; everywhere else (Debug, Display, errors, logs) they are `***`.

/// A credential read from the environment. Its text is reachable only through
/// [`Secret::expose`], which the client calls when it sets a request header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The credential's text, for a request header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `message` with this credential's text, if it appears, replaced by `***`: a server
    /// that echoes a header back must not carry the key into an error message.
    pub fn scrub(&self, message: &str) -> String {
        if self.0.is_empty() {
            return message.to_string();
        }
        message.replace(&self.0, "***")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_text() {
        // Catches: a derived Debug, or a Display that shows the key.
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?} {s} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "sk-very-secret");
        assert_eq!(s.scrub("bad key sk-very-secret given"), "bad key *** given");
    }
}
