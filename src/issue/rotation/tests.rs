//! The memory store's rotation rules and the family check.

use super::*;
use crate::issue::ManualClock;

#[tokio::test]
async fn a_refresh_token_is_good_once_and_reuse_revokes_the_family() {
    let clock = Arc::new(ManualClock::at(1_000));
    let s = MemoryStore::new(clock.clone());
    assert_eq!(s.peek("f", "a").await, Ok(Standing::Unknown));
    s.start("f", 100).await.unwrap();
    assert!(s.is_active("f").await.unwrap());
    assert_eq!(s.peek("f", "a").await, Ok(Standing::Fresh));
    assert_eq!(s.consume("f", "a").await, Ok(Standing::Fresh));
    assert_eq!(s.peek("f", "a").await, Ok(Standing::Used));
    // Its successor is fresh, until the used one comes back.
    assert_eq!(s.peek("f", "b").await, Ok(Standing::Fresh));
    assert_eq!(s.consume("f", "a").await, Ok(Standing::Used));
    assert!(!s.is_active("f").await.unwrap());
    assert_eq!(s.consume("f", "b").await, Ok(Standing::Revoked));
}

#[tokio::test]
async fn state_expires_with_the_session() {
    let clock = Arc::new(ManualClock::at(1_000));
    let s = MemoryStore::new(clock.clone());
    s.start("f", 100).await.unwrap();
    clock.advance(100);
    assert_eq!(s.peek("f", "a").await, Ok(Standing::Unknown));
    assert!(!s.is_active("f").await.unwrap());
    // Expired families are swept as new ones start (every 1024 starts).
    for i in 0..1023 {
        s.start(&format!("old{i}"), 10).await.unwrap();
    }
    clock.advance(10);
    s.start("new", 10).await.unwrap();
    assert_eq!(s.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_simultaneous_uses_exactly_one_wins() {
    let s = Arc::new(MemoryStore::new(Arc::new(ManualClock::at(1))));
    s.start("f", 100).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.consume("f", "a").await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if t.await.unwrap() == Standing::Fresh {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert!(!s.is_active("f").await.unwrap());
}

#[tokio::test]
async fn family_check_refuses_revoked_unknown_and_missing_sessions() {
    let store = Arc::new(MemoryStore::new(Arc::new(ManualClock::at(1))));
    store.start("f", 100).await.unwrap();
    let check = FamilyCheck(store.clone());
    let claims = |v: Value| v.as_object().unwrap().clone();
    let with = claims(serde_json::json!({"sid": "f"}));
    assert_eq!(check.check(&with).await, Ok(()));
    // No session, an empty one, or one that is not a string: refused, never exempt.
    for no_family in [
        serde_json::json!({}),
        serde_json::json!({"sid": ""}),
        serde_json::json!({"sid": 7}),
    ] {
        assert_eq!(
            check.check(&claims(no_family)).await,
            Err(verify::Error::MissingClaim("sid".into()))
        );
    }
    assert_eq!(
        check
            .check(&claims(serde_json::json!({"sid": "other"})))
            .await,
        Err(verify::Error::Revoked)
    );
    store.revoke("f").await.unwrap();
    assert_eq!(check.check(&with).await, Err(verify::Error::Revoked));
}
