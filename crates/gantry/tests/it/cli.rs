//! The CLI as a client of a real `gantry server` (process runtime): profiles saved by
//! `gantry login` and used by later commands, and `run logs --follow` over server-sent events.
//! Every command gets its own `GANTRY_CONFIG` in a temporary folder, so no test reads or writes
//! the real home.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::server::{start_server, Running};

/// `gantry` with no connection settings from this process's environment.
fn gantry(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gantry"));
    c.env("GANTRY_CONFIG", config)
        .env_remove("GANTRY_SERVER")
        .env_remove("GANTRY_API_KEY")
        .env_remove("GANTRY_PROFILE")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    c
}

fn output(c: &mut Command) -> (Option<i32>, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn stop(mut server: Running) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn login_saves_a_private_profile_that_later_commands_use() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("data"), "process", true);
    let key = server
        .key
        .clone()
        .expect("a first start prints an admin key");
    let url = format!("http://{}", server.addr);
    let config = dir.path().join("conf/gantry/config.toml");

    let (code, _, err) = output(gantry(&config).args(["workflow", "list"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("an API key is needed"), "{err}");

    // A key the server refuses is not saved, and is not shown whole.
    let wrong = "gantry_00000000_wrongwrongwrong";
    let (code, out, err) =
        output(gantry(&config).args(["login", "--server", &url, "--api-key", wrong]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains(&format!(
            "the server at {url} refused the API key gantry_0…: nothing saved"
        )),
        "{err}"
    );
    assert!(!format!("{out}{err}").contains(wrong), "{err}");
    assert!(!config.exists());

    let (code, out, err) =
        output(gantry(&config).args(["login", "--server", &url, "--api-key", &key]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out,
        format!(
            "logged in to {url} with key {}… as profile `default` (saved in {})\n",
            &key[..8],
            config.display()
        )
    );
    assert!(!format!("{out}{err}").contains(&key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains(&format!("server = \"{url}\"")), "{saved}");

    // Later commands need no flags.
    let file = dir.path().join("hello.yaml");
    std::fs::write(
        &file,
        "steps:\n- name: greet\n  image: none\n  input: [echo hi]\n",
    )
    .unwrap();
    let (code, out, err) =
        output(gantry(&config).args(["workflow", "apply", file.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "workflow hello is at version 1\n");
    let (code, out, err) = output(gantry(&config).args(["workflow", "list", "--format", "json"]));
    assert_eq!(code, Some(0), "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["name"], "hello");

    // The environment comes before the profile.
    let (code, _, err) = output(
        gantry(&config)
            .args(["workflow", "list"])
            .env("GANTRY_API_KEY", wrong),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("[unauthorized]"), "{err}");
    // The key is in no help text, even when it is in the environment.
    let (_, help, _) = output(
        gantry(&config)
            .args(["workflow", "list", "--help"])
            .env("GANTRY_API_KEY", &key),
    );
    assert!(help.contains("--api-key <KEY>"), "{help}");
    assert!(!help.contains(&key), "{help}");

    // A second profile, its key read from standard input, chosen by name.
    let mut login = gantry(&config)
        .args(["login", "--profile", "other", "--server", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{key}\n").as_bytes())
        .unwrap();
    let done = login.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&done.stdout).contains("as profile `other`"));
    let (code, _, err) = output(
        gantry(&config)
            .args(["workflow", "get", "hello"])
            .env("GANTRY_PROFILE", "other"),
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = output(gantry(&config).args(["logout", "--profile", "other"]));
    assert_eq!(code, Some(0));
    assert_eq!(
        out,
        format!("profile `other` removed from {}\n", config.display())
    );
    let (code, _, err) = output(gantry(&config).args(["workflow", "list", "--profile", "other"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("no profile `other` in"), "{err}");
    let (code, _, err) = output(gantry(&config).args(["logout", "--profile", "other"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("no profile `other`"), "{err}");

    // After logging out of the default profile, commands need a key again.
    let (code, _, _) = output(gantry(&config).args(["logout"]));
    assert_eq!(code, Some(0));
    assert!(!std::fs::read_to_string(&config).unwrap().contains(&key));
    let (code, _, err) = output(gantry(&config).args(["workflow", "list"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("an API key is needed"), "{err}");
    stop(server);
}

/// Applies `yaml` as workflow `name` and starts a run of it; returns the run's id.
fn start_run(config: &Path, url: &str, key: &str, dir: &Path, name: &str, yaml: &str) -> String {
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let connect = ["--server", url, "--api-key", key];
    let (code, _, err) = output(
        gantry(config)
            .args(["workflow", "apply", file.to_str().unwrap()])
            .args(connect),
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = output(gantry(config).args(["run", "start", name]).args(connect));
    assert_eq!(code, Some(0), "{err}");
    out.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

#[test]
fn run_logs_follow_streams_each_line_once_in_order_and_exits_by_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("data"), "process", true);
    let key = server
        .key
        .clone()
        .expect("a first start prints an admin key");
    let url = format!("http://{}", server.addr);
    let config = dir.path().join("config.toml");
    let env = |c: &mut Command| {
        c.env("GANTRY_SERVER", &url).env("GANTRY_API_KEY", &key);
    };

    // Lines written over two seconds, followed from the start of the run.
    let id = start_run(
        &config,
        &url,
        &key,
        dir.path(),
        "count",
        "steps:\n- name: count\n  image: none\n  input: ['for i in $(seq 1 40); do echo line-$i; sleep 0.05; done']\n",
    );
    let mut follow = gantry(&config);
    env(&mut follow);
    let (code, out, err) = output(follow.args(["run", "logs", &id, "--follow"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let expected: String = (1..=40).map(|i| format!("count │ line-{i}\n")).collect();
    assert_eq!(out, expected);
    assert_eq!(err, "");
    // Following a run that has already ended prints the same lines and ends at once.
    let mut again = gantry(&config);
    env(&mut again);
    let (code, out, _) = output(again.args(["run", "logs", &id, "--follow"]));
    assert_eq!((code, out), (Some(0), expected));

    // A failing run: its lines, then exit 1.
    let id = start_run(
        &config,
        &url,
        &key,
        dir.path(),
        "fail",
        "steps:\n- name: fail\n  image: none\n  input: ['echo before', 'sleep 0.5', 'echo last', 'exit 3']\n",
    );
    let mut follow = gantry(&config);
    env(&mut follow);
    let (code, out, err) = output(follow.args(["run", "logs", &id, "--follow"]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert_eq!(out, "fail │ before\nfail │ last\n");
    assert_eq!(err, format!("run {id} failed\n"));

    // `run start --follow` streams the same way, with step changes and the result.
    let mut start = gantry(&config);
    env(&mut start);
    let (code, out, err) = output(start.args(["run", "start", "fail", "--follow"]));
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("fail │ before\nfail │ last\n"), "{out}");
    assert!(out.contains("fail  failed"), "{out}");
    assert!(out.ends_with("run failed\n"), "{out}");

    // An unknown run is the server's 404, not an endless retry.
    let mut unknown = gantry(&config);
    env(&mut unknown);
    let (code, _, err) = output(unknown.args(["run", "logs", "no-such-run", "--follow"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("[not_found]"), "{err}");
    stop(server);
}

/// A TCP relay to `server` that cuts its first connection after `cut` bytes of the answer and
/// relays later ones whole; returns its address and a count of the connections it took.
fn cutting_relay(
    server: &str,
    cut: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Read;
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let taken = count.clone();
    let server = server.to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let first = taken.fetch_add(1, Ordering::SeqCst) == 0;
            let mut upstream = TcpStream::connect(&server).unwrap();
            let (mut up_write, mut client_read) =
                (upstream.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_read, &mut up_write);
            });
            std::thread::spawn(move || {
                let limit = if first { cut } else { usize::MAX };
                let mut sent = 0;
                let mut buf = [0u8; 64];
                while sent < limit {
                    let n = match upstream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n.min(limit - sent),
                    };
                    if client.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                let _ = client.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, count)
}

#[test]
fn run_logs_follow_resumes_after_the_connection_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("data"), "process", true);
    let key = server
        .key
        .clone()
        .expect("a first start prints an admin key");
    let url = format!("http://{}", server.addr);
    let config = dir.path().join("config.toml");
    let id = start_run(
        &config,
        &url,
        &key,
        dir.path(),
        "count",
        "steps:\n- name: count\n  image: none\n  input: ['for i in $(seq 1 30); do echo line-$i; done']\n",
    );
    let mut wait = gantry(&config);
    let (code, _, err) = output(wait.args([
        "run",
        "logs",
        &id,
        "--follow",
        "--server",
        &url,
        "--api-key",
        &key,
    ]));
    assert_eq!(code, Some(0), "{err}");

    // The first answer is cut inside an event, a few events in.
    let (relay, connections) = cutting_relay(&server.addr, 700);
    let mut follow = gantry(&config);
    let (code, out, err) = output(follow.args([
        "run",
        "logs",
        &id,
        "--follow",
        "--server",
        &format!("http://{relay}"),
        "--api-key",
        &key,
    ]));
    assert_eq!(code, Some(0), "{out}{err}");
    let expected: String = (1..=30).map(|i| format!("count │ line-{i}\n")).collect();
    assert_eq!(out, expected);
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one cut connection, one resumed"
    );
    stop(server);
}
