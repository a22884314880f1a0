//! The users file of `--auth users`: one user a line, `NAME:ARGON2ID_HASH[:SCOPES]`, like an
//! htpasswd file. SCOPES is a comma-separated list of `project/service` patterns (`*` matches
//! any run of characters); without it the user sees every service. `#` starts a comment.
//!
//! `lookout users add NAME` asks for a password and writes the line.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::scope::Scope;
use crate::config::{Config, UsersAction};
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read the users file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the users file {path}: {source}")]
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
    #[error("a user name is letters, digits, '.', '-' and '_', got {0:?}")]
    BadName(String),
    #[error("{0}")]
    Scope(String),
    #[error("cannot read the password: {0}")]
    Password(String),
}

/// One user of the file.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    hash: String,
    pub scope: Scope,
    /// The scope as written, to write it back unchanged.
    scope_text: Option<String>,
}

/// Every user of the file, by name.
#[derive(Clone, Debug, Default)]
pub struct Users(BTreeMap<String, User>);

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl Users {
    /// Reads the file; a file that does not exist holds no users.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let Some(text) = read_if_there(path).map_err(|source| UsersError::Read {
            path: path.into(),
            source,
        })?
        else {
            return Ok(Users::default());
        };
        Users::parse(&text).map_err(|(line, why)| UsersError::Bad {
            path: path.into(),
            line,
            why,
        })
    }

    fn parse(text: &str) -> Result<Users, (usize, String)> {
        let mut users = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: String| (i + 1, why);
            let mut parts = line.splitn(3, ':');
            let name = parts.next().unwrap_or_default();
            let hash = parts.next().unwrap_or_default();
            let scope_text = parts.next().map(str::to_owned);
            if !valid_name(name) {
                return Err(bad(format!("{name:?} is not a user name")));
            }
            PasswordHash::new(hash)
                .map_err(|e| bad(format!("the hash of {name} is not a PHC string: {e}")))?;
            if !hash.starts_with("$argon2id$") {
                return Err(bad(format!("the hash of {name} is not argon2id")));
            }
            let scope = match &scope_text {
                Some(t) => Scope::parse(t).map_err(bad)?,
                None => Scope::All,
            };
            let user = User {
                name: name.to_owned(),
                hash: hash.to_owned(),
                scope,
                scope_text,
            };
            if users.insert(name.to_owned(), user).is_some() {
                return Err(bad(format!("{name} appears twice")));
            }
        }
        Ok(Users(users))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The user, if the password is theirs. Takes as long for an unknown name as for a
    /// known one, so that timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        static DUMMY: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| hash_password("not a password").expect("hashes"));
        let user = self.0.get(name);
        let hash = user.map_or(DUMMY.as_str(), |u| u.hash.as_str());
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        user.filter(|_| ok)
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.0.get(name)
    }

    fn save(&self, path: &Path) -> Result<(), UsersError> {
        write_private(path, &self.to_text()).map_err(|source| UsersError::Write {
            path: path.into(),
            source,
        })
    }

    fn to_text(&self) -> String {
        let mut out = String::from(
            "# Lookout users: NAME:ARGON2ID_HASH[:project/service patterns, comma-separated]\n",
        );
        for u in self.0.values() {
            out.push_str(&u.name);
            out.push(':');
            out.push_str(&u.hash);
            if let Some(s) = &u.scope_text {
                out.push(':');
                out.push_str(s);
            }
            out.push('\n');
        }
        out
    }
}

pub fn hash_password(password: &str) -> Result<String, UsersError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Password(e.to_string()))
}

/// Shortest password `users add` accepts.
pub const MIN_PASSWORD: usize = 8;

/// `lookout users add NAME`: asks for the password (twice on a terminal; one line from a
/// pipe), then adds or replaces the user in the file, written with mode 0600.
pub fn add(path: &Path, name: &str, scopes: &[String]) -> Result<(), UsersError> {
    if !valid_name(name) {
        return Err(UsersError::BadName(name.to_owned()));
    }
    let scope_text = (!scopes.is_empty()).then(|| scopes.join(","));
    let scope = match &scope_text {
        Some(t) => Scope::parse(t).map_err(UsersError::Scope)?,
        None => Scope::All,
    };
    let password = read_password(name)?;
    if password.chars().count() < MIN_PASSWORD {
        return Err(UsersError::Password(format!(
            "a password has at least {MIN_PASSWORD} characters"
        )));
    }
    let mut users = Users::load(path)?;
    users.0.insert(
        name.to_owned(),
        User {
            name: name.to_owned(),
            hash: hash_password(&password)?,
            scope,
            scope_text,
        },
    );
    users.save(path)
}

/// `lookout users remove NAME`.
pub fn remove(path: &Path, name: &str) -> Result<bool, UsersError> {
    let mut users = Users::load(path)?;
    let removed = users.0.remove(name).is_some();
    if removed {
        users.save(path)?;
    }
    Ok(removed)
}

fn read_password(name: &str) -> Result<String, UsersError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))
            .map_err(|e| UsersError::Password(e.to_string()))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| UsersError::Password(e.to_string()))?;
        if first != again {
            return Err(UsersError::Password("the two passwords differ".into()));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| UsersError::Password(e.to_string()))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// A private file's text; None when it does not exist (it then holds no one yet).
pub(super) fn read_if_there(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes through a temporary file and a rename, so a reader never sees half a file. The
/// temporary file is new (`O_EXCL`, which follows no symlink) under a name no one can guess
/// ahead, in the same folder so that the rename stays on one file system; it goes if anything
/// fails.
pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use argon2::password_hash::rand_core::RngCore;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path.file_name().map_or_else(
        || std::ffi::OsString::from("users"),
        std::ffi::OsStr::to_os_string,
    );
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(&base);
    tmp_name.push(format!(
        ".{}.{:016x}.tmp",
        std::process::id(),
        OsRng.next_u64()
    ));
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename itself lasts once the folder is on disk; a failure here loses nothing yet.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `lookout users …`: changes the users file and says what it did.
pub fn command(config: &Config, action: &UsersAction) -> ExitCode {
    if let UsersAction::Token { action } = action {
        return super::tokens::command(config, action);
    }
    let Some(path) = &config.users_file else {
        eprintln!("lookout users: say which file with --users-file FILE (or LOOKOUT_USERS_FILE)");
        return ExitCode::from(2);
    };
    let done = match action {
        UsersAction::Add { name, scopes } => {
            add(path, name, scopes).map(|()| format!("{name} can now sign in"))
        }
        UsersAction::Remove { name } => remove(path, name).map(|removed| {
            if removed {
                format!("{name} removed")
            } else {
                format!("{name} was not in {}", path.display())
            }
        }),
        UsersAction::Token { .. } => unreachable!("handled above"),
    };
    match done {
        Ok(said) => {
            eprintln!("lookout users: {said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lookout users: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    //! Pure unit tests with files in a temporary folder.
    use super::*;
    use argon2::password_hash::rand_core::RngCore;

    fn line(name: &str, password: &str, scope: Option<&str>) -> String {
        let hash = hash_password(password).unwrap();
        match scope {
            Some(s) => format!("{name}:{hash}:{s}\n"),
            None => format!("{name}:{hash}\n"),
        }
    }

    #[test]
    fn a_password_is_checked_against_its_argon2id_hash() {
        let text = format!(
            "# users\n{}{}",
            line("alice", "correct horse", None),
            line("bob", "battery staple", Some("shop/*"))
        );
        let users = Users::parse(&text).unwrap();
        assert_eq!(
            users.verify("alice", "correct horse").unwrap().name,
            "alice"
        );
        assert!(users.verify("alice", "battery staple").is_none());
        assert!(users.verify("carol", "correct horse").is_none());
        assert!(matches!(users.get("alice").unwrap().scope, Scope::All));
        assert!(!matches!(users.get("bob").unwrap().scope, Scope::All));
    }

    #[test]
    fn a_bad_file_names_its_line() {
        let err = Users::parse("alice:plaintext\n").unwrap_err();
        assert_eq!(err.0, 1);
        let md5 = "bob:$1$abc$def\n";
        assert!(Users::parse(md5).is_err());
        let twice = format!(
            "{}{}",
            line("a", "password1", None),
            line("a", "password2", None)
        );
        let err = Users::parse(&twice).unwrap_err();
        assert!(err.1.contains("twice"), "{err:?}");
        let bad_scope = line("c", "password1", Some("no-slash"));
        assert!(Users::parse(&bad_scope).is_err());
    }

    fn folder(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lookout-users-{tag}-{}-{}",
            std::process::id(),
            OsRng.next_u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn saving_follows_no_planted_symlink_and_leaves_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = folder("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.join("users");
        // Where the temporary file used to go, and the names it might take.
        std::os::unix::fs::symlink(&victim, dir.join("users.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".users.tmp")).unwrap();
        let users = Users::parse(&line("alice", "correct horse", None)).unwrap();
        users.save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(Users::load(&path).unwrap().get("alice").is_some());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            names_in(&dir),
            [".users.tmp", "users", "users.tmp", "victim"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_removes_its_temporary_file() {
        let dir = folder("fail");
        // A folder where the file should be: the rename fails after the write.
        let path = dir.join("users");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "x").unwrap();
        let users = Users::parse(&line("alice", "correct horse", None)).unwrap();
        assert!(matches!(users.save(&path), Err(UsersError::Write { .. })));
        assert_eq!(names_in(&dir), ["users"], "no temporary file is left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_round_trips() {
        let text = format!(
            "{}{}",
            line("alice", "correct horse", None),
            line("bob", "battery staple", Some("shop/*,billing/api"))
        );
        let users = Users::parse(&text).unwrap();
        let again = Users::parse(&users.to_text()).unwrap();
        assert!(again.verify("bob", "battery staple").is_some());
        assert_eq!(
            again.get("bob").unwrap().scope_text.as_deref(),
            Some("shop/*,billing/api")
        );
    }
}
