//! The inner parts that black-box tests, benches, fuzz targets and examples drive directly, in one
//! place: everything else in the crate is `pub(crate)`. Not a stable API; the binary's contract is
//! the HTTP API, the config and the CLI (DESIGN.md). Paths mirror the crate's modules, so
//! `legate::testing::policy::load` is `crate::policy::load`.

/// Start-up and serving.
pub mod app {
    pub use crate::app::{build, build_with_clock, serve, AppState};
}
/// Decision counters and the decision log.
pub mod audit {
    pub use crate::audit::Audit;
}
/// The configuration.
pub mod config {
    pub use crate::config::Config;
}
/// The decision door.
pub mod decide {
    pub use crate::decide::{batch, Decider, EntityData};
}
/// Entity sources.
pub mod entities {
    pub use crate::entities::{EntitySource, FileSource};
}
/// The HTTP layer.
pub mod http {
    pub use crate::http::{authorize, ops, router, token, ENDPOINTS};
}
/// legate's own tokens.
pub mod issue {
    pub use crate::issue::{
        Clock, ManualClock, RedisStore, RotationStore, SigningKey, Standing, SystemClock,
    };
}
/// List filtering.
pub mod plan {
    pub use crate::plan::{
        check_tables, filter, plan, to_sql, Filter, Kind, Operand, PlanBody, PlanConfig, Sql,
        SqlError, Value,
    };
}
/// Policies.
pub mod policy {
    pub use crate::policy::{
        evaluate, fingerprint, from_texts, load, spawn_watcher, PolicyStore, Snapshot,
        ENTITIES_FILE, SCHEMA_FILE,
    };
}
/// Cedar request building.
pub mod request {
    pub use crate::request::{Base, Check, Principal, ResourceRef};
}
/// The forward-auth route table.
pub mod routes {
    pub use crate::routes::{oracle, segments, RouteConfig, RouteTable};
}
/// What every stage shares.
pub mod shared {
    pub use crate::shared::{check_unique_members, is_valid_id};
}
/// Logs and metrics set-up.
pub mod telemetry {
    pub use crate::telemetry::install;
}
/// `legate test`, `legate authorize`, `legate plan`.
pub mod toolkit {
    pub use crate::toolkit::{read_suite, token, Expect};
}
/// Token verification.
pub mod verify {
    pub use crate::verify::{
        ClaimNames, CustomerId, Error, KeySet, KeySource, LegalEntityId, TrustedIssuer,
        VerifiedToken, Verifier, VerifyKey, MAX_TOKEN_BYTES,
    };
}
