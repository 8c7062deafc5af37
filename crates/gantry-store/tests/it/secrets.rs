//! Sealed secrets and connections: stored and returned as opaque bytes.

use gantry_store::{SealedKind, SealedValue, StoreError};

use crate::harness::{t, TestDb};

fn sealed(kind: SealedKind, scope: &str, name: &str, cipher: &[u8]) -> SealedValue {
    SealedValue {
        kind,
        scope: scope.to_owned(),
        name: name.to_owned(),
        key_id: "k1".to_owned(),
        nonce: vec![0, 1, 2, 255],
        ciphertext: cipher.to_vec(),
        updated_at: t(1),
    }
}

pub(crate) async fn put_get_list_delete(db: &TestDb) {
    let store = db.open().await;
    let secret = SealedKind::Secret;
    store
        .put_sealed(
            &sealed(secret, "wf", "b", b"\x00cipher-b"),
            &crate::harness::audit(),
        )
        .await
        .expect("b");
    store
        .put_sealed(
            &sealed(secret, "wf", "a", b"cipher-a"),
            &crate::harness::audit(),
        )
        .await
        .expect("a");
    store
        .put_sealed(
            &sealed(secret, "other", "z", b"z"),
            &crate::harness::audit(),
        )
        .await
        .expect("z");
    store
        .put_sealed(
            &sealed(SealedKind::Connection, "wf", "aws/prod", b"c"),
            &crate::harness::audit(),
        )
        .await
        .expect("conn");

    assert_eq!(
        store.get_sealed(secret, "wf", "b").await,
        Ok(sealed(secret, "wf", "b", b"\x00cipher-b"))
    );
    assert_eq!(
        store.list_sealed_names(secret, "wf").await,
        Ok(vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(
        store.list_sealed_names(SealedKind::Connection, "wf").await,
        Ok(vec!["aws/prod".to_owned()])
    );
    assert_eq!(store.list_sealed_names(secret, "empty").await, Ok(vec![]));
    // Secrets and connections are separate name spaces.
    assert!(matches!(
        store.get_sealed(SealedKind::Connection, "wf", "a").await,
        Err(StoreError::NotFound(_))
    ));

    let mut rotated = sealed(secret, "wf", "a", b"new");
    rotated.key_id = "k2".to_owned();
    rotated.updated_at = t(2);
    store
        .put_sealed(&rotated, &crate::harness::audit())
        .await
        .expect("replace");
    assert_eq!(store.get_sealed(secret, "wf", "a").await, Ok(rotated));

    store
        .delete_sealed(secret, "wf", "a", &crate::harness::audit())
        .await
        .expect("delete");
    assert!(matches!(
        store.get_sealed(secret, "wf", "a").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .delete_sealed(secret, "wf", "a", &crate::harness::audit())
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.list_sealed_names(secret, "wf").await,
        Ok(vec!["b".to_owned()])
    );
}
