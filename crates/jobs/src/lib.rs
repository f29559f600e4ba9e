//! tidemark-jobs: the daemon of DESIGN §2 — job runs carried by an apalis queue (Redis or
//! SQLite), per-connection leases, pause gating, the scheduler and the reconciler.
