//! `tradewarden token new`: a fresh API token, printed once, and the configuration block
//! that holds only its SHA-256.

use crate::api::auth::{new_token, sha256};
use crate::config::to_hex;
use crate::failure::{Failure, runtime};
use crate::out;

/// Arguments of `token`.
pub use crate::cli::TokenArgs as Args;

/// Prints the token, then the `[[api_tokens]]` block.
pub fn run(args: Args) -> Result<(), Failure> {
    let Args::New { name, role, expert } = args;
    // The configuration refuses a blank name: never print a block `check` would refuse.
    if name.trim().is_empty() {
        return Err(Failure::Input(
            "token new --name: must not be empty — the name is what the log shows instead of the token".into(),
        ));
    }
    match (role.as_str(), expert) {
        ("expert", None) => {
            return Err(Failure::Input(
                "token new --role expert: --expert ID is missing — an expert token acts for one expert".into(),
            ));
        }
        (r, Some(_)) if r != "expert" => {
            return Err(Failure::Input(format!(
                "token new --role {r}: --expert is only for --role expert — leave it out"
            )));
        }
        _ => {}
    }
    let token = new_token().map_err(|_| runtime("the operating system gave no random bytes"))?;
    out::stdout(&block(&token, &name, &role, expert));
    Ok(())
}

/// What `token new` prints: the token on its own line, then the TOML block with its hash.
fn block(token: &str, name: &str, role: &str, expert: Option<i64>) -> String {
    let hash = to_hex(&sha256(token.as_bytes()));
    let name = toml::Value::String(name.to_string());
    let expert = expert
        .map(|id| format!("expert_id = {id}\n"))
        .unwrap_or_default();
    format!(
        "token: {token}\n\n# Give the token above to its holder (it is shown only this once); add this to the configuration:\n\
         [[api_tokens]]\nname = {name}\ntoken_sha256 = \"{hash}\"\nrole = \"{role}\"\n{expert}"
    )
}
