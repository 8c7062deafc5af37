//! Client profiles: `gantry login` saves a server URL and an API key under a name, and every
//! client command finds its server and key from flags, the environment or a profile.
//!
//! The profiles file is TOML (`[profiles.NAME]` with `server` and `api_key`); it is the only user
//! of `toml_edit` (pre-1.0, pinned), which keeps a user's comments and order when Gantry rewrites
//! it. It holds keys, so it is written whole to a temporary file of mode 0600 and renamed over the
//! old one, and no message here ever contains a key beyond [`key_hint`]. A TOML error names its
//! line only, since the line's text may be a key. Single-threaded: commands read the file once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The profile used when none is named.
pub(crate) const DEFAULT_PROFILE: &str = "default";

/// Where the server is when nothing says otherwise.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

/// A saved server and the key Gantry sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Profile {
    pub(crate) server: String,
    pub(crate) api_key: String,
}

/// Where a command connects, once flags, environment and profiles are weighed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) server: String,
    pub(crate) api_key: String,
}

/// What the command line and environment gave (clap merges a flag and its variable; the flag
/// wins).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Given<'a> {
    pub(crate) server: Option<&'a str>,
    pub(crate) api_key: Option<&'a str>,
    /// `--profile` or `GANTRY_PROFILE`.
    pub(crate) profile: Option<&'a str>,
}

/// The profiles file: `$GANTRY_CONFIG`, else `$XDG_CONFIG_HOME/gantry/config.toml`, else
/// `~/.config/gantry/config.toml`. `None` when not even a home directory is known.
pub(crate) fn config_path(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(p) = set("GANTRY_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = match set("XDG_CONFIG_HOME") {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(set("HOME")?).join(".config"),
    };
    Some(base.join("gantry").join("config.toml"))
}

/// The profiles file of this process's environment.
pub(crate) fn this_config_path() -> anyhow::Result<PathBuf> {
    config_path(|n| std::env::var_os(n)).context(
        "cannot tell where the profiles file is: set GANTRY_CONFIG, XDG_CONFIG_HOME or HOME",
    )
}

/// The first characters of a key, enough to tell keys apart in a confirmation.
pub(crate) fn key_hint(key: &str) -> String {
    let shown: String = key.chars().take(8).collect();
    format!("{shown}…")
}

/// Servers are compared without a trailing slash.
fn same_server(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Weighs what was given against the saved profiles, in this order for each of the server and
/// the key: flag, environment, the named profile (`--profile`/`GANTRY_PROFILE`), the `default`
/// profile. A profile's key is only sent to that profile's server, so a `--server` pointing
/// elsewhere does not pick up a key meant for another server.
pub(crate) fn resolve(
    given: &Given<'_>,
    profile: impl FnOnce(&str) -> anyhow::Result<Option<Profile>>,
    config: &Path,
) -> anyhow::Result<Target> {
    let nonempty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_owned);
    let (server, api_key) = (nonempty(given.server), nonempty(given.api_key));
    if let (Some(server), Some(api_key)) = (&server, &api_key) {
        return Ok(Target {
            server: server.clone(),
            api_key: api_key.clone(),
        });
    }
    let named = given.profile.filter(|p| !p.is_empty());
    let name = named.unwrap_or(DEFAULT_PROFILE);
    let saved = profile(name)?;
    if saved.is_none() && named.is_some() {
        bail!(
            "no profile `{name}` in {}: save one with `gantry login --profile {name} --server URL --api-key KEY`",
            config.display()
        );
    }
    let server = server
        .or_else(|| saved.as_ref().map(|p| p.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let api_key = match (api_key, saved) {
        (Some(k), _) => k,
        (None, Some(p)) if same_server(&p.server, &server) => p.api_key,
        (None, Some(p)) => bail!(
            "profile `{name}` holds a key for {}, not for {server}: pass --api-key or save a profile for {server} with `gantry login`",
            p.server
        ),
        (None, None) => bail!(
            "an API key is needed: pass --api-key, set GANTRY_API_KEY, or save one with `gantry login --server URL --api-key KEY`"
        ),
    };
    Ok(Target { server, api_key })
}

/// The profiles file, as read (or empty when it does not exist yet).
pub(crate) struct Profiles {
    path: PathBuf,
    doc: toml_edit::DocumentMut,
}

impl Profiles {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Profiles> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Profiles {
            path: path.to_owned(),
            doc: parse(&text, path)?,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The profile `name`; an error when it exists but lacks a field.
    pub(crate) fn get(&self, name: &str) -> anyhow::Result<Option<Profile>> {
        let Some(table) = self
            .doc
            .get("profiles")
            .and_then(|p| p.get(name))
            .filter(|t| t.is_table_like())
        else {
            return Ok(None);
        };
        let field = |f: &str| {
            table
                .get(f)
                .and_then(toml_edit::Item::as_str)
                .map(str::to_owned)
                .with_context(|| {
                    format!(
                        "profile `{name}` in {} has no `{f}` string",
                        self.path.display()
                    )
                })
        };
        Ok(Some(Profile {
            server: field("server")?,
            api_key: field("api_key")?,
        }))
    }

    pub(crate) fn set(&mut self, name: &str, profile: &Profile) {
        if !self.doc.contains_table("profiles") {
            let mut profiles = toml_edit::Table::new();
            // `[profiles.NAME]` headers only, no empty `[profiles]` above them.
            profiles.set_implicit(true);
            self.doc
                .insert("profiles", toml_edit::Item::Table(profiles));
        }
        let profiles = &mut self.doc["profiles"];
        let mut table = toml_edit::Table::new();
        table.insert("server", toml_edit::value(profile.server.as_str()));
        table.insert("api_key", toml_edit::value(profile.api_key.as_str()));
        profiles[name] = toml_edit::Item::Table(table);
    }

    /// Removes the profile `name`; false when there was none.
    pub(crate) fn remove(&mut self, name: &str) -> bool {
        self.doc
            .get_mut("profiles")
            .and_then(toml_edit::Item::as_table_like_mut)
            .and_then(|p| p.remove(name))
            .is_some()
    }

    /// Writes the file with mode 0600 (its folder 0700 when Gantry creates it), replacing the old
    /// one in one rename so a crash leaves either the old or the new file.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut text = self.doc.to_string();
        if !text.starts_with('#') {
            text = format!("{HEADER}{text}");
        }
        // tempfile creates its files with mode 0600 on Unix.
        let mut file = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        file.persist(&self.path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

const HEADER: &str =
    "# Gantry client profiles, written by `gantry login`. They hold API keys: keep this file private.\n";

fn parse(text: &str, path: &Path) -> anyhow::Result<toml_edit::DocumentMut> {
    text.parse::<toml_edit::DocumentMut>().map_err(|e| {
        // The error's own text quotes the line, which may hold a key.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(l) => anyhow::anyhow!("{} is not valid TOML (line {l})", path.display()),
            None => anyhow::anyhow!("{} is not valid TOML", path.display()),
        }
    })
}

/// `gantry login`: checks the key against the server, then saves it as profile `name`. A key the
/// server refuses is not saved.
pub(crate) fn login(
    server: &str,
    api_key: Option<String>,
    name: &str,
) -> anyhow::Result<std::process::ExitCode> {
    let url = reqwest::Url::parse(server)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .with_context(|| format!("--server {server} is not an http:// or https:// URL"))?;
    let server = url.as_str().trim_end_matches('/').to_owned();
    let api_key = match api_key {
        Some(k) => k,
        None => read_key()?,
    };
    let api_key = api_key.trim().to_owned();
    if api_key.is_empty() {
        bail!("the API key is empty");
    }
    let path = this_config_path()?;
    // Read before asking the server, so a broken file stops the login before anything else.
    let mut profiles = Profiles::load(&path)?;
    let client = super::client::Client::to(Target {
        server: server.clone(),
        api_key: api_key.clone(),
    })?;
    let answer = super::client::block_on(async move {
        client
            .send(reqwest::Method::GET, "/workflows?limit=1", None)
            .await
    })?;
    if answer.status == 401 {
        eprintln!(
            "error: the server at {server} refused the API key {}: nothing saved",
            key_hint(&api_key)
        );
        return Ok(std::process::ExitCode::from(1));
    }
    if !answer.ok() {
        eprintln!(
            "error: {server} did not accept the check of the key (GET /api/v1/workflows): {}; nothing saved",
            answer.summary()
        );
        return Ok(std::process::ExitCode::from(1));
    }
    profiles.set(
        name,
        &Profile {
            server: server.clone(),
            api_key: api_key.clone(),
        },
    );
    profiles.save()?;
    println!(
        "logged in to {server} with key {} as profile `{name}` (saved in {})",
        key_hint(&api_key),
        profiles.path().display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// The key from standard input (one line), so it stays out of the shell's history.
fn read_key() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("API key: ");
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .context("cannot read the API key from standard input")?;
    Ok(line)
}

/// `gantry logout`: removes profile `name` from the profiles file (the key itself stays valid on
/// the server until it is revoked there).
pub(crate) fn logout(name: &str) -> anyhow::Result<std::process::ExitCode> {
    let path = this_config_path()?;
    let mut profiles = Profiles::load(&path)?;
    if !profiles.remove(name) {
        eprintln!("error: no profile `{name}` in {}", path.display());
        return Ok(std::process::ExitCode::from(1));
    }
    profiles.save()?;
    println!("profile `{name}` removed from {}", path.display());
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn config_path_order() {
        let all = [
            ("GANTRY_CONFIG", "/etc/g.toml"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(config_path(env(&all)), Some("/etc/g.toml".into()));
        assert_eq!(
            config_path(env(&all[1..])),
            Some("/x/gantry/config.toml".into())
        );
        assert_eq!(
            config_path(env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/home/u")])),
            Some("/home/u/.config/gantry/config.toml".into())
        );
        assert_eq!(config_path(env(&[])), None);
    }

    fn saved(name: &str) -> anyhow::Result<Option<Profile>> {
        Ok(match name {
            "default" => Some(Profile {
                server: "http://d:7700/".into(),
                api_key: "gantry_dddd_default".into(),
            }),
            "prod" => Some(Profile {
                server: "https://prod".into(),
                api_key: "gantry_pppp_prod".into(),
            }),
            _ => None,
        })
    }

    fn check(given: Given<'_>, expect: Result<(&str, &str), &str>) {
        let got = resolve(&given, saved, Path::new("/c.toml"));
        match (got, expect) {
            (Ok(t), Ok((server, key))) => {
                assert_eq!((t.server.as_str(), t.api_key.as_str()), (server, key));
            }
            (Err(e), Err(message)) => {
                let e = e.to_string();
                assert!(e.contains(message), "{e}");
                assert!(!e.contains("gantry_"), "a key leaked: {e}");
            }
            (got, expect) => panic!("{got:?} but expected {expect:?}"),
        }
    }

    #[test]
    fn flags_and_environment_come_before_profiles() {
        let both = Given {
            server: Some("http://s"),
            api_key: Some("k"),
            profile: Some("nope"),
        };
        // Both given: no profile is even looked at, so a missing one is no error.
        check(both, Ok(("http://s", "k")));
        check(
            Given {
                api_key: Some("k"),
                ..Given::default()
            },
            Ok(("http://d:7700/", "k")),
        );
        check(
            Given {
                api_key: Some("k"),
                profile: Some("prod"),
                ..Given::default()
            },
            Ok(("https://prod", "k")),
        );
    }

    #[test]
    fn named_profile_then_default_profile() {
        check(
            Given::default(),
            Ok(("http://d:7700/", "gantry_dddd_default")),
        );
        check(
            Given {
                profile: Some("prod"),
                ..Given::default()
            },
            Ok(("https://prod", "gantry_pppp_prod")),
        );
        // The same server, written with or without a trailing slash.
        check(
            Given {
                server: Some("http://d:7700"),
                ..Given::default()
            },
            Ok(("http://d:7700", "gantry_dddd_default")),
        );
        check(
            Given {
                profile: Some(""),
                ..Given::default()
            },
            Ok(("http://d:7700/", "gantry_dddd_default")),
        );
    }

    #[test]
    fn a_profile_key_goes_to_its_own_server_only() {
        check(
            Given {
                server: Some("http://elsewhere"),
                ..Given::default()
            },
            Err("profile `default` holds a key for http://d:7700/, not for http://elsewhere"),
        );
    }

    #[test]
    fn missing_profiles_are_clear_errors() {
        check(
            Given {
                profile: Some("staging"),
                ..Given::default()
            },
            Err("no profile `staging` in /c.toml: save one with `gantry login --profile staging"),
        );
        let none = |_: &str| Ok(None);
        let e = resolve(&Given::default(), none, Path::new("/c.toml")).unwrap_err();
        assert!(e.to_string().starts_with("an API key is needed"), "{e}");
        let e = resolve(
            &Given {
                server: Some("http://s"),
                ..Given::default()
            },
            none,
            Path::new("/c.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("an API key is needed"), "{e}");
    }

    #[test]
    fn key_hint_shows_eight_characters_at_most() {
        assert_eq!(key_hint("gantry_abcd1234_secretsecret"), "gantry_a…");
        assert_eq!(key_hint("short"), "short…");
        assert_eq!(key_hint("ééééééééééé"), "éééééééé…");
    }

    #[test]
    fn profiles_file_round_trip_keeps_comments_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let mut p = Profiles::load(&path).unwrap();
        assert_eq!(p.get("default").unwrap(), None);
        let a = Profile {
            server: "http://a".into(),
            api_key: "gantry_aaaa_x".into(),
        };
        p.set("default", &a);
        p.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{HEADER}[profiles.default]\nserver = \"http://a\"\napi_key = \"gantry_aaaa_x\"\n"
            )
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.path().join("sub")), 0o700);
        }
        // A user's comment survives adding and removing another profile.
        std::fs::write(&path, format!("{text}# mine\n")).unwrap();
        let mut p = Profiles::load(&path).unwrap();
        p.set(
            "prod",
            &Profile {
                server: "https://p".into(),
                api_key: "gantry_pppp_y".into(),
            },
        );
        p.save().unwrap();
        let p = Profiles::load(&path).unwrap();
        assert_eq!(p.get("default").unwrap(), Some(a.clone()));
        assert_eq!(p.get("prod").unwrap().unwrap().server, "https://p");
        let mut p = p;
        assert!(p.remove("prod"));
        assert!(!p.remove("prod"));
        p.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# mine"), "{text}");
        assert!(!text.contains("prod"), "{text}");
        assert_eq!(
            Profiles::load(&path).unwrap().get("default").unwrap(),
            Some(a)
        );
    }

    #[test]
    fn a_broken_file_is_named_by_line_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[profiles.default]\nserver = \"http://a\"\napi_key = \"gantry_aaaa_secret\n",
        )
        .unwrap();
        let e = Profiles::load(&path).err().unwrap().to_string();
        assert_eq!(e, format!("{} is not valid TOML (line 3)", path.display()));
        std::fs::write(&path, "[profiles.default]\nserver = \"http://a\"\n").unwrap();
        let e = Profiles::load(&path)
            .unwrap()
            .get("default")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no `api_key` string"), "{e}");
    }
}
