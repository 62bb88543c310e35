//! Unit tests of the OAuth tables: single redemption, rotation, revocation, reopening.

use super::*;

fn temp_db() -> PathBuf {
    std::env::temp_dir().join(format!(
        "dust-mcp-oauth-{}-{}.sqlite3",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

fn family(id: &str) -> Family {
    Family {
        id: id.into(),
        client_id: "c1".into(),
        user: "alice".into(),
        scope: "mcp".into(),
        resource: "http://h/mcp".into(),
    }
}

fn tok(s: &str, exp: i64) -> NewToken {
    NewToken {
        sha256: s.into(),
        expires_at: exp,
    }
}

fn code() -> CodeRecord {
    CodeRecord {
        client_id: "c1".into(),
        user: "alice".into(),
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "x".into(),
        scope: "mcp".into(),
        resource: "http://h/mcp".into(),
        expires_at: unix_now() + 60,
        family_id: None,
    }
}

#[test]
fn a_code_redeems_once_and_a_refresh_token_rotates_once() {
    let path = temp_db();
    let mut s = OAuthStore::open(&path).unwrap();
    s.insert_code("h1", &code()).unwrap();
    let later = unix_now() + 600;
    assert!(s
        .redeem_code("h1", &family("f1"), &tok("a1", later), &tok("r1", later))
        .unwrap());
    assert!(!s
        .redeem_code("h1", &family("f2"), &tok("a2", later), &tok("r2", later))
        .unwrap());
    assert_eq!(
        s.code("h1").unwrap().unwrap().family_id.as_deref(),
        Some("f1")
    );
    let a1 = s.token("a1").unwrap().unwrap();
    assert_eq!(a1.kind, TokenKind::Access);
    assert_eq!(a1.family.user, "alice");
    assert!(s
        .rotate_refresh("r1", "f1", 100, &tok("a3", later), &tok("r3", later))
        .unwrap());
    assert!(!s
        .rotate_refresh("r1", "f1", 100, &tok("a4", later), &tok("r4", later))
        .unwrap());
    assert!(s.token("r1").unwrap().unwrap().used);
    assert_eq!(s.active_grants().unwrap()[0].active, 1);
    s.revoke_family("f1").unwrap();
    assert!(s.token("a3").unwrap().unwrap().revoked);
    assert!(s.active_grants().unwrap().is_empty());
    drop(s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn clients_round_trip_and_grants_survive_reopening() {
    let path = temp_db();
    let mut s = OAuthStore::open(&path).unwrap();
    let c = ClientRecord {
        client_id: "c1".into(),
        secret_sha256: None,
        name: "Claude".into(),
        redirect_uris: vec!["https://claude.ai/api/mcp/auth_callback".into()],
        auth_method: "none".into(),
        created_at: 1,
    };
    s.insert_client(&c).unwrap();
    s.insert_code("h1", &code()).unwrap();
    let later = unix_now() + 600;
    s.redeem_code("h1", &family("f1"), &tok("a1", later), &tok("r1", later))
        .unwrap();
    drop(s);
    let mut s = OAuthStore::open(&path).unwrap();
    assert_eq!(s.client("c1").unwrap(), Some(c));
    assert!(!s.token("a1").unwrap().unwrap().revoked);
    assert_eq!(s.revoke_user("alice").unwrap(), 1);
    assert!(s.token("r1").unwrap().unwrap().revoked);
    assert!(s.delete_client("c1").unwrap());
    assert_eq!(s.client("c1").unwrap(), None);
    s.purge_expired(later + 1).unwrap();
    assert_eq!(s.token("a1").unwrap(), None);
    drop(s);
    let _ = std::fs::remove_file(&path);
}
