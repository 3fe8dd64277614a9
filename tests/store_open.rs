//! `open_store` for the stores that need no server: memory and an embedded
//! file, each run through the conformance suite.

use ivr_verify::store::testing;
use ivr_verify::store::{open_store, StoreConfig, StoreError};

#[tokio::test]
async fn memory_from_config() {
    let store = open_store(&StoreConfig::Memory).await.unwrap();
    testing::run_store_conformance(store.as_ref()).await;
}

#[tokio::test]
async fn embedded_from_config() {
    let folder = tempfile::tempdir().unwrap();
    let config = StoreConfig::Embedded {
        path: folder.path().join("var").join("ivr-verify.redb"),
    };
    let store = open_store(&config).await.unwrap();
    testing::run_store_conformance(store.as_ref()).await;
}

#[tokio::test]
async fn embedded_path_that_is_a_folder_rejected() {
    let folder = tempfile::tempdir().unwrap();
    let config = StoreConfig::Embedded {
        path: folder.path().to_path_buf(),
    };
    let result = open_store(&config).await;
    assert!(
        matches!(result, Err(StoreError::EmbeddedOpen { .. })),
        "opened a folder as a database: {:?}",
        result.err()
    );
}
