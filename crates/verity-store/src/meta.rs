//! A small key/value table for facts about the store itself (for example whether the demo
//! world has been loaded).

use crate::backend::{with_pool, Store};
use crate::error::{DbContext, StoreError};

impl Store {
    pub async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
                .ctx("read a meta value")
        })
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(pool)
            .await
            .ctx("write a meta value")?;
        });
        Ok(())
    }
}
