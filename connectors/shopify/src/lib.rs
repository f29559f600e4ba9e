//! tidemark-shopify: the Shopify Admin GraphQL API connector (`reference/platforms.md` §1).
//!
//! - `documents`: every GraphQL document sent, validated against the real schema by a test;

pub mod documents;
