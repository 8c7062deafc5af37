//! API keys: stored hashed, found by prefix, touched, revoked.

use gantry_store::{ApiKey, StoreError};

use crate::harness::{t, TestDb};

fn key(id: &str, prefix: &str, at: i64) -> ApiKey {
    ApiKey {
        id: id.to_owned(),
        prefix: prefix.to_owned(),
        hash: vec![7; 32],
        principal: "admin".to_owned(),
        created_at: t(at),
        last_used_at: None,
        expires_at: Some(t(1000)),
        revoked_at: None,
    }
}

pub(crate) async fn create_find_touch_list_revoke(db: &TestDb) {
    let store = db.open().await;
    store
        .create_api_key(&key("k2", "gk_bbbb", 2), &crate::harness::audit())
        .await
        .expect("k2");
    store
        .create_api_key(&key("k1", "gk_aaaa", 1), &crate::harness::audit())
        .await
        .expect("k1");
    assert!(matches!(
        store
            .create_api_key(&key("k3", "gk_aaaa", 3), &crate::harness::audit())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_api_key(&key("k1", "gk_cccc", 3), &crate::harness::audit())
            .await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        store.find_api_key("gk_aaaa").await,
        Ok(key("k1", "gk_aaaa", 1))
    );
    assert!(matches!(
        store.find_api_key("gk_zzzz").await,
        Err(StoreError::NotFound(_))
    ));

    store.touch_api_key("k1", t(5)).await.expect("touch");
    assert_eq!(
        store
            .find_api_key("gk_aaaa")
            .await
            .expect("k1")
            .last_used_at,
        Some(t(5))
    );
    assert!(matches!(
        store.touch_api_key("nope", t(5)).await,
        Err(StoreError::NotFound(_))
    ));

    store
        .revoke_api_key("k2", &crate::harness::audit_at(t(6)))
        .await
        .expect("revoke");
    store
        .revoke_api_key("k2", &crate::harness::audit_at(t(7)))
        .await
        .expect("revoke again");
    assert!(matches!(
        store
            .revoke_api_key("nope", &crate::harness::audit_at(t(7)))
            .await,
        Err(StoreError::NotFound(_))
    ));

    let all = store.list_api_keys().await.expect("list");
    assert_eq!(
        all.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["k1", "k2"]
    );
    assert_eq!(
        all[1].revoked_at,
        Some(t(6)),
        "the first revocation time stays"
    );
}
