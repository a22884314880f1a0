//! API tokens (`--tokens-file`): for scripts and `lookout logs`, which send
//! `Authorization: Bearer TOKEN` instead of signing in. The file holds one token a line,
//! `NAME:SHA256_HEX[:SCOPES]`: only a hash of each token, which is 32 random bytes, so a
//! fast hash is as safe as a slow one and a request is checked in microseconds. A request
//! with a token acts as the user NAME, with the token's scopes.
//!
//! The server reads the file again whenever it changes (a new file, another size or time):
//! `lookout users token remove NAME` takes effect at the next request, and closes the sockets
//! opened with that token within a second.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::scope::Scope;
use super::users::{read_if_there, valid_name, write_private};
use crate::config::{Config, TokenAction};
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the tokens file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {why}")]
    Bad {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("a token name is letters, digits, '.', '-' and '_', got {0:?}")]
    BadName(String),
    #[error("{0}")]
    Scope(String),
}

/// A token's hash: what the file keeps and what a request is looked up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest32([u8; 32]);

impl Digest32 {
    pub fn of(token: &str) -> Digest32 {
        Digest32(Sha256::digest(token.as_bytes()).into())
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn parse(hex: &str) -> Option<Digest32> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Digest32(out))
    }
}

/// One token of the file.
#[derive(Clone, Debug)]
pub struct Token {
    pub name: String,
    pub scope: Scope,
    /// The scope as written, to write it back unchanged.
    scope_text: Option<String>,
    /// May write too: capture builds (`--write`).
    pub write: bool,
    digest: Digest32,
}

impl Token {
    pub fn digest(&self) -> Digest32 {
        self.digest
    }

    /// Whether this grants what `then` granted: the same name, scope and permission.
    pub fn grants_as(&self, then: &Token) -> bool {
        self.name == then.name && self.scope_text == then.scope_text && self.write == then.write
    }
}

/// Every token of a file, by name.
#[derive(Clone, Debug, Default)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// Reads the file; a file that does not exist holds no tokens.
    pub fn load(path: &Path) -> Result<Tokens, TokensError> {
        let Some(text) = read_if_there(path).map_err(|source| TokensError::Read {
            path: path.to_owned(),
            source,
        })?
        else {
            return Ok(Tokens::default());
        };
        let mut tokens = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| TokensError::Bad {
                path: path.to_owned(),
                line: i + 1,
                why: why.to_owned(),
            };
            let mut parts = line.splitn(4, ':');
            let name = parts.next().unwrap_or_default();
            let hash = parts
                .next()
                .ok_or_else(|| bad("expected NAME:SHA256_HEX[:SCOPES[:write]]"))?;
            if !valid_name(name) {
                return Err(bad("a token name is letters, digits, '.', '-' and '_'"));
            }
            let digest =
                Digest32::parse(hash).ok_or_else(|| bad("the hash is not 64 hex digits"))?;
            let scope_part = parts.next();
            let write = match parts.next() {
                None => false,
                Some("write") => true,
                Some(_) => return Err(bad("after the scopes, only `write` may follow")),
            };
            // Empty scopes mean every service only before `:write` (as `add` writes them):
            // a line cut short after its hash lets no one in, as it always did.
            if scope_part == Some("") && !write {
                return Err(bad("a scope names at least one project/service pattern"));
            }
            let scope_text = scope_part.filter(|t| !t.is_empty()).map(str::to_owned);
            let scope = match &scope_text {
                Some(t) => Scope::parse(t).map_err(|e| bad(&e))?,
                None => Scope::All,
            };
            tokens.push(Token {
                name: name.to_owned(),
                scope,
                scope_text,
                write,
                digest,
            });
        }
        Ok(Tokens(tokens))
    }

    fn find(&self, digest: Digest32) -> Option<&Token> {
        self.0.iter().find(|t| t.digest == digest)
    }

    fn save(&self, path: &Path) -> Result<(), TokensError> {
        let mut text = String::from("# Lookout API tokens: NAME:SHA256_HEX[:SCOPES[:write]]\n");
        for t in &self.0 {
            text.push_str(&t.name);
            text.push(':');
            text.push_str(&t.digest.hex());
            if t.scope_text.is_some() || t.write {
                text.push(':');
                text.push_str(t.scope_text.as_deref().unwrap_or_default());
            }
            if t.write {
                text.push_str(":write");
            }
            text.push('\n');
        }
        write_private(path, &text).map_err(|source| TokensError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// What identifies a version of the file on disk: an edit in place that keeps the size and
/// the modification time still changes the inode's change time.
type Stamp = (Option<SystemTime>, u64, u64, (i64, i64));

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.modified().ok(),
        m.len(),
        m.ino(),
        (m.ctime(), m.ctime_nsec()),
    ))
}

/// The server's view of the tokens file, read again whenever it changes.
pub struct TokenFile {
    path: PathBuf,
    held: Mutex<(Option<Stamp>, Result<Tokens, String>)>,
}

impl TokenFile {
    /// Reads the file at start: a file that does not read stops the server with its error.
    pub fn open(path: &Path) -> Result<TokenFile, TokensError> {
        let before = stamp(path);
        let tokens = Tokens::load(path)?;
        Ok(TokenFile {
            path: path.to_owned(),
            held: Mutex::new((before, Ok(tokens))),
        })
    }

    /// The token `presented` is, if the file holds it now. A file that no longer reads lets
    /// no token in until it is mended, and says why in the log once.
    pub fn find(&self, presented: &str) -> Option<Token> {
        self.holding(Digest32::of(presented))
    }

    /// The token of `digest`, if it is still in the file.
    pub fn holding(&self, digest: Digest32) -> Option<Token> {
        let mut held = self.held.lock().expect("tokens lock");
        let now = stamp(&self.path);
        if now != held.0 {
            let tokens = Tokens::load(&self.path).map_err(|e| e.to_string());
            if let Err(e) = &tokens {
                tracing::warn!(error = %e, "the tokens file does not read: no token is let in");
            }
            *held = (now, tokens);
        }
        held.1.as_ref().ok()?.find(digest).cloned()
    }
}

/// What every token begins with: a bearer without it is not Lookout's (a proxy's own, say).
pub const PREFIX: &str = "lk_";

/// A new token: `lk_` and 32 random bytes, base64url.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// `lookout users token add NAME`: a new token for NAME (replacing NAME's token, if any),
/// returned to be shown once; only its hash is written.
pub fn add(path: &Path, name: &str, scopes: &[String], write: bool) -> Result<String, TokensError> {
    if !valid_name(name) {
        return Err(TokensError::BadName(name.to_owned()));
    }
    let scope_text = (!scopes.is_empty()).then(|| scopes.join(","));
    let scope = match &scope_text {
        Some(t) => Scope::parse(t).map_err(TokensError::Scope)?,
        None => Scope::All,
    };
    let mut tokens = Tokens::load(path)?;
    let token = new_token();
    tokens.0.retain(|t| t.name != name);
    tokens.0.push(Token {
        name: name.to_owned(),
        scope,
        scope_text,
        write,
        digest: Digest32::of(&token),
    });
    tokens.save(path)?;
    Ok(token)
}

/// `lookout users token remove NAME`: whether there was one.
pub fn remove(path: &Path, name: &str) -> Result<bool, TokensError> {
    let mut tokens = Tokens::load(path)?;
    let before = tokens.0.len();
    tokens.0.retain(|t| t.name != name);
    let removed = tokens.0.len() != before;
    if removed {
        tokens.save(path)?;
    }
    Ok(removed)
}

/// `lookout users token list`: each token's name and scope, one a line (never the token).
pub fn list(path: &Path) -> Result<String, TokensError> {
    let mut lines: Vec<String> = Tokens::load(path)?
        .0
        .iter()
        .map(|t| {
            let may = if t.write { "read, write" } else { "read" };
            let scope = t.scope_text.as_deref().unwrap_or("*");
            format!("{}\t{scope}\t{may}\n", t.name)
        })
        .collect();
    lines.sort();
    Ok(lines.concat())
}

/// `lookout users token …`: changes the tokens file and says what it did; `add` prints the
/// new token alone on stdout, for a script to take.
pub fn command(config: &Config, action: &TokenAction) -> ExitCode {
    let Some(path) = &config.tokens_file else {
        eprintln!(
            "lookout users token: say which file with --tokens-file FILE (or LOOKOUT_TOKENS_FILE)"
        );
        return ExitCode::from(2);
    };
    let done = match action {
        TokenAction::Add {
            name,
            scopes,
            write,
        } => add(path, name, scopes, *write).map(|token| {
            println!("{token}");
            format!(
                "a token for {name}, shown this once; {} keeps only its hash",
                path.display()
            )
        }),
        TokenAction::Remove { name } => remove(path, name).map(|removed| {
            if removed {
                format!("{name}'s token removed")
            } else {
                format!("{name} has no token in {}", path.display())
            }
        }),
        TokenAction::List => list(path).map(|listed| {
            print!("{listed}");
            format!("{} tokens", listed.lines().count())
        }),
    };
    match done {
        Ok(said) => {
            eprintln!("lookout users token: {said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lookout users token: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lookout-tokens-{}-{}",
            std::process::id(),
            OsRng.next_u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("tokens")
    }

    #[test]
    fn a_token_is_shown_once_and_kept_only_as_its_hash() {
        let path = temp_file();
        let token = add(&path, "ci", &["shop/*".into()], false).unwrap();
        assert!(token.starts_with("lk_") && token.len() == 46, "{token}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&token[3..]),
            "the file holds no token: {text}"
        );
        assert!(text.contains(&format!("ci:{}:shop/*", Digest32::of(&token).hex())));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let file = TokenFile::open(&path).unwrap();
        let found = file.find(&token).expect("the token lets in");
        assert_eq!(found.name, "ci");
        assert!(file.find("lk_wrong").is_none());
        assert_eq!(list(&path).unwrap(), "ci\tshop/*\tread\n");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_token_may_write_only_when_made_so_and_the_file_keeps_it() {
        let path = temp_file();
        let reader = add(&path, "reader", &[], false).unwrap();
        let writer = add(&path, "deploy", &["shop/*".into()], true).unwrap();
        let everywhere = add(&path, "ci", &[], true).unwrap();
        let file = TokenFile::open(&path).unwrap();
        assert!(!file.find(&reader).unwrap().write);
        let deploy = file.find(&writer).unwrap();
        assert!(deploy.write);
        assert!(deploy
            .scope
            .allows(&app::protocol::ServiceKey::local("shop", "web")));
        assert!(!deploy
            .scope
            .allows(&app::protocol::ServiceKey::local("blog", "web")));
        assert!(file.find(&everywhere).unwrap().write);
        assert_eq!(
            list(&path).unwrap(),
            "ci\t*\tread, write\ndeploy\tshop/*\tread, write\nreader\t*\tread\n"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(":write", ":admin")).unwrap();
        let e = Tokens::load(&path).unwrap_err().to_string();
        assert!(e.ends_with("only `write` may follow"), "{e}");
        let digest = Digest32::of(&reader).hex();
        std::fs::write(&path, format!("reader:{digest}:\n")).unwrap();
        let e = Tokens::load(&path).unwrap_err().to_string();
        assert!(e.ends_with("at least one project/service pattern"), "{e}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_removed_or_replaced_token_stops_at_once_and_a_broken_file_lets_none_in() {
        let path = temp_file();
        let first = add(&path, "ci", &[], false).unwrap();
        let other = add(&path, "deploy", &[], true).unwrap();
        let file = TokenFile::open(&path).unwrap();
        assert!(file.find(&first).is_some());
        let second = add(&path, "ci", &[], false).unwrap();
        assert!(file.find(&first).is_none(), "replaced");
        assert!(file.find(&second).is_some());
        assert!(remove(&path, "ci").unwrap());
        assert!(!remove(&path, "ci").unwrap());
        assert!(file.find(&second).is_none(), "removed");
        assert!(file.find(&other).is_some());

        std::fs::write(&path, "deploy:not-a-hash\n").unwrap();
        assert!(file.find(&other).is_none());
        let e = Tokens::load(&path).unwrap_err().to_string();
        assert!(e.ends_with("line 1: the hash is not 64 hex digits"), "{e}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
