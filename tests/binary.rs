//! The shipped binary, started as an operator would: JSON logs with a flag, a clean exit on
//! SIGTERM, a refusal with exit code 64 for an unsafe configuration, and `token new`.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_dust-mcp");

fn temp_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("dust-mcp-bin-{tag}-{}", std::process::id()))
}

#[test]
fn serve_logs_json_with_the_flag_and_exits_cleanly_on_sigterm() {
    let dir = temp_dir("json");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--no-auth",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("DUST_API_KEY")
        .env_remove("DUST_WORKSPACE_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut listening = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
        if v["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening"))
        {
            listening = Some(v);
            break;
        }
    }
    let listening = listening.expect("a 'listening' log line within 20 s");
    assert!(listening["addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // At most 20 s (400 polls of 50 ms) for the graceful exit.
    let exit = (0..400)
        .find_map(|_| {
            let done = child.try_wait().expect("wait");
            if done.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            done
        })
        .expect("an exit within 20 s of SIGTERM");
    assert!(exit.success(), "graceful exit, got {exit:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn no_auth_off_loopback_is_refused_with_exit_code_64() {
    let out = Command::new(BIN)
        .args(["serve", "--no-auth", "--bind", "0.0.0.0:0"])
        .arg("--data-dir")
        .arg(temp_dir("refused"))
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(64));
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("loopback"), "{text}");
}

#[test]
fn token_new_prints_a_token_and_the_hash_that_lets_it_in() {
    let out = Command::new(BIN)
        .args(["token", "new", "alice"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .split_whitespace()
        .find(|w| w.starts_with("dmcp_"))
        .expect("a token");
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    assert!(
        text.contains(&format!("token_sha256 = \"{hash}\"")),
        "{text}"
    );
    assert!(text.contains("name = \"alice\""));
}
